"""Page behaviours beyond the main journey: head selection by click, hostile text, small screens."""
from __future__ import annotations

import pytest

from .support import screenshot
from .test_journey import run_prompt

pytestmark = pytest.mark.browser


def test_clicking_the_all_heads_overview_selects_that_head(new_page):
    page = new_page()
    page.locator("#attention-all").scroll_into_view_if_needed()
    area = page.locator("#attention-all .nsewdrag").first.bounding_box()
    # Click near the top-right cell: a high layer and a high head.
    page.mouse.click(area["x"] + area["width"] * 0.94, area["y"] + area["height"] * 0.02)
    page.wait_for_function("document.querySelector('#head input[type=number]').value !== '0' && "
                           "document.querySelector('#layer input[type=number]').value !== '0'", timeout=20_000)
    layer = int(page.input_value("#layer input[type=number]"))
    head = int(page.input_value("#head input[type=number]"))
    assert layer >= 25 and head >= 7


HOSTILE = '<img src=x onerror="alert(1)"></div><script>alert(2)</script> " onmouseover="alert(3)" javascript:alert(4)'


def test_html_looking_prompt_is_shown_as_text_everywhere(new_page, lm):
    page = new_page()
    run_prompt(page, HOSTILE, len(lm.tokenize(HOSTILE)))
    page.click("#next-token")
    page.wait_for_function(f"document.querySelectorAll('#tokens button.gg-chip').length === {len(lm.tokenize(HOSTILE)) + 1}",
                           timeout=30_000)
    # No element was injected anywhere in the page, and no script ran (the guard fails on dialogs).
    assert page.locator("img[src=x]").count() == 0
    assert page.evaluate("[...document.querySelectorAll('script')].every(s => !s.textContent.includes('alert(2)'))")
    assert page.evaluate("[...document.querySelectorAll('[onmouseover],[onerror]')].length") == 0
    labels = page.eval_on_selector_all("#tokens .gg-chip-label", "els => els.map(e => e.textContent).join('')")
    assert "onerror" in labels and "<script>" in labels.replace("·", " ")
    assert page.input_value("#output textarea").startswith(HOSTILE)
    page.locator("#tokens button.gg-chip").first.hover()
    screenshot(page, "06-hostile-text", full_page=False)


def test_empty_prompt_shows_a_notice_and_the_page_keeps_working(new_page, lm):
    page = new_page()
    page.fill("#prompt textarea", "   ")
    page.click("#run")
    page.wait_for_function("document.querySelector('#notice').innerText.includes('empty')", timeout=20_000)
    run_prompt(page, "Hello world", len(lm.tokenize("Hello world")))
    assert not page.inner_text("#notice").strip()


def test_phone_width_is_readable(new_page):
    page = new_page(width=390, height=844)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 400, f"the page scrolls sideways at phone width ({width}px)"
    screenshot(page, "07-phone", full_page=False)


LAYER_PANELS = ("attention", "attention-heads", "attention-detail", "mlp", "mlp-top")


def test_a_layer_step_draws_each_panel_once_on_the_div_that_stays(new_page):
    """gr.Plot re-creates its plot div for every new figure and would draw the figure on the old div
    first; assets/page.js skips draws on divs that have left the page. Each layer panel must end up
    drawn with the new layer's figure, on a div that is on the page, and the old divs not drawn."""
    from .test_journey import wait_plot_change

    page = new_page()
    page.wait_for_function("() => window.Plotly && window.Plotly.__ggCounts", timeout=20_000)
    snap = "(id) => JSON.parse(JSON.stringify(document.querySelector('#' + id + ' .js-plotly-plot').data" \
           ".map(t => ({x: t.x, y: t.y, z: t.z, text: t.text}))))"
    before = {pid: page.evaluate(snap, pid) for pid in LAYER_PANELS}
    counts0 = page.evaluate("() => ({...window.Plotly.__ggCounts})")
    page.click("#layer-next")
    page.wait_for_function("document.querySelector('#layer input[type=number]').value === '1'", timeout=20_000)
    for pid in LAYER_PANELS:
        wait_plot_change(page, pid, before[pid])
    page.wait_for_timeout(300)
    counts1 = page.evaluate("() => ({...window.Plotly.__ggCounts})")
    skipped = counts1["skipped"] - counts0["skipped"]
    drawn = counts1["drawn"] - counts0["drawn"]
    assert skipped >= len(LAYER_PANELS), (counts0, counts1)      # one discarded div per panel (draw + resize)
    assert len(LAYER_PANELS) <= drawn <= 2 * len(LAYER_PANELS) + 2, (counts0, counts1)
    for pid in LAYER_PANELS:
        state = page.evaluate("""(id) => { const gds = document.querySelectorAll('#' + id + ' .js-plotly-plot');
            return {n: gds.length, drawn: [...gds].every(g => g.isConnected && g._fullLayout && g.data.length > 0)}; }""",
                              pid)
        assert state == {"n": 1, "drawn": True}, (pid, state)
    title = page.evaluate("() => document.querySelector('#mlp .gtitle').textContent")
    assert "Layer 1" in title
