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
