"""The embedding lab in the real page: a - b + c and words on a direction, in English and 中文."""
from __future__ import annotations

import pytest

from .test_beyond import has_plot
from .test_journey import plot_data

pytestmark = pytest.mark.browser


def open_lab(page):
    page.click("#embedding-lab button, #embedding-lab .label-wrap")
    page.wait_for_selector("#lab-analogy-run", state="visible", timeout=10_000)


def fill(page, elem_id: str, text: str):
    page.fill(f"#{elem_id} textarea, #{elem_id} input", text)


def test_analogy_and_direction_in_the_page(new_page, lm):
    page = new_page()
    open_lab(page)
    page.click("#lab-analogy-run")
    page.wait_for_function("document.querySelector('#lab-analogy-table').innerText.includes('queen')", timeout=30_000)
    assert has_plot(page, "lab-analogy-figure")
    # The table lists k rows, best first, with the model's cosines.
    cosines = page.eval_on_selector_all("#lab-analogy-table tr td:nth-child(4)", "tds => tds.map(td => Number(td.innerText))")
    assert len(cosines) == 10 and cosines == sorted(cosines, reverse=True) and abs(cosines[0] - 0.716) < 0.01
    # The star is a - b + c, the corners the three words.
    corners = plot_data(page, "lab-analogy-figure")[1]
    assert len(corners["x"]) == 4

    fill(page, "dir-words", " dogs, dog, one, two")
    page.click("#lab-direction-run")
    assert has_plot(page, "lab-direction-figure")
    bars = plot_data(page, "lab-direction-figure")[0]
    p = dict(zip([s.strip("·") for s in bars["y"]], bars["x"]))
    assert p["dogs"] > p["dog"] and p["one"] < p["two"]

    # A word of two tokens is explained in the notice, naming the pieces; the next press works.
    fill(page, "lab-a", "queen")
    page.click("#lab-analogy-run")
    page.wait_for_function("document.querySelector('#notice').innerText.includes('que')", timeout=20_000)
    assert "leading space" in page.inner_text("#notice")


def test_lab_in_chinese(new_page):
    page = new_page(query="?lang=zh")
    page.wait_for_function("document.body.innerText.includes('1 · 词元')", timeout=30_000)
    open_lab(page)
    page.click("#lab-analogy-run")
    page.wait_for_function("(document.querySelector('#lab-analogy-table') || {innerText: ''}).innerText.includes('排名')",
                           timeout=30_000)
    fill(page, "dir-a", " cat")
    fill(page, "dir-b", " cat")
    page.click("#lab-direction-run")
    page.wait_for_function("document.querySelector('#notice').innerText.includes('同一个词元')", timeout=20_000)
