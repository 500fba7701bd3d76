"""Attention panels, checked as data against the real model's trace: the heatmap is the stored
pattern with NaN in the future, ticks are the trace's tokens (repeats kept apart), the step-by-step
figure's numbers agree with q, k, v, z and the pattern, and every label is escaped.

The long prompt (pooling, thinned ticks) and the hostile prompt (escaping) need only some trace of
those tokens: they come from the tiny random-weight model (tests/tiny_model.py: 2 layers, 4 heads,
the default model's tokenizer), which runs them in milliseconds instead of seconds."""
from __future__ import annotations

import math

import numpy as np
import pytest

from viz import attention as A
from viz.common import piece_label

HOSTILE = 'He said "hi" <img src=x onerror=alert(1)> to the cat'
LONG = ("Once upon a time, in a small village by the sea, there lived an old fisherman named Tom. "
        "Every morning he walked down to the harbour and checked his nets. ") * 4


def labels_of(trace, positions=None):
    positions = range(trace.T) if positions is None else positions
    return [piece_label(trace.pieces[i]) for i in positions]


def masked_pattern(trace, layer, head):
    w = trace.act("attn.hook_pattern", layer)[head].astype(np.float32)
    w[np.triu(np.ones_like(w, dtype=bool), 1)] = np.nan
    return w


@pytest.fixture(scope="module")
def hostile(tiny_lm):
    return tiny_lm.trace(HOSTILE)


@pytest.fixture(scope="module")
def long_trace(tiny_lm):
    return tiny_lm.trace(LONG)


# ---- one head ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("layer,head", [(0, 0), (7, 4), (29, 8)])
def test_head_pattern_is_the_trace_pattern_with_an_empty_future(trace, layer, head):
    fig = A.head_pattern_figure(trace, layer, head, focus=3)
    z = np.asarray(fig.data[0].z, dtype=np.float32)
    T = trace.T
    assert z.shape == (T, T)
    lower = np.tril(np.ones((T, T), dtype=bool))
    np.testing.assert_array_equal(z[lower], masked_pattern(trace, layer, head)[lower])
    assert np.isnan(z[~lower]).all(), "the causal upper triangle must be NaN, not 0"
    np.testing.assert_allclose(np.nansum(z, axis=1), 1.0, atol=5e-3)


def test_token_ticks_are_the_pieces_and_repeated_tokens_stay_apart(trace):
    fig = A.head_pattern_figure(trace, 2, 1, focus=0)
    for axis in (fig.layout.xaxis, fig.layout.yaxis):
        assert list(axis.tickvals) == list(range(trace.T))
        assert list(axis.ticktext) == labels_of(trace)
    texts = list(fig.layout.xaxis.ticktext)
    repeated = [t for t in set(texts) if texts.count(t) > 1]
    assert "·the" in repeated and "·cat" in repeated          # the fixture repeats " the" and " cat"


def test_focus_row_is_outlined(trace):
    focus = 6
    fig = A.head_pattern_figure(trace, 3, 2, focus=focus)
    rect = fig.layout.shapes[0]
    assert (rect.y0, rect.y1) == (focus - 0.5, focus + 0.5)
    assert rect.x0 == -0.5 and rect.x1 == focus + 0.5
    assert f"#{focus}" in fig.layout.title.text


def test_sink_hidden_as_computed_or_renormalised(trace):
    layer, head = 20, 3
    raw = masked_pattern(trace, layer, head)
    fig = A.head_pattern_figure(trace, layer, head, focus=2, exclude_first=True)
    z = np.asarray(fig.data[0].z, dtype=np.float32)
    assert np.isnan(z[:, 0]).all()
    np.testing.assert_array_equal(z[:, 1:], raw[:, 1:])
    assert "as computed" in fig.layout.title.text
    fig = A.head_pattern_figure(trace, layer, head, focus=2, exclude_first=True, renormalise=True)
    z = np.asarray(fig.data[0].z, dtype=np.float32)
    np.testing.assert_allclose(np.nansum(z[1:], axis=1), 1.0, atol=1e-5)
    assert "renormalised" in fig.layout.title.text
    assert fig.layout.xaxis.range[0] == -0.5                   # key 0 keeps its column (empty)


def test_log_scale_colours_log10_and_hovers_the_weight(trace):
    fig = A.head_pattern_figure(trace, 15, 0, focus=1, scale="log")
    heat = fig.data[0]
    w = masked_pattern(trace, 15, 0)
    np.testing.assert_array_equal(np.asarray(heat.customdata, dtype=np.float32), w)
    with np.errstate(invalid="ignore"):
        expected = np.log10(np.maximum(w, 1e-4))
    np.testing.assert_allclose(np.asarray(heat.z, dtype=np.float32), expected, rtol=1e-6)
    assert "customdata" in heat.hovertemplate and "weight" in heat.hovertemplate


def test_long_prompt_labels_every_position_through_labelalias(long_trace):
    T = long_trace.T
    assert T > 60
    fig = A.head_pattern_figure(long_trace, 1, 1, focus=T - 1)
    alias = fig.layout.xaxis.labelalias
    assert [alias[str(i)] for i in range(T)] == labels_of(long_trace)
    assert fig.layout.xaxis.dtick > 1                          # ticks thinned, hover still labelled


# ---- all heads of a layer -------------------------------------------------------------------------------
def test_layer_heads_is_one_heatmap_with_every_head_and_gaps(trace):
    layer = 11
    fig = A.layer_heads_figure(trace, layer, head=4)
    assert len(fig.data) == 1
    T, H = trace.T, trace.config.n_head
    z = np.asarray(fig.data[0].z, dtype=np.float32)
    cd = np.asarray(fig.data[0].customdata)
    assert z.shape == (T, H * T + (H - 1) * A._GAP)
    for h in range(H):
        c0 = h * (T + A._GAP)
        block = z[:, c0:c0 + T]
        np.testing.assert_array_equal(block[~np.isnan(block)],
                                      masked_pattern(trace, layer, h)[~np.isnan(block)])
        assert np.isnan(block[np.triu(np.ones((T, T), dtype=bool), 1)]).all()
        assert (cd[:, c0:c0 + T] == h).all()
        if h < H - 1:
            assert np.isnan(z[:, c0 + T:c0 + T + A._GAP]).all()
    texts = [a.text for a in fig.layout.annotations]
    assert "h0" in texts[0] and "kv0" in texts[0] and "kv2" in texts[8]
    assert fig.layout.shapes[0].x0 == 4 * (T + A._GAP) - 0.5


def test_layer_heads_pools_long_prompts_and_keeps_the_attention_mass(long_trace):
    fig = A.layer_heads_figure(long_trace, 1)
    z = np.asarray(fig.data[0].z, dtype=np.float32)
    B, H = A._HEAD_POOL, long_trace.config.n_head
    assert long_trace.T > B and z.shape[0] <= B and z.size <= B * (H * B + (H - 1) * A._GAP)
    for h in range(H):
        block = z[:, h * (z.shape[0] + A._GAP):h * (z.shape[0] + A._GAP) + z.shape[0]]
        np.testing.assert_allclose(np.nansum(block, axis=1), 1.0, atol=1e-2)   # each query's weights sum to 1
    assert "pooled" in fig.layout.title.text


# ---- every head ---------------------------------------------------------------------------------------
def test_all_heads_statistics_come_from_the_patterns(trace):
    fig = A.all_heads_figure(trace, "sink", selected=(5, 2))
    z = np.asarray(fig.data[0].z, dtype=np.float32)
    L, H = trace.config.n_layer, trace.config.n_head
    assert z.shape == (L, H)
    cd = np.asarray(fig.data[0].customdata)
    assert cd.shape == (L, H, 2) and list(cd[12, 7]) == [12, 7]
    for l, h in [(0, 0), (12, 7), (29, 3)]:
        p = trace.act("attn.hook_pattern", l)[h].astype(np.float64)
        i = np.arange(1, trace.T)
        assert z[l, h] == pytest.approx(p[1:, 0].mean(), abs=1e-4)
        stats = A.head_statistics(trace)[l, h]
        assert stats[1] == pytest.approx(p[i, i - 1].mean(), abs=1e-4)
        assert stats[2] == pytest.approx(p[i, i].mean(), abs=1e-4)
        ent = -(np.where(p[1:] > 0, p[1:] * np.log2(np.where(p[1:] > 0, p[1:], 1)), 0)).sum(1).mean()
        assert stats[3] == pytest.approx(ent, abs=1e-3)
    ent_fig = A.all_heads_figure(trace, "entropy")
    np.testing.assert_allclose(np.asarray(ent_fig.data[0].z), A.head_statistics(trace)[:, :, 3])
    assert (fig.layout.shapes[0].x0, fig.layout.shapes[0].y0) == (1.5, 4.5)


# ---- one query token step by step --------------------------------------------------------------------
@pytest.mark.parametrize("layer,head,focus", [(0, 0, 3), (14, 4, 10), (29, 8, 0)])
def test_detail_numbers_agree_with_the_trace(trace, layer, head, focus):
    fig = A.attention_detail_figure(trace, layer, head, focus)
    raw, scaled, soft, q_map, k_map, z_map, v_map = fig.data
    cfg = trace.config
    kv = cfg.kv_head_of(head)
    q = trace.act("attn.hook_q", layer)[head, focus]
    k = trace.act("attn.hook_k", layer)[kv]
    v = trace.act("attn.hook_v", layer)[kv]
    # raw q·k for every key, the future included
    assert len(raw.y) == trace.T
    np.testing.assert_allclose(np.asarray(raw.y), k.astype(np.float64) @ q.astype(np.float64), rtol=1e-4, atol=1e-3)
    # raw / sqrt(d) = the (derived) scaled, masked scores; only allowed keys are drawn
    derived = trace.act("attn.hook_attn_scores", layer)[head, focus]
    assert len(scaled.y) == focus + 1 and np.isneginf(derived[focus + 1:]).all()
    np.testing.assert_allclose(np.asarray(raw.y)[:focus + 1] / math.sqrt(cfg.d_head), np.asarray(scaled.y), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(scaled.y), derived[:focus + 1], rtol=1e-4, atol=1e-4)
    # the softmax row is the pattern row and sums to 1
    pattern_row = trace.act("attn.hook_pattern", layer)[head, focus].astype(np.float32)
    np.testing.assert_array_equal(np.asarray(soft.y), pattern_row[:focus + 1])
    assert float(np.sum(soft.y)) == pytest.approx(1.0, abs=2e-3)
    # Q, K, V, z heatmaps (dims on the rows)
    np.testing.assert_array_equal(np.asarray(q_map.z)[:, 0], q)
    np.testing.assert_array_equal(np.asarray(k_map.z), k.T)
    np.testing.assert_array_equal(np.asarray(v_map.z), v.T)
    z = trace.act("attn.hook_z", layer)[head, focus]
    np.testing.assert_array_equal(np.asarray(z_map.z)[:, 0], z)
    np.testing.assert_allclose(pattern_row.astype(np.float64) @ v, z, atol=5e-3)   # z = sum of weight * V
    assert f"K/V head {kv}" in " ".join(a.text for a in fig.layout.annotations)
    n = A.detail_numbers(trace, layer, head, focus)
    np.testing.assert_array_equal(n["raw"], np.asarray(raw.y))
    # the recomputed arithmetic agrees with the model's own numbers
    np.testing.assert_allclose(n["softmax_numpy"], n["pattern"], atol=2e-3)
    derived = trace.act("attn.hook_attn_scores", layer)[head, focus]
    np.testing.assert_allclose(n["scaled"][:focus + 1], derived[:focus + 1], rtol=1e-4, atol=1e-4)
    assert np.isneginf(derived[focus + 1:]).all() and np.isneginf(n["scaled"][focus + 1:]).all()


def test_detail_marks_the_masked_future(trace):
    fig = A.attention_detail_figure(trace, 4, 1, 2)
    assert any("−∞" in a.text for a in fig.layout.annotations)
    colours = list(fig.data[0].marker.color)
    assert len(set(colours[:3])) == 1 and colours[3] != colours[0]


# ---- GQA and the toy example -----------------------------------------------------------------------------
def test_gqa_figure_links_each_query_head_to_its_kv_head(trace):
    cfg = trace.config
    fig = A.gqa_figure(cfg, head=4)
    lines = fig.data[0]
    xs = list(lines.x)
    kv_x = list(fig.data[2].x)
    for h in range(cfg.n_head):
        q_x, target = xs[3 * h], xs[3 * h + 1]
        assert q_x == h and target == kv_x[cfg.kv_head_of(h)]
    assert [cfg.kv_head_of(h) for h in range(9)] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert "9 query heads share 3 K/V heads" in fig.layout.title.text


def test_worked_example_numbers():
    n = A.worked_example_numbers()
    np.testing.assert_array_equal(n["scores"], [[2, 0], [0, 2]])
    np.testing.assert_allclose(n["weights"][0], [math.e ** 2 / (math.e ** 2 + 1), 1 / (math.e ** 2 + 1)])
    assert round(n["weights"][0, 0], 2) == 0.88 and round(n["weights"][0, 1], 2) == 0.12
    np.testing.assert_allclose(n["out"][0], n["weights"][0, 0] * n["X"][0] + n["weights"][0, 1] * n["X"][1])
    for lang in ("en", "zh"):
        html = A.worked_example(lang)
        assert "[0.88, 0.12]" in html and ("toy" in html or "玩具" in html)
    with pytest.raises(ValueError):
        A.worked_example("fr")


# ---- escaping and validation -----------------------------------------------------------------------------
def test_hostile_prompt_is_escaped_everywhere(hostile):
    figs = [A.head_pattern_figure(hostile, 1, 1, focus=hostile.T - 1),
            A.layer_heads_figure(hostile, 1), A.attention_detail_figure(hostile, 1, 1, hostile.T - 1)]
    for fig in figs:
        js = fig.to_json()
        assert "<img" not in js and "\\u003cimg" not in js and "·&lt;" in js
        assert "&quot;" not in js                          # Plotly would show &quot; literally
    ticks = list(figs[0].layout.xaxis.ticktext)
    assert "·&lt;" in ticks and "·&#34;" in ticks and not any("<" in t for t in ticks)


@pytest.mark.parametrize("kwargs", [dict(layer=30), dict(layer=-1), dict(layer="3"), dict(layer=True),
                                    dict(head=9), dict(head=1.0), dict(focus=99), dict(focus=-1),
                                    dict(scale="cubic"), dict(exclude_first="yes")])
def test_bad_inputs_raise_value_errors_naming_the_value(trace, kwargs):
    args = dict(layer=0, head=0, focus=0) | kwargs
    with pytest.raises(ValueError, match=r"layer|head|position|scale|exclude_first"):
        A.head_pattern_figure(trace, **args)
    if "scale" not in kwargs and "exclude_first" not in kwargs:
        with pytest.raises(ValueError):
            A.attention_detail_figure(trace, args["layer"], args["head"], args["focus"])


def test_other_validation(trace):
    with pytest.raises(ValueError, match="metric"):
        A.all_heads_figure(trace, "nonsense")
    with pytest.raises(ValueError, match="selected"):
        A.all_heads_figure(trace, selected=(1,))
    with pytest.raises(ValueError, match="layer"):
        A.layer_heads_figure(trace, 31)
    with pytest.raises(ValueError, match="head"):
        A.layer_heads_figure(trace, 1, head=12)
    with pytest.raises(ValueError, match="head"):
        A.gqa_figure(trace.config, head=9)


# ---- Chinese -------------------------------------------------------------------------------------------
def token_words(trace):
    """The Latin words of the prompt's own tokens: user text, which titles quote as it is."""
    import re
    return {w for p in trace.pieces for w in re.findall(r"[A-Za-z][A-Za-z0-9_\-·.]*[A-Za-z0-9]|[A-Za-z]+", p.label)}


def test_every_attention_figure_speaks_chinese(tiny_trace, long_trace):
    import dataclasses

    from zh_text import stray_in_figure
    from viz.words import speaking

    cfg, T = tiny_trace.config, tiny_trace.T
    mha = dataclasses.replace(cfg, n_kv_head=cfg.n_head)
    with speaking("zh"):
        figs = [A.head_pattern_figure(tiny_trace, 1, 2, focus=3),
                A.head_pattern_figure(tiny_trace, 1, 2, focus=3, exclude_first=True, scale="log"),
                A.head_pattern_figure(tiny_trace, 1, 2, focus=3, exclude_first=True, renormalise=True),
                A.layer_heads_figure(tiny_trace, 0, exclude_first=True, head=1),
                A.layer_heads_figure(long_trace, 1, exclude_first=True, renormalise=True),
                *[A.all_heads_figure(tiny_trace, m, selected=(1, 2)) for m in A.METRICS],
                A.attention_detail_figure(tiny_trace, 1, 3, focus=2),
                A.attention_detail_figure(tiny_trace, 0, 0, focus=T - 1),
                A.gqa_figure(cfg, head=1), A.gqa_figure(mha)]
    allowed = token_words(tiny_trace) | token_words(long_trace)
    for fig in figs:
        assert stray_in_figure(fig, allowed) == {}
    # Texts the check does not read (hover texts, cell texts, hover alias labels) are Chinese too.
    assert "查询头" in figs[-2].data[1].hovertext[0] and "共用" in figs[-2].data[2].hovertext[0]
    assert "对首词元" in figs[5].data[0].text[0][0]
    assert "键" in next(iter(figs[3].layout.xaxis.labelalias.values()))
    assert "未来的键" in figs[-4].data[0].customdata[-1]
    assert "注意力" in figs[0].layout.title.text and "第 1 层" in figs[0].layout.title.text
    # English is the default again outside the block.
    assert "attention pattern" in A.head_pattern_figure(tiny_trace, 1, 2, focus=3).layout.title.text


def test_detail_layout_comes_from_the_grid(tiny_trace):
    from viz.common import grid_domains

    rows, cols = grid_domains([0.14, 0.12, 0.14, 0.22, 0.22], [0.05, 0.80], [0.03, 0.03, 0.04, 0.06], 0.05)
    assert rows == [(0.86, 1.0), (0.71, 0.83), (0.54, 0.68), (0.28, 0.5), (0.0, 0.22)]
    assert cols == [(0.0, 0.05), (0.1, 0.9)]
    assert grid_domains([1], [0.5, 0.5]) == ([(0.0, 1.0)], [(0.0, 0.5), (0.5, 1.0)])
    with pytest.raises(ValueError):
        grid_domains([0.6, 0.6], [1])
    with pytest.raises(ValueError):
        grid_domains([0.2, 0.2], [1], vgap=[0.1, 0.1])
    lay = A.attention_detail_figure(tiny_trace, 1, 1, 3).layout
    for n, row in (("", 0), ("2", 1), ("3", 2), ("4", 3), ("5", 3), ("6", 4), ("7", 4)):
        assert tuple(lay[f"yaxis{n}"].domain) == rows[row]
        assert tuple(lay[f"xaxis{n}"].domain) == cols[0 if n in ("4", "6") else 1]
    assert (lay.coloraxis.colorbar.len, lay.coloraxis.colorbar.y) == (0.22, 0.39)
    assert (lay.coloraxis2.colorbar.len, lay.coloraxis2.colorbar.y) == (0.22, 0.11)
