"""Next-token distribution figure: bars are the model's probabilities, cuts and picks are marked."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from model.sampling import SamplingParams, distribution, sample
from viz.common import base_layout, plotly_text
from viz.distribution import distribution_figure, distribution_records


@pytest.fixture(scope="module")
def labels(lm):
    return lambda i: lm.tokenizer.pieces([i])[0].display


def strings(obj):
    """Every string inside a figure dict (to_json would hide '<' as \\u003c, so read the dict)."""
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from strings(v)
    elif isinstance(obj, (list, tuple)) or hasattr(obj, "tolist"):
        for v in (obj.tolist() if hasattr(obj, "tolist") else obj):
            yield from strings(v)


def by_name(fig, prefix):
    (t,) = [t for t in fig.data if t.name.startswith(prefix)]
    return t


def ranked(dist, n):
    """Top n by logit, ties by id: an independent (full-sort) reference."""
    return np.lexsort((np.arange(len(dist.logits)), -dist.logits))[:n]


def test_bars_are_the_models_probabilities_and_cuts_are_flagged(trace, labels):
    d = distribution(trace.logits[-1], SamplingParams(temperature=0.8, top_k=5))
    fig = distribution_figure(d, labels, n=20)
    ids = ranked(d, 20)
    kept, picked, cut = by_name(fig, "kept"), by_name(fig, "picked"), by_name(fig, "cut")
    assert all(t.type == "bar" and t.orientation == "h" for t in fig.data)
    assert list(kept.customdata) == list(ids[:5]) and len(picked.customdata) == 0
    np.testing.assert_allclose(kept.x, d.probs[ids[:5]], rtol=1e-12)
    assert abs(sum(kept.x) - d.probs[ids[:5]].sum()) < 1e-12 and sum(kept.x) > 0.5
    # cut tokens: final p is 0; the bar shows the p they had before the cut, marked "cut", hatched
    assert list(cut.customdata) == list(ids[5:]) and np.all(d.probs[ids[5:]] == 0)
    np.testing.assert_allclose(cut.x, d.probs_t[ids[5:]], rtol=1e-12)
    assert all(s.startswith("cut") for s in cut.text) and cut.marker.pattern.shape == "/"
    assert cut.marker.color != kept.marker.color
    assert all("cut by top-k = 5" in h for h in cut.hovertext)


def test_token_axis_is_numeric_with_labels(trace, labels):
    d = distribution(trace.logits[-1], SamplingParams(temperature=1.0))
    fig = distribution_figure(d, labels, n=12)
    ids = ranked(d, 12)
    assert list(fig.layout.yaxis.tickvals) == list(range(12))
    names = [labels(int(i)) for i in ids]
    assert all(len(s) <= 16 for s in names)          # short labels are shown whole
    assert list(fig.layout.yaxis.ticktext) == [plotly_text(s) for s in names]
    rows = {int(c): int(y) for t in fig.data for c, y in zip(t.customdata, t.y)}
    assert [rows[int(i)] for i in ids] == list(range(12))


def test_picked_token_is_highlighted_and_hover_explains_each_step(trace, labels):
    p = SamplingParams(temperature=1.5, top_p=0.9, seed=3)
    d = distribution(trace.logits[-1], p)
    pick = sample(d, trace.T)
    fig = distribution_figure(d, labels, n=40, picked=pick)
    if pick in ranked(d, 40):
        assert list(by_name(fig, "picked").customdata) == [pick]
    else:
        assert "below the top 40" in fig.layout.title.subtitle.text
    top = int(ranked(d, 1)[0])
    h = next(h for t in fig.data for c, h in zip(t.customdata, t.hovertext) if c == top)
    z = float(d.logits[top])
    assert f"logit {z:.3f}" in h and f"logit / T: {z / 1.5:.3f}" in h
    assert f"p before cuts {d.probs_t[top]:.1%}" in h and f"p after cuts {d.probs[top]:.1%}" in h


def test_title_reports_settings_entropy_and_kept_count(trace, labels):
    d = distribution(trace.logits[-1], SamplingParams(temperature=0.7, top_k=50, top_p=0.95))
    fig = distribution_figure(d, labels)
    text = fig.layout.title.text + fig.layout.title.subtitle.text
    assert "T = 0.7" in text and "top-k = 50" in text and "top-p = 0.95" in text
    assert f"entropy {d.entropy_bits:.2f} bits" in text and f"{d.n_kept:,} of {len(d.logits):,}" in text


def test_greedy(trace, labels):
    d = distribution(trace.logits[-1], SamplingParams(temperature=0))
    best = int(np.argmax(trace.logits[-1]))
    fig = distribution_figure(d, labels, picked=sample(d, trace.T))
    assert list(by_name(fig, "picked").customdata) == [best] and list(by_name(fig, "picked").x) == [1.0]
    assert not np.any(by_name(fig, "kept").x)        # everything else is 0
    assert "greedy" in fig.layout.title.subtitle.text and "-0.00" not in fig.layout.title.subtitle.text
    assert all("greedy" in h for t in fig.data for h in t.hovertext)
    assert "logit" in fig.layout.title.subtitle.text


def test_labels_are_escaped(trace):
    d = distribution(trace.logits[-1], SamplingParams())
    fig = distribution_figure(d, lambda i: f"<img src=x onerror=alert({i})>", n=5)
    texts = list(strings(fig.to_dict()))
    assert not any("<img" in t for t in texts)
    assert sum("&lt;img" in t for t in texts) >= 10                  # tick labels and hovers


def test_figure_carries_the_shared_template(trace, labels):
    d = distribution(trace.logits[-1], SamplingParams())
    fig = go.Figure(distribution_figure(d, labels).to_dict())           # round trip, as the app sends it
    shared = base_layout(go.Figure(), "").to_dict()["layout"]
    assert fig.to_dict()["layout"]["template"] == shared["template"]
    assert fig.layout.font.family == shared["font"]["family"]
    assert fig.layout.autosize and fig.layout.width is None


def test_records_match_the_figure(trace, labels):
    d = distribution(trace.logits[-1], SamplingParams(temperature=0.9, top_k=3))
    recs = distribution_records(d, labels, 8)
    ids = ranked(d, 8)
    assert [r["id"] for r in recs] == list(ids)
    assert [r["token"] for r in recs] == [labels(int(i)) for i in ids]
    assert [r["probability"] for r in recs] == [float(d.probs[i]) for i in ids]
    assert [r["logit"] for r in recs] == [float(d.logits[i]) for i in ids]
    assert abs(sum(r["probability"] for r in recs) - 1) < 1e-9      # top-k 3: all mass in the first 3


def test_bad_input_is_refused(trace, labels):
    d = distribution(trace.logits[-1], SamplingParams(top_k=2))
    cut = int(ranked(d, 3)[2])
    with pytest.raises(ValueError, match=f"id {cut}"):
        distribution_figure(d, labels, picked=cut)
    with pytest.raises(ValueError, match="n must"):
        distribution_figure(d, labels, n=0)
    with pytest.raises(ValueError, match="picked"):
        distribution_figure(d, labels, picked=len(d.logits))
    with pytest.raises(ValueError, match="Distribution"):
        distribution_figure(trace.logits[-1], labels)
