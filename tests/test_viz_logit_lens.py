"""Logit-lens panels against the real model: each cell names the decoded top-1 id of that layer
and position, the top row is the model's own argmax, the focus chart plots the lens record's
probability and rank, and labels are escaped."""
from __future__ import annotations

import numpy as np
import pytest

from viz import logit_lens as LL
from viz.common import piece_label, plotly_text


@pytest.fixture(scope="module")
def labels(lm):
    return lambda i: lm.tokenizer.pieces([i])[0].display


@pytest.fixture(scope="module")
def positions(trace):
    return list(range(2, trace.T))


@pytest.fixture(scope="module")
def lens(lm, trace, positions):
    return lm.logit_lens(trace, positions)


def cell(s: str) -> str:
    s = s if len(s) <= LL._CELL_CHARS else s[: LL._CELL_CHARS - 1] + "…"
    return plotly_text(s)


def test_cells_name_the_decoded_top1_and_colour_its_probability(lens, trace, labels, positions):
    fig = LL.logit_lens_figure(lens, trace, labels)
    heat = fig.data[0]
    R, P = len(lens.layer_labels), len(positions)
    assert R == trace.config.n_layer + 1
    z = np.asarray(heat.z)
    assert z.shape == (R, P)
    np.testing.assert_array_equal(z, lens.top_probs[:, :, 0])
    text = np.asarray(heat.text, dtype=object)
    for r in range(R):
        for c in range(P):
            assert text[r, c] == cell(labels(int(lens.top_ids[r, c, 0])))
    assert heat.texttemplate == "%{text}"
    assert list(fig.layout.yaxis.ticktext) == ["embed"] + [str(l) for l in range(trace.config.n_layer)]
    assert list(fig.layout.xaxis.ticktext) == [piece_label(trace.pieces[p]) for p in positions]
    assert list(np.asarray(heat.customdata)[0]) == positions


def test_top_row_is_the_models_real_prediction(lens, trace, labels, positions):
    fig = LL.logit_lens_figure(lens, trace, labels)
    argmax = trace.logits[positions].argmax(-1)
    np.testing.assert_array_equal(lens.top_ids[-1, :, 0], argmax)
    np.testing.assert_array_equal(lens.target_ids, argmax)
    top_text = np.asarray(fig.data[0].text, dtype=object)[-1]
    assert list(top_text) == [cell(labels(int(i))) for i in argmax]


def test_hover_lists_the_top5_with_probabilities(lens, trace, labels):
    fig = LL.logit_lens_figure(lens, trace, labels)
    hover = np.asarray(fig.data[0].hovertext, dtype=object)
    r, c = 17, 3
    entry = hover[r][c]
    for j in range(5):
        assert plotly_text(labels(int(lens.top_ids[r, c, j]))) in entry
        assert f"{lens.top_probs[r, c, j]:.3f}" in entry
    nxt = piece_label(trace.pieces[lens.positions[c] + 1])
    assert f"next in prompt: “{nxt}”" in entry


def test_focus_chart_plots_probability_and_rank_of_the_final_prediction(lens, trace, labels):
    focus = trace.T - 1
    fig = LL.focus_lens_figure(lens, trace, focus, labels)
    prob, rank = fig.data
    c = list(lens.positions).index(focus)
    np.testing.assert_array_equal(np.asarray(prob.y), lens.target_probs[:, c])
    np.testing.assert_array_equal(np.asarray(rank.y), lens.target_ranks[:, c] + 1)
    assert rank.y[-1] == 1                                    # the final layer's top-1 is rank 1
    assert prob.y[-1] == pytest.approx(lens.top_probs[-1, c, 0])
    ax = fig.layout.yaxis2
    assert ax.type == "log" and ax.range[0] > ax.range[1]     # reversed: rank 1 at the top
    assert rank.yaxis == "y2"
    target = plotly_text(labels(int(lens.target_ids[c])))
    assert target in prob.name and target in fig.layout.title.text


def test_labels_are_escaped(lens, trace):
    hostile = lambda i: f'<img src=x onerror=alert({i})>"'
    fig = LL.logit_lens_figure(lens, trace, hostile)
    js = fig.to_json()
    assert "<img" not in js and "\\u003cimg" not in js and "&lt;img" in js and "&quot;" not in js
    fig2 = LL.focus_lens_figure(lens, trace, lens.positions[0], hostile)
    js2 = fig2.to_json()
    assert "<img" not in js2 and "\\u003cimg" not in js2


def test_validation(lm, lens, trace, labels):
    with pytest.raises(ValueError, match="focus_pos"):
        LL.focus_lens_figure(lens, trace, 0, labels)            # 0 is not among the lens positions
    with pytest.raises(ValueError, match="focus_pos"):
        LL.focus_lens_figure(lens, trace, True, labels)
    with pytest.raises(ValueError, match="labels"):
        LL.logit_lens_figure(lens, trace, "not callable")
    short = lm.trace("Hi there")
    with pytest.raises(ValueError, match="outside"):
        LL.logit_lens_figure(lens, short, labels)               # lens of another, longer prompt
    with pytest.raises(ValueError, match="LogitLens"):
        LL.logit_lens_figure({"positions": (0,)}, trace, labels)


def test_the_lens_says_when_positions_are_left_out(lm, labels):
    tr = lm.trace("one two three four five six seven eight nine ten eleven twelve thirteen fourteen")
    shown = list(range(tr.T - 12, tr.T))
    fig = LL.logit_lens_figure(lm.logit_lens(tr, shown), tr, labels)
    assert f"12 of {tr.T} positions shown" in fig.layout.title.text
    assert "left out" not in LL.logit_lens_figure(lm.logit_lens(tr), tr, labels).layout.title.text


# ---- Chinese -------------------------------------------------------------------------------------------
def test_every_logit_lens_figure_speaks_chinese(tiny_lm, tiny_trace, monkeypatch):
    """Both panels, in every form (all positions, some left out, colour-only cells, top-1-only hover),
    drawn under speaking("zh"): no English left but the tokens (the tiny model's random guesses
    are any vocabulary entries). Real facts do not matter here, so the tiny model draws them."""
    import re

    from zh_text import stray_in_figure
    from viz.words import speaking

    tr = tiny_trace
    tiny_labels = lambda i: tiny_lm.tokenizer.pieces([i])[0].display
    full, part = tiny_lm.logit_lens(tr), tiny_lm.logit_lens(tr, list(range(tr.T - 6, tr.T)))
    with speaking("zh"):
        figs = [LL.logit_lens_figure(full, tr, tiny_labels), LL.logit_lens_figure(part, tr, tiny_labels),
                LL.focus_lens_figure(full, tr, tr.T - 1, tiny_labels), LL.focus_lens_figure(part, tr, tr.T - 3, tiny_labels)]
        monkeypatch.setattr(LL, "_MAX_TEXT_COLUMNS", 4)        # colour-only cells, top-1-only hover
        monkeypatch.setattr(LL, "_MAX_HOVER_CELLS", 10)
        figs.append(LL.logit_lens_figure(full, tr, tiny_labels))
    names = [tiny_labels(int(i)) for lens in (full, part) for i in (*lens.top_ids.ravel(), *lens.target_ids)]
    names += [piece_label(p) for p in tr.pieces]
    tokens = {w for s in names for w in re.findall(r"[A-Za-z][A-Za-z0-9_\-·.]*[A-Za-z0-9]|[A-Za-z]+", s)}
    for fig in figs:
        assert stray_in_figure(fig, tokens) == {}
    assert figs[0].layout.title.text.startswith("logit 透镜") and "略去" not in figs[0].layout.title.text
    assert f"共 {tr.T} 个位置，显示了 6 个（最后几个和焦点），其余 {tr.T - 6} 个略去" in figs[1].layout.title.text
    assert f"共 {tr.T} 个位置：悬停可看词元" in figs[4].layout.title.text and figs[4].data[0].text is None
    assert "首选" in figs[4].data[0].hovertemplate
    assert "（提示词已结束）" in np.asarray(figs[0].data[0].hovertext, dtype=object)[0, -1]
    assert figs[0].layout.yaxis.ticktext[0] == "嵌入" and figs[2].layout.xaxis.ticktext[0] == "嵌入"
    assert "的排名" in figs[2].data[1].name and "之后的预测是怎样形成的" in figs[3].layout.title.text
    # English is the default again outside the block.
    again = LL.logit_lens_figure(part, tr, tiny_labels)
    assert "Logit lens" in again.layout.title.text and again.layout.yaxis.ticktext[0] == "embed"
    assert f"6 of {tr.T} positions shown (the last ones and the focus), the other {tr.T - 6} left out" in again.layout.title.text
