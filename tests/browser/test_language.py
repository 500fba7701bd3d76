"""The page's language: from the link, remembered on this browser, or the browser's own."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

ZH_HEADING = "1 · 词元"


def heading_in_chinese(page):
    page.wait_for_function(f"document.body.innerText.includes({ZH_HEADING!r})", timeout=30_000)


def test_lang_zh_in_the_link_opens_in_chinese_and_is_remembered(new_page, server):
    page = new_page(query="?lang=zh")
    heading_in_chinese(page)
    assert page.is_checked("#language input[type=radio][value='中文']")
    assert page.evaluate("localStorage.getItem('glassgpt-lang')") == "zh"
    page = page.context.new_page()                          # same browser, no lang in the link: the last choice holds
    page.goto(server)
    page.wait_for_selector("#tokens button.gg-chip", timeout=60_000)
    heading_in_chinese(page)
    assert "lang=zh" in page.url                           # and the link says so again
    page.check("#language input[type=radio][value='English']")
    page.wait_for_function("!document.body.innerText.includes('1 · 词元')", timeout=30_000)
    assert "lang=zh" not in page.url
    assert page.evaluate("localStorage.getItem('glassgpt-lang')") == "en"


def test_a_chinese_browser_gets_chinese_and_an_english_link_wins(new_page):
    page = new_page(locale="zh-CN")
    heading_in_chinese(page)
    page = new_page(locale="zh-CN", query="?lang=en")
    page.wait_for_timeout(1500)
    assert page.is_checked("#language input[type=radio][value='English']")
    assert ZH_HEADING not in page.inner_text("body")


def test_in_chinese_the_controls_speak_chinese(new_page):
    from server import strings
    page = new_page(query="?lang=zh")
    heading_in_chinese(page)
    page.wait_for_function("document.querySelector('#run').innerText.includes('运行')", timeout=30_000)
    for elem_id in ("prompt", "layer", "head", "temperature", "output", "exclude-first"):
        assert strings.label(elem_id, "zh") in page.inner_text(f"#{elem_id}"), elem_id
    for elem_id in ("next-token", "generate", "layer-prev", "layer-play"):
        assert page.inner_text(f"#{elem_id}").strip() == strings.button(elem_id, "zh"), elem_id
    assert "看 Transformer 如何思考" in page.inner_text("#header-text")
    page.wait_for_function("document.querySelector('#tokens').innerText.includes('个词元')", timeout=30_000)
    assert "控制词元" in page.inner_text("#tokens") and "焦点" in page.inner_text("#token-count")
    page.fill("#prompt textarea", "我爱北京天安门")                 # a Run keeps the language
    page.click("#run")
    page.wait_for_function("document.querySelector('#tokens').innerText.includes('7 个汉字用了 15 个词元')", timeout=60_000)
    assert "我 (1/2)" in page.inner_text("#tokens")
    assert "tokens" not in page.inner_text("#tokens") and "prompt" not in page.inner_text("#token-count")
    page.click("#layer-play")
    page.wait_for_function("document.querySelector('#layer-play').innerText.includes('停止')", timeout=10_000)
    page.click("#layer-play")
