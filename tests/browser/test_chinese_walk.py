"""A walk through the page in 中文 with a Chinese prompt: every word a person reads is Chinese
(names and notation aside, tests/zh_text.py), and characters show over their bytes."""
from __future__ import annotations

import re

import pytest
from zh_text import stray_latin

pytestmark = pytest.mark.browser

PROMPT = "我爱北京天安门，天安门上"

# Every visible text node of the page, except what is the model's or the user's own text:
# tokens (chips, tick labels, code spans, heatmap cells), the prompt boxes and the generated text.
VISIBLE_TEXTS = """() => {
  // #examples: prompts to pick (text for the model); #language names each language in its own words.
  const own = "#tokens, #output, #prompt, #prompt-b, #examples, #language, #lab-a, #lab-b, #lab-c, #dir-a, #dir-b, #dir-words, #ablate-heads, #ablate-neurons, #path-positions, code, "
    + ".xtick, .ytick, .ztick, .hoverlayer, .modebar, .textpoint, .hm, .gg-token, .gg-tok, .gg-sample";
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode, el = node.parentElement;
    const text = node.textContent.trim();
    // .sr-only: Gradio's status announcer for screen readers, never drawn (its texts are Gradio's)
    if (!el || !text || el.closest(own) || el.closest("script, style, textarea, .sr-only")) continue;
    if (el.getClientRects().length === 0) continue;             // not drawn (display: none somewhere above)
    const style = getComputedStyle(el);
    if (style.visibility === "hidden" || style.opacity === "0" || parseFloat(style.fontSize) === 0) continue;
    const where = (el.closest("[id]") || {}).id || el.tagName;
    out.push([where, text]);
  }
  return out;
}"""


def wait_quiet(page, ms: int = 1500):
    page.wait_for_function("!document.querySelector('#tokens .pending, #tokens .progress-text')", timeout=120_000)
    page.wait_for_timeout(ms)


PROMPT_B = "The bank raised rates"     # the second prompt's own tokens may show in the comparison


def stray_words(page) -> dict:
    """Latin words in the page's texts; a token quoted “…” (the model's own text) is not a word of the page."""
    found = {}
    for where, text in page.evaluate(VISIBLE_TEXTS):
        words = stray_latin(re.sub(r"“[^”]*”", " ", text), PROMPT_B.split())
        if words:
            found.setdefault(where, []).append(text)
    return found


def scroll_through(page):
    """Bring every panel into view once (panels outside the viewport draw when they are seen)."""
    height = page.evaluate("document.body.scrollHeight")
    for y in range(0, height, 700):
        page.evaluate(f"window.scrollTo(0, {y})")
        page.wait_for_timeout(120)
    page.wait_for_timeout(800)


@pytest.mark.parametrize("width,height", [(1440, 900), (390, 844)])
def test_the_chinese_page_has_no_stray_english(new_page, width, height):
    page = new_page(width, height, query="?lang=zh")
    page.wait_for_function("document.body.innerText.includes('1 · 词元')", timeout=30_000)
    page.fill("#prompt textarea", PROMPT)
    page.click("#run")
    page.wait_for_function("document.querySelector('#tokens').innerText.includes('个汉字')", timeout=60_000)
    wait_quiet(page)
    page.click("#next-token")
    wait_quiet(page)
    page.click("#ablate")                       # empty: a refusal, in Chinese
    wait_quiet(page, 800)
    assert stray_latin(page.inner_text("#notice")) == [] and page.inner_text("#notice").strip()
    page.click("#attention-basics")             # open the worked example
    page.fill("#ablate-heads textarea, #ablate-heads input", "3.*")
    page.click("#ablate")
    wait_quiet(page)
    page.click("#compare")
    wait_quiet(page)
    page.click("#draw-path")
    wait_quiet(page)
    scroll_through(page)
    assert stray_words(page) == {}


def test_characters_over_bytes_in_chinese(new_page):
    page = new_page(query="?lang=zh")
    page.fill("#prompt textarea", "我爱北京天安门")
    page.click("#run")
    page.wait_for_function("document.querySelector('#tokens').innerText.includes('7 个汉字用了 15 个词元')", timeout=60_000)
    wait_quiet(page)
    chips = page.inner_text("#tokens")
    assert "我 (1/2)" in chips and "E6" in chips        # the character over its bytes, the bytes still there
    scroll_through(page)
    ticks = page.evaluate("[...document.querySelectorAll('#attention .xtick text')].map(t => t.textContent)")
    assert any("我" in t for t in ticks) and not any("<E6" in t for t in ticks)
    page.fill("#n-tokens input[type=number]", "6")
    page.click("#generate")
    wait_quiet(page, 2500)
    assert "\ufffd" not in page.input_value("#output textarea")
