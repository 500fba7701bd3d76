"""Export and share in the real page: a link reopens the same view; JSON and PNG downloads work."""
from __future__ import annotations

import json
from urllib.parse import parse_qs, urlparse

import pytest

pytestmark = pytest.mark.browser


def test_a_link_reopens_the_same_view(new_page, lm):
    page = new_page(query="?prompt=The+dog+chased+the&t=0.4&k=7&layer=5&head=2&focus=1")
    n = len(lm.tokenize("The dog chased the"))
    page.wait_for_function(f"document.querySelectorAll('#tokens button.gg-chip').length === {n}", timeout=60_000)
    page.wait_for_selector("#tokens button.gg-chip-focus[data-pos='1']", timeout=20_000)
    assert page.input_value("#layer input[type=number]") == "5"
    assert page.input_value("#head input[type=number]") == "2"
    assert float(page.input_value("#temperature input[type=number]")) == pytest.approx(0.4)
    # The address bar follows the page: change the layer and read the URL back.
    page.click("#layer-next")
    page.wait_for_function("new URLSearchParams(location.search).get('layer') === '6'", timeout=20_000)
    q = parse_qs(urlparse(page.url).query)
    assert q["prompt"] == ["The dog chased the"] and q["k"] == ["7"] and q["focus"] == ["1"]


def test_bad_link_values_are_reported_not_fatal(new_page):
    page = new_page(query="?prompt=Hello&layer=99&t=abc")
    page.wait_for_function("document.querySelector('#notice').innerText.includes('ignored')", timeout=60_000)
    assert page.locator("#tokens button.gg-chip").count() == 1


def test_session_json_and_figure_png_download(new_page, tmp_path):
    page = new_page()
    page.click("#export")
    link = page.locator("#session-file a").first
    link.wait_for(timeout=30_000)
    with page.expect_download() as dl:
        link.click()
    data = json.loads(open(dl.value.path(), encoding="utf-8").read())
    assert data["prompt"] == "The capital of France is" and data["next_token"][0]["token"] == " Paris"
    page.locator("#distribution").hover()
    with page.expect_download() as png:
        page.locator("#distribution .modebar-btn[data-title*='png' i]").first.click()
    path = tmp_path / "fig.png"
    png.value.save_as(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_generated_tokens_are_part_of_the_link(new_page, lm):
    """A sampled continuation cannot be re-tokenized back, so the link carries its ids (gen=)."""
    page = new_page(query="?prompt=Once+upon+a+time&t=1.3&seed=11")
    n = len(lm.tokenize("Once upon a time"))
    chips = "document.querySelectorAll('#tokens button.gg-chip').length"
    page.wait_for_function(f"{chips} === {n}", timeout=60_000)
    for i in (1, 2, 3):
        page.click("#next-token")
        page.wait_for_function(f"{chips} === {n + i}", timeout=60_000)
    page.wait_for_function("(new URLSearchParams(location.search).get('gen') || '').split('.').length === 3",
                           timeout=20_000)
    words = page.eval_on_selector_all("#tokens button.gg-chip", "els => els.map(e => e.innerText)")
    link = page.url
    again = new_page(query="?" + urlparse(link).query)
    again.wait_for_function(f"{chips} === {n + 3}", timeout=60_000)
    assert again.eval_on_selector_all("#tokens button.gg-chip", "els => els.map(e => e.innerText)") == words
    # Editing the prompt box drops gen from the link: those tokens followed the old text.
    again.fill("#prompt textarea", "Something else")
    again.wait_for_function("!new URLSearchParams(location.search).has('gen')", timeout=20_000)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_reloaded_page_replays_its_address_and_says_so(new_page, lm, lang):
    """Gradio reloads the page after a lost connection (behind a balancer: a replica that stopped
    mid-request); the address replays the view, generated tokens included, with a notice."""
    page = new_page(query="?prompt=Once+upon+a+time&t=1.1&seed=5" + ("&lang=zh" if lang == "zh" else ""))
    n = len(lm.tokenize("Once upon a time"))
    chips = "document.querySelectorAll('#tokens button.gg-chip').length"
    page.wait_for_function(f"{chips} === {n}", timeout=60_000)
    page.click("#next-token")
    page.wait_for_function(f"{chips} === {n + 1}", timeout=60_000)
    page.wait_for_function("new URLSearchParams(location.search).has('gen')", timeout=20_000)
    assert page.locator(".gg-reloaded").count() == 0            # a first load says nothing
    page.reload()
    page.wait_for_function(f"{chips} === {n + 1}", timeout=60_000)
    page.wait_for_selector(".gg-reloaded", timeout=20_000)
    text = page.inner_text(".gg-reloaded")
    assert ("reloaded" in text) if lang == "en" else ("重新加载" in text and "reloaded" not in text)
