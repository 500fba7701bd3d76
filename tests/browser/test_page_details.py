"""Page behaviours beyond the main journey: head selection by click, hostile text, small screens."""
from __future__ import annotations

import pytest

from .support import screenshot
from .test_journey import run_prompt

pytestmark = pytest.mark.browser


def test_clicking_the_all_heads_overview_selects_that_head(new_page):
    from .test_in_page_views import ApiRequests
    page = new_page()
    api = ApiRequests(page)
    page.wait_for_function("window.GG && GG.layers.held().length === 30", timeout=60_000)
    page.locator("#attention-all").scroll_into_view_if_needed()
    # A person clicks what is drawn: wait for the panel's draw and its click handler.
    page.wait_for_function("""() => { const p = GG.panels['attention-all'];
        const gd = document.querySelector('#attention-all .js-plotly-plot');
        return p && p.shown === p.wanted && !p.drawing && gd && gd.__ggBound; }""", timeout=20_000)
    api.arm()
    area = page.locator("#attention-all .nsewdrag").first.bounding_box()
    # Click near the top-right cell: a high layer and a high head.
    page.mouse.click(area["x"] + area["width"] * 0.94, area["y"] + area["height"] * 0.02)
    page.wait_for_function("document.querySelector('#head input[type=number]').value !== '0' && "
                           "document.querySelector('#layer input[type=number]').value !== '0'", timeout=20_000)
    layer = int(page.input_value("#layer input[type=number]"))
    head = int(page.input_value("#head input[type=number]"))
    assert layer >= 25 and head >= 7
    page.wait_for_function(f"document.querySelector('#attention .js-plotly-plot').layout.title.text"
                           f".startsWith('Layer {layer} · head h{head}')", timeout=20_000)
    assert api.urls == [], api.urls            # drawn from the data the page holds


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


def test_every_panel_keeps_one_plot_div_through_steps_and_runs(new_page):
    """A plot panel keeps its Plotly div for the life of the page (assets/plots.js): a layer step
    and a new Run update it with Plotly.react instead of mounting a new div."""
    page = new_page()
    page.wait_for_function("window.GG && GG.layers.held().length === 30", timeout=60_000)
    ids = LAYER_PANELS + ("attention-all", "logit-lens", "distribution", "embeddings")
    page.evaluate("(ids) => { window.__divs = {}; for (const id of ids) "
                  "window.__divs[id] = GG.panels[id].div; }", list(ids))
    page.click("#layer-next")
    page.wait_for_function("document.querySelector('#layer input[type=number]').value === '1'", timeout=20_000)
    page.fill("#prompt textarea", "A new prompt for the same panels")
    page.click("#run")
    page.wait_for_function("document.querySelector('#tokens').innerText.includes('panels')", timeout=60_000)
    for pid in ids:
        page.locator(f"#{pid}").scroll_into_view_if_needed()
        page.wait_for_function("(id) => { const p = GG.panels[id]; return p.shown === p.wanted && !p.drawing; }", arg=pid,
                               timeout=20_000)
        state = page.evaluate("""(id) => { const gds = document.querySelectorAll('#' + id + ' .js-plotly-plot');
            return {n: gds.length, same: gds[0] === window.__divs[id], drawn: !!gds[0]._fullLayout}; }""", pid)
        assert state == {"n": 1, "same": True, "drawn": True}, (pid, state)
    title = page.evaluate("() => document.querySelector('#mlp .gtitle').textContent")
    assert "Layer 1" in title
