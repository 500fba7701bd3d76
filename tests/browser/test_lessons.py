"""Every guided lesson, started from the page in English and in 中文: it sets the prompt, scrolls to
its section and shows its words with the model's numbers."""
from __future__ import annotations

import re

import pytest
from zh_text import stray_latin

from server import lessons
from viz.words import speaking

pytestmark = pytest.mark.browser


def start(page, title: str, n_before: str | None) -> str:
    page.click("#lesson input")
    page.click(f"#lesson li[role=option]:has-text('{title}')")
    page.click("#lesson-start")
    page.wait_for_function(
        f"(document.querySelector('#lesson-text .gg-lesson') || {{dataset: {{}}}}).dataset.n !== {n_before!r}".replace("None", "undefined"),
        timeout=60_000)
    return page.get_attribute("#lesson-text .gg-lesson", "data-n")


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_walk_every_lesson(new_page, lang):
    page = new_page(query="?lang=zh" if lang == "zh" else "")
    page.wait_for_function("document.body.innerText.includes('1 · ')", timeout=30_000)
    if lang == "zh":
        page.wait_for_function("document.querySelector('#lesson-start').innerText.includes('开始')", timeout=30_000)
    with speaking(lang):
        titles = [title for title, _ in lessons.choices()]
    n = None
    for lesson, title in zip(lessons.LESSONS, titles):
        n = start(page, title, n)
        card = page.inner_text("#lesson-text .gg-lesson")
        assert re.search(r"\d", card), lesson.key                       # numbers measured just now
        if lang == "zh":
            words = re.sub(r"“[^”]*”|E\[[^\]]*\]", " ", card)
            assert stray_latin(words, ["strawberry", "king", "man", "woman"]) == [], lesson.key
        # The page scrolled to the lesson's section: its heading is near the top of the window.
        page.wait_for_function(f"Math.abs(document.getElementById('{lesson.section}').getBoundingClientRect().top) < 300",
                               timeout=10_000)
    # The last lesson (chat mode) set the prompt and ticked chat mode, as its link says.
    assert page.input_value("#prompt textarea") == lessons.CHAT_PROMPT
    assert page.is_checked("#chat input")
    page.click("#lesson-text .gg-lesson-close")
    assert page.locator("#lesson-text .gg-lesson").count() == 0
