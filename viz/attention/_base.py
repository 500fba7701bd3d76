"""What the attention panels share: head labels, token axes, the stored pattern, the masked view."""
from __future__ import annotations

import numpy as np

from model.config import ModelConfig
from model.trace import Trace

from ..common import causal_future, piece_label, token_axis
from ..words import table

W = table("attention.base", {
    "head_label": ("h{head} (kv{kv})", "h{head}（KV {kv}）"),
    "sink_renormalised": ("; first token hidden, rows renormalised over the other keys",
                          "；已隐藏第一个词元，每行在其余键上重新归一化"),
    "sink_as_computed": ("; first token hidden, weights as computed (rows no longer sum to 1)",
                         "；已隐藏第一个词元，权重保持原值（各行之和不再为 1）"),
})

_MAX_TICKS = 60            # one tick per token up to this many tokens


def _labels(trace: Trace, positions=None) -> list[str]:
    positions = range(trace.T) if positions is None else positions
    return [piece_label(trace.pieces[i]) for i in positions]


def _head_label(config: ModelConfig, head: int) -> str:
    return W("head_label", head=head, kv=config.kv_head_of(head))


def _token_axis(trace: Trace, positions=None) -> dict:
    return token_axis(trace, positions, max_ticks=_MAX_TICKS)


def _focus_text(trace: Trace, focus: int) -> str:
    return f"#{focus} “{piece_label(trace.pieces[focus])}”"


def _pattern(trace: Trace, layer: int) -> np.ndarray:
    return trace.act("attn.hook_pattern", layer)            # (H, T, T) float16


def _mask_future(a: np.ndarray) -> np.ndarray:
    """NaN above the diagonal of the last two axes (future keys), float32 copy."""
    out = np.array(a, dtype=np.float32)
    out[..., causal_future(out.shape[-2], out.shape[-1])] = np.nan
    return out


def _view(w: np.ndarray, exclude_first: bool, renormalise: bool) -> np.ndarray:
    """Pattern (..., T, T) float32 with the future NaN; optionally key 0 hidden (and the rest
    renormalised to sum to 1 per row)."""
    w = _mask_future(w)
    if exclude_first:
        w[..., 0] = np.nan
        if renormalise:
            with np.errstate(invalid="ignore", divide="ignore"):
                w = w / np.nansum(w, axis=-1, keepdims=True)
    return w


def _sink_note(exclude_first: bool, renormalise: bool) -> str:
    if not exclude_first:
        return ""
    return W("sink_renormalised" if renormalise else "sink_as_computed")

