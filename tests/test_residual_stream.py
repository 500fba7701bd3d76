"""The residual-stream picture of one token: sizes from the trace, consistent with the stream's
additions (resid_post = resid_pre + attn_out + mlp_out), in English and 中文."""
from __future__ import annotations

import numpy as np
import pytest

from viz.residual_stream import residual_stream_figure, stream_sizes


def test_sizes_follow_the_streams_additions(tiny_trace):
    tr, focus = tiny_trace, tiny_trace.T - 1
    s = stream_sizes(tr, focus)
    for l in range(tr.config.n_layer):
        pre, attn, mlp = (tr.act(n, l)[focus].astype(np.float64) for n in ("hook_resid_pre", "hook_attn_out", "hook_mlp_out"))
        assert s["stream"][l] == pytest.approx(np.linalg.norm(pre + attn + mlp), rel=1e-4)
        assert s["attn"][l] == pytest.approx(np.linalg.norm(attn), rel=1e-6)
        assert -1 <= s["turn"][l] <= 1


def test_figure_marks_the_layer_and_speaks_chinese(tiny_trace):
    from zh_text import stray_in_figure
    from viz.words import speaking
    fig = residual_stream_figure(tiny_trace, 0)
    assert fig.layout.meta["gg_mark"] == {"kind": "column"} and len(fig.data[0].y) == tiny_trace.config.n_layer
    with speaking("zh"):
        zh = residual_stream_figure(tiny_trace, 1)
    tokens = [w for p in tiny_trace.pieces for w in p.label.replace("·", " ").split()]
    assert stray_in_figure(zh, tokens + ["attn_out", "mlp_out"]) == {} and "残差流" in zh.layout.title.text
    with pytest.raises(ValueError):
        residual_stream_figure(tiny_trace, tiny_trace.T)
