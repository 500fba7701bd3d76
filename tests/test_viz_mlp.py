"""MLP panels against the real model: the heatmap holds hook_post, the "top" neurons are the true
largest by mean |activation|, the focus token's bars are the true argmax of |post| with gate/up
pieces that multiply back to post, and every label is escaped. The long-prompt aggregation and the
escaping check need only some trace of those prompts: they come from the tiny random-weight model
(tests/tiny_model.py), which runs them in milliseconds instead of seconds."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from viz import mlp as M
from viz.common import piece_label

LONG = ("Once upon a time, in a small village by the sea, there lived an old fisherman named Tom. "
        "Every morning he walked down to the harbour and checked his nets. ") * 4


def post(trace, layer):
    return trace.act("mlp.hook_post", layer).astype(np.float32)


@pytest.fixture(scope="module")
def long_trace(tiny_lm):
    # "all" aggregates columns once T x d_mlp passes M._MAX_CELLS: with the tiny model's 128
    # neurons that takes more than 312 tokens (3 x LONG is ~410)
    return tiny_lm.trace(LONG * 3)


@pytest.mark.parametrize("layer", [0, 13, 29])
def test_top_neurons_are_the_largest_by_mean_abs_activation(trace, layer):
    fig = M.mlp_figure(trace, layer, sort="top", n_neurons=32)
    heat = fig.data[0]
    idx = [int(fig.layout.xaxis.labelalias[str(c)]) for c in range(32)]     # every column's neuron
    assert list(fig.layout.xaxis.ticktext) == [str(i) for i in idx[::2]]     # ticks thinned to 16
    p = post(trace, layer)
    mean_abs = np.abs(p).mean(0)
    assert idx == list(np.argsort(-mean_abs, kind="stable")[:32])
    assert set(idx) == set(np.argpartition(-mean_abs, 32)[:32].tolist())
    assert all(mean_abs[a] >= mean_abs[b] for a, b in zip(idx, idx[1:]))
    np.testing.assert_array_equal(np.asarray(heat.z), p[:, idx])
    assert heat.zmid == 0 and heat.zmin == -heat.zmax                 # diverging, centred at 0
    assert list(fig.layout.yaxis.ticktext) == [piece_label(pc) for pc in trace.pieces]
    assert list(fig.layout.yaxis.tickvals) == list(range(trace.T))    # repeated tokens keep their rows


def test_exclude_first_hides_the_sink_row_from_view_and_ranking(trace):
    layer = 29
    fig = M.mlp_figure(trace, layer, n_neurons=16, exclude_first=True)
    z = np.asarray(fig.data[0].z)
    assert np.isnan(z[0]).all()
    p = post(trace, layer)
    idx = [int(fig.layout.xaxis.labelalias[str(c)]) for c in range(16)]
    assert list(fig.layout.xaxis.ticktext) == [str(i) for i in idx]          # 16 columns: every one a tick
    assert idx == list(np.argsort(-np.abs(p[1:]).mean(0), kind="stable")[:16])
    np.testing.assert_array_equal(z[1:], p[1:, idx])
    assert "first token hidden" in fig.layout.title.text


def test_all_neurons_short_prompt_is_the_whole_matrix(trace):
    fig = M.mlp_figure(trace, 7, sort="all")
    np.testing.assert_array_equal(np.asarray(fig.data[0].z), post(trace, 7))
    assert f"all {trace.config.d_mlp} neurons" in fig.layout.title.text


def test_all_neurons_long_prompt_is_aggregated_and_says_so(long_trace):
    layer = 1
    fig = M.mlp_figure(long_trace, layer, sort="all")
    z = np.asarray(fig.data[0].z)
    F = long_trace.config.d_mlp
    per_col = int(fig.data[0].dx)
    assert per_col > 1 and z.shape == (long_trace.T, -(-F // per_col))
    assert z.size <= M._MAX_CELLS * 1.05
    p = post(long_trace, layer)
    for c in (0, 5, z.shape[1] - 1):
        group = p[:, c * per_col:(c + 1) * per_col]
        expected = group[np.arange(long_trace.T), np.abs(group).argmax(1)]
        np.testing.assert_array_equal(z[:, c], expected)
    assert f"{per_col} per column" in fig.layout.title.text
    assert fig.layout.yaxis.labelalias[str(long_trace.T - 1)] == piece_label(long_trace.pieces[-1])


@pytest.mark.parametrize("layer,focus", [(0, 0), (10, 4), (29, 10)])
def test_focus_bars_are_the_true_argmax_of_abs_post(trace, layer, focus):
    fig = M.top_neurons_figure(trace, layer, focus, n=15)
    bar = fig.data[0]
    p = post(trace, layer)[focus]
    expected = np.argsort(-np.abs(p), kind="stable")[:15]
    assert [int(t[1:]) for t in fig.layout.yaxis.ticktext] == list(expected)
    assert int(fig.layout.yaxis.ticktext[0][1:]) == int(np.abs(p).argmax())
    np.testing.assert_array_equal(np.asarray(bar.x), p[expected])
    gate, silu_gate, up = np.asarray(bar.customdata, dtype=np.float64).T
    np.testing.assert_array_equal(gate, trace.act("mlp.hook_pre", layer)[focus, expected].astype(np.float32))
    np.testing.assert_array_equal(up, trace.act("mlp.hook_pre_linear", layer)[focus, expected].astype(np.float32))
    np.testing.assert_allclose(silu_gate, gate / (1 + np.exp(-gate)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(silu_gate * up, p[expected], rtol=2e-2, atol=2e-3)   # float16 storage
    for word in ("gate", "silu(gate)", "up", "post"):
        assert word in bar.hovertemplate


def test_flow_html_names_the_real_widths_and_the_nonlinearity(trace):
    html = M.mlp_flow_html(trace.config)
    assert "576" in html and "1536" in html and "SiLU(gate) ⊙ up" in html and "residual" in html
    gpt2 = dataclasses.replace(trace.config, family="gpt2", n_kv_head=trace.config.n_head)
    html2 = M.mlp_flow_html(gpt2)
    assert "GELU" in html2 and "SiLU" not in html2


def test_hostile_prompt_is_escaped(tiny_lm):
    tr = tiny_lm.trace('say "<b>hi</b>" <img src=x onerror=alert(1)>')
    for fig in (M.mlp_figure(tr, 1), M.top_neurons_figure(tr, 1, 2)):
        js = fig.to_json()
        assert "\\u003cimg" not in js and "\\u003cb\\u003e" not in js and "<img" not in js
        assert "&quot;" not in js
    ticks = list(M.mlp_figure(tr, 1).layout.yaxis.ticktext)
    assert any("&lt;" in t for t in ticks) and not any("<" in t for t in ticks)


@pytest.mark.parametrize("kwargs", [dict(layer=30), dict(layer=-1), dict(layer=2.0), dict(sort="best"),
                                    dict(n_neurons=0), dict(n_neurons=1537), dict(n_neurons=True),
                                    dict(exclude_first=1)])
def test_mlp_figure_validation(trace, kwargs):
    args = dict(layer=0) | kwargs
    with pytest.raises(ValueError, match=r"layer|sort|n_neurons|exclude_first"):
        M.mlp_figure(trace, **args)


@pytest.mark.parametrize("layer,focus,n", [(30, 0, 5), (0, 11, 5), (0, -1, 5), (0, 0, 0), (0, 0, 5000)])
def test_top_neurons_validation(trace, layer, focus, n):
    with pytest.raises(ValueError, match=r"layer|position|\bn\b"):
        M.top_neurons_figure(trace, layer, focus, n)


# ---- Chinese -------------------------------------------------------------------------------------------
# Hook names are names (as the English hover shows them): allowed in the Chinese hover too.
HOOK_NAMES = ("hook_pre", "hook_pre_linear")


def test_every_mlp_figure_speaks_chinese(tiny_trace, long_trace):
    import re

    from zh_text import stray_in_figure, stray_latin
    from viz.words import speaking

    gpt2 = dataclasses.replace(tiny_trace.config, family="gpt2", n_kv_head=tiny_trace.config.n_head)
    with speaking("zh"):
        figs = [M.mlp_figure(tiny_trace, 1), M.mlp_figure(tiny_trace, 0, sort="all", exclude_first=True),
                M.mlp_figure(long_trace, 1, sort="all"), M.mlp_figure(long_trace, 1, n_neurons=8, exclude_first=True),
                M.top_neurons_figure(tiny_trace, 1, 3),
                M.top_neurons_figure(dataclasses.replace(tiny_trace, config=gpt2), 1, 3)]
    tokens = {w for tr in (tiny_trace, long_trace) for p in tr.pieces
              for w in re.findall(r"[A-Za-z][A-Za-z0-9_\-·.]*[A-Za-z0-9]|[A-Za-z]+", p.label)}
    for fig in figs:
        assert stray_in_figure(fig, tokens | set(HOOK_NAMES)) == {}
    assert "神经元" in figs[0].layout.title.text and "每列" in figs[2].layout.title.text
    assert "已隐藏第一个词元" in figs[1].layout.title.text
    # The flow is static HTML carrying both languages; its Chinese half reads as Chinese.
    for cfg in (tiny_trace.config, gpt2):
        html = M.mlp_flow_html(cfg)
        en, zh = re.fullmatch(r'<div class="mlp-flow"><div class="gg-en">(.*)</div><div class="gg-zh">(.*)</div></div>',
                              html, re.S).groups()
        assert "residual" in en and "残差流" in zh and "residual" not in zh
        assert stray_latin(zh, ("x·W_gate", "x·W_up", "x·sigmoid")) == []      # formulas
    # English is the default again outside the block.
    assert "neuron activations" in M.mlp_figure(tiny_trace, 1).layout.title.text
