"""The labs in the real page: a - b + c, words on a direction, head roles; in English and 中文."""
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


def test_head_roles_find_an_induction_head_and_open_it(new_page, lm):
    page = new_page()
    page.click("#head-roles-box button, #head-roles-box .label-wrap")
    page.wait_for_selector("#roles-repeated", state="visible", timeout=10_000)
    page.click("#roles-repeated")
    page.wait_for_function("document.querySelectorAll('#head-roles-top button.gg-pick-head').length >= 10", timeout=30_000)
    assert has_plot(page, "head-roles")
    # The map shows the induction role first: 30 layers x 9 heads of scores in 0..1.
    z = plot_data(page, "head-roles")[4]["z"]
    assert len(z) == lm.cfg.n_layer and len(z[0]) == lm.cfg.n_head
    best = page.eval_on_selector("#head-roles-top tr:last-child button.gg-pick-head",
                                 "b => [Number(b.dataset.ggLayer), Number(b.dataset.ggHead)]")
    assert z[best[0]][best[1]] == max(max(v for v in row if v is not None) for row in z) > 0.5
    # A click on the top induction head opens it in the attention section (layer and head controls follow).
    page.click("#head-roles-top tr:last-child button.gg-pick-head")
    page.wait_for_function(f"document.querySelector('#layer input[type=number]').value == '{best[0]}'", timeout=10_000)
    page.wait_for_function(f"document.querySelector('#head input[type=number]').value == '{best[1]}'", timeout=10_000)


def test_temperature_side_by_side(new_page):
    page = new_page()
    page.click("#temps-box button, #temps-box .label-wrap")
    page.wait_for_selector("#temps-run", state="visible", timeout=10_000)
    page.click("#temps-run")
    page.wait_for_function("document.querySelectorAll('#temps tr').length === 4", timeout=60_000)
    rows = page.eval_on_selector_all("#temps tr", "trs => trs.map(tr => tr.querySelectorAll('.gg-temp-token').length)")
    assert all(n >= 1 for n in rows)
    assert "greedy" in page.inner_text("#temps tr:first-child th")


def test_big_picture_marks_the_layer_and_sets_it(new_page, lm):
    page = new_page()
    page.wait_for_selector("#big-picture .gg-bp-block", timeout=30_000)
    assert page.locator("#big-picture .gg-bp-block").count() == lm.cfg.n_layer
    page.click("#big-picture .gg-bp-block[data-gg-layer='5']")
    page.wait_for_function("document.querySelector('#layer input[type=number]').value == '5'", timeout=10_000)
    page.wait_for_selector("#big-picture .gg-bp-block.gg-here[data-gg-layer='5']", timeout=5_000)
    page.click("#layer-next")                                   # the mark follows the layer control
    page.wait_for_selector("#big-picture .gg-bp-block.gg-here[data-gg-layer='6']", timeout=5_000)
    assert page.locator("#big-picture .gg-here").count() == 1
    # The last stage shows the model's own top prediction for the focus token.
    assert "Paris" in page.inner_text("#big-picture .gg-bp-stage[data-gg-go='distribution']")


def test_attribution_and_patching_panels(new_page):
    page = new_page()
    page.click("#dla-run")
    page.wait_for_function("document.querySelectorAll('#attribution-top button.gg-pick-head').length > 0", timeout=30_000)
    assert has_plot(page, "attribution")
    title = page.evaluate("document.querySelector('#attribution .js-plotly-plot').layout.title.text")
    assert "Paris" in title
    # The parts add up to the model's logit, and the chart says both numbers.
    import re
    total, logit = map(float, re.search(r"sum to (-?[\d.]+) \(the model: (-?[\d.]+)\)", title).groups())
    assert abs(total - logit) <= 1e-3
    # A head from the list opens in the attention section.
    page.click("#attribution-top button.gg-pick-head:not([data-gg-mlp])")
    page.click("#routes-run")
    assert has_plot(page, "routes")
    nodes = plot_data(page, "routes")[-1]
    assert len(nodes["x"]) >= 2                                        # the prediction's state and what fed it
    page.click("#patch-run")
    page.wait_for_function("document.querySelector('#patch-status').innerText.includes('done')", timeout=60_000)
    assert has_plot(page, "patching")
    # Prompts of different lengths: the notice names the tokens of both.
    page.fill("#patch-corrupted textarea, #patch-corrupted input", "Rome is a city")
    page.click("#patch-run")
    page.wait_for_function("document.querySelector('#notice').innerText.includes('same number of tokens')", timeout=20_000)
