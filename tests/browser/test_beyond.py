"""Ablation, comparison and residual paths in the real page."""
from __future__ import annotations

import pytest

from .test_journey import plot_data, run_prompt

pytestmark = pytest.mark.browser


def has_plot(page, elem_id: str) -> bool:
    page.wait_for_function(f"!!(document.querySelector('#{elem_id} .js-plotly-plot') || {{}}).data", timeout=30_000)
    return True


def test_ablate_compare_and_draw_paths(new_page, lm):
    page = new_page()
    page.fill("#ablate-heads textarea, #ablate-heads input", "24.*, 12.3")
    page.fill("#ablate-neurons textarea, #ablate-neurons input", "20:100")
    page.click("#ablate")
    page.wait_for_function("document.querySelector('#ablation-summary').innerText.includes('Paris')", timeout=30_000)
    assert has_plot(page, "ablation") and has_plot(page, "ablation-lens")
    bars = plot_data(page, "ablation")
    assert len(bars) >= 2

    page.fill("#prompt-b textarea, #prompt-b input", "The bank raised rates")
    page.click("#compare")
    page.wait_for_function("!!(document.querySelector('#compare-cosine .js-plotly-plot') || {}).data", timeout=30_000)
    for elem in ("compare-attention", "compare-mlp", "compare-prediction"):
        assert has_plot(page, elem), elem

    page.fill("#path-positions textarea, #path-positions input", "1, last")
    page.click("#draw-path")
    page.wait_for_function("!!(document.querySelector('#residual-path .js-plotly-plot') || {}).data", timeout=30_000)

    # A bad specification is explained, not fatal.
    page.fill("#ablate-heads textarea, #ablate-heads input", "99.1")
    page.click("#ablate")
    page.wait_for_function("document.querySelector('#notice').innerText.length > 0", timeout=20_000)

    # A new prompt clears the what-if panels, which described the old one.
    run_prompt(page, "Hello world", len(lm.tokenize("Hello world")))
    page.wait_for_function("!(document.querySelector('#ablation .js-plotly-plot') || {}).data", timeout=20_000)
