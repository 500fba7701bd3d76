"""Attention panels: one head's pattern, all heads of a layer, an overview of every head, the
arithmetic for one query token (scores -> scaled & masked -> softmax, with its Q, K and V), which
query heads share which key/value head, and a tiny worked example.

Every number comes from the Trace (stored q, k, v, z and pattern; raw scores recomputed here in
numpy), except `worked_example()`, which is an explicitly labelled toy.

Lean figures: one heatmap trace per picture (never one subplot per head), float32 arrays (sent to
the browser as base64 typed arrays), hover text built from a few per-axis strings rather than one
string per cell, and large prompts pooled to a capped number of cells (the title says so).

Hover labels on token axes: up to `_MAX_TICKS` tokens the axis carries one tick per token
(tickvals/ticktext; Plotly's hover shows a tick's text). Beyond that the ticks are thinned and every
position gets its label through `labelalias` (keys are the plain position numbers, so a token that
looks like a number cannot collide with a position); hover shows the label either way.

Modules by concern: pattern (one head's heatmap), overview (all heads of a layer, every head's
statistics, grouped-query sharing), detail (one query step by step), toy (the worked example).
Every public name is re-exported here: callers use `viz.attention.<name>`.
"""
from __future__ import annotations

from ._base import _MAX_TICKS
from .detail import attention_detail_figure, detail_numbers
from .overview import _GAP, _HEAD_POOL, METRICS, all_heads_figure, gqa_figure, head_statistics, layer_heads_figure
from .pattern import _LOG_FLOOR, head_pattern_figure
from .toy import worked_example, worked_example_numbers

__all__ = ["METRICS", "all_heads_figure", "attention_detail_figure", "detail_numbers", "gqa_figure",
           "head_pattern_figure", "head_statistics", "layer_heads_figure", "worked_example",
           "worked_example_numbers"]
