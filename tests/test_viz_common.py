"""The helpers every panel shares (viz/common.py): labels, percentages, PCA, token axes."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from viz.common import pca, pct, short, token_axis


def test_short_cuts_then_escapes():
    assert short("abc", 5) == "abc"
    assert short("abcdefgh", 5) == "abcd…"
    assert short("<img src=x>", 4) == "&lt;im…"            # cut first: no entity split in half
    assert short("a'b\"c&", 10) == "a&#39;b&#34;c&amp;"
    assert short(12345, 3) == "12…"


def test_pct():
    assert pct(0.5) == "50.0%" and pct(0.0004) == "4.00e-04" and pct(0.001) == "0.1%"
    assert pct(0) == "0%" and pct(0, zero=None) == "0.0%" and pct(0.0004, zero=None) == "4.00e-04"
    assert pct(-0.25) == "-25.0%"


def test_pca_is_a_centred_svd_with_fixed_signs():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 6)) * np.array([5, 3, 1, 0.5, 0.2, 0.1])
    fit = pca(X, 2)
    np.testing.assert_allclose(fit.mean, X.mean(0))
    np.testing.assert_allclose(fit.coords, (X - fit.mean) @ fit.components.T, atol=1e-9)
    np.testing.assert_allclose(fit.components @ fit.components.T, np.eye(2), atol=1e-12)
    for c in fit.components:
        assert c[np.abs(c).argmax()] > 0
    flipped = pca(-X, 2)                                     # same directions, same signs
    np.testing.assert_allclose(flipped.components, fit.components, atol=1e-12)
    assert 0 < fit.ratio[1] < fit.ratio[0] < 1
    assert pca(X[:1], 2).components.shape[0] == 1            # one row: one component


def test_token_axis_thins_with_or_without_alias():
    trace = SimpleNamespace(T=100, pieces=[SimpleNamespace(display=f"t{i}", label=f"t{i}") for i in range(100)])
    full = token_axis(trace, max_ticks=100)
    assert full["tickvals"] == list(range(100)) and full["ticktext"][3] == "t3"
    alias = token_axis(trace, max_ticks=40)
    assert alias["tickmode"] == "linear" and alias["dtick"] == 5 and alias["labelalias"]["7"] == "t7"
    plain = token_axis(trace, max_ticks=40, alias=False)
    assert plain["tickvals"] == list(range(0, 100, 5)) and plain["ticktext"][1] == "t5" and "labelalias" not in plain
