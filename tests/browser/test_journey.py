"""The whole journey a person takes, in real Chromium against the real model:
type, run, click a token, step layers (buttons and keys), change head, drag temperature,
next token, generate, switch language."""
from __future__ import annotations

import json

import pytest

from .support import screenshot

pytestmark = pytest.mark.browser


def chips(page) -> list[dict]:
    return page.eval_on_selector_all("#tokens button.gg-chip",
                                     "els => els.map(e => ({pos: +e.dataset.pos, cls: e.className, text: e.innerText}))")


def plot_data(page, elem_id: str):
    """The data of the Plotly figure inside an element, as the browser holds it."""
    return page.evaluate(f"""() => {{
        const gd = document.querySelector('#{elem_id} .js-plotly-plot');
        return gd && gd.data ? JSON.parse(JSON.stringify(gd.data.map(t => ({{x: t.x, y: t.y, z: t.z, text: t.text}})))) : null;
    }}""")


def wait_plot_change(page, elem_id: str, before, timeout: int = 20_000):
    page.wait_for_function(
        """([id, before]) => { const gd = document.querySelector('#' + id + ' .js-plotly-plot');
            if (!gd || !gd.data) return false;
            const now = JSON.stringify(gd.data.map(t => ({x: t.x, y: t.y, z: t.z, text: t.text})));
            return now !== before; }""", arg=[elem_id, json.dumps(before, separators=(",", ":"))], timeout=timeout)


def slider_value(page, elem_id: str) -> float:
    return float(page.input_value(f"#{elem_id} input[type=number]"))


def run_prompt(page, text: str, n_tokens: int):
    page.fill("#prompt textarea", text)
    page.click("#run")
    page.wait_for_function(f"document.querySelectorAll('#tokens button.gg-chip').length === {n_tokens}", timeout=60_000)
    # A Run answers twice (tokens first, then the lens and neighbours): wait for the second answer.
    page.wait_for_function("!document.querySelector('#neighbours .gg-computing')", timeout=60_000)


def test_full_journey(new_page, lm):
    page = new_page()
    screenshot(page, "01-first-screen", full_page=False)
    assert len(chips(page)) == len(lm.tokenize("The capital of France is"))

    # Type and run: the chips are the model's own tokens.
    prompt = "The cat sat on the mat because the cat"
    ids = lm.tokenize(prompt)
    run_prompt(page, prompt, len(ids))
    got = chips(page)
    assert [c["pos"] for c in got] == list(range(len(ids)))
    assert "gg-chip-focus" in got[-1]["cls"]
    assert str(ids[1]) in got[1]["text"]
    screenshot(page, "02-after-run")

    # Click a chip: it becomes the focus token.
    before = plot_data(page, "attention-detail")
    page.click("#tokens button.gg-chip[data-pos='2']")
    page.wait_for_selector("#tokens button.gg-chip-focus[data-pos='2']", timeout=20_000)
    wait_plot_change(page, "attention-detail", before)

    # Step layers with the buttons and the arrow keys; the attention heatmap follows.
    before = plot_data(page, "attention")
    page.click("#layer-next")
    page.wait_for_function("document.querySelector('#layer input[type=number]').value === '1'", timeout=20_000)
    wait_plot_change(page, "attention", before)
    page.click("h1, h2, .gg-heading")  # move focus off any input so the keys reach the page
    page.keyboard.press("ArrowRight")
    page.wait_for_function("document.querySelector('#layer input[type=number]').value === '2'", timeout=20_000)
    page.keyboard.press("ArrowLeft")
    page.wait_for_function("document.querySelector('#layer input[type=number]').value === '1'", timeout=20_000)

    # Change head.
    before = plot_data(page, "attention")
    head_box = page.locator("#head input[type=number]")
    head_box.fill("4")
    head_box.press("Enter")
    wait_plot_change(page, "attention", before)

    # Drag temperature: the bars change, the model is not re-run.
    before = plot_data(page, "distribution")
    page.locator("#temperature input[type=range]").fill("0.3")
    wait_plot_change(page, "distribution", before)
    screenshot(page, "03-temperature-0.3", full_page=False)

    # Next token: one more chip, marked as generated; the output grows.
    page.click("#next-token")
    page.wait_for_function(f"document.querySelectorAll('#tokens button.gg-chip').length === {len(ids) + 1}", timeout=30_000)
    assert "gg-chip-generated" in chips(page)[-1]["cls"]
    assert page.input_value("#output textarea").startswith(prompt)

    # Generate N: tokens stream in until N more or end-of-sequence.
    page.locator("#n-tokens input[type=number]").fill("3")
    page.locator("#n-tokens input[type=number]").press("Enter")
    page.click("#generate")
    page.wait_for_function(f"document.querySelectorAll('#tokens button.gg-chip').length >= {len(ids) + 2}", timeout=60_000)
    page.wait_for_function(f"document.querySelectorAll('#tokens button.gg-chip').length === {len(ids) + 4} || "
                           "document.querySelector('#notice').innerText.includes('end-of-sequence')", timeout=60_000)
    screenshot(page, "04-after-generate")

    # Switch language.
    page.get_by_label("中文").check()
    page.wait_for_function("document.body.innerText.includes('注意力')", timeout=20_000)
    screenshot(page, "05-chinese", full_page=False)
    assert not page.inner_text("#notice").strip()
