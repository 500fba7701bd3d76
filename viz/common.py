"""What every panel shares: safe labels, colour scales, layout defaults, input checks.

Labels: Plotly renders a small subset of HTML inside text (<b>, <br>, <a href=...>), so every
string that came from a user or from the vocabulary goes through `plotly_text` first. Token
axes are numeric (0..T-1) with tick text, because a categorical axis would merge repeated tokens.
"""
from __future__ import annotations

import contextvars
import html
import math
from contextlib import contextmanager
from typing import NamedTuple

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

from model.trace import Trace

# Set once: assigning a template to each figure costs ~10 ms of validation per figure.
pio.templates.default = "plotly_white"

# Colour-blind-safe scales (perceptually uniform, no red/green contrast).
SEQUENTIAL = "Viridis"
DIVERGING = "RdBu_r"          # blue = negative, red = positive; readable with red/green colour blindness
FONT = "Inter, 'Noto Sans', 'Noto Sans CJK SC', 'Noto Color Emoji', system-ui, sans-serif"
MAX_LABEL = 14


def plotly_text(s: str) -> str:
    """Escape a string for any Plotly text (ticks, hover, titles, annotations). Quotes become
    numeric entities because Plotly's text renderer decodes those but shows &quot; literally."""
    return html.escape(str(s), quote=False).replace('"', "&#34;").replace("'", "&#39;")


def short(s, max_len: int) -> str:
    """`str(s)` cut to at most `max_len` characters (the last one "…"), then escaped: cutting first,
    because cutting an escaped string could split an entity."""
    s = str(s)
    return plotly_text(s if len(s) <= max_len else s[: max_len - 1] + "…")


def piece_label(piece, max_len: int = MAX_LABEL) -> str:
    """A token's visible label (spaces as ·, newlines as ↵, a piece of a character as that
    character, "我 (1/2)", or as hex while it is incomplete), escaped."""
    return short(piece.label, max_len)


def pct(p: float, zero: str | None = "0%") -> str:
    """A probability as a percentage with one decimal, or in scientific notation below 0.1 % (so a
    small one never reads 0.0%). `zero`: what exactly 0 reads as (None: formatted like the rest)."""
    if p == 0 and zero is not None:
        return zero
    return f"{p:.1%}" if abs(p) >= 0.001 or p == 0 else f"{p:.2e}"


def token_ticks(trace: Trace, positions=None) -> tuple[list[int], list[str]]:
    """tickvals and ticktext for a token axis: "label" per position, unique by position."""
    positions = range(trace.T) if positions is None else positions
    return list(positions), [piece_label(trace.pieces[i]) for i in positions]


def check_layer(trace: Trace, layer: int) -> int:
    n = trace.config.n_layer
    if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer < n:
        raise ValueError(f"layer must be a whole number in 0..{n - 1}, got {layer!r}")
    return layer


def check_head(trace: Trace, head: int) -> int:
    n = trace.config.n_head
    if isinstance(head, bool) or not isinstance(head, int) or not 0 <= head < n:
        raise ValueError(f"head must be a whole number in 0..{n - 1}, got {head!r}")
    return head


def check_position(trace: Trace, position: int) -> int:
    if isinstance(position, bool) or not isinstance(position, int) or not 0 <= position < trace.T:
        raise ValueError(f"token position must be in 0..{trace.T - 1}, got {position!r}")
    return position


def base_layout(fig: go.Figure, title: str, height: int = 420, **extra) -> go.Figure:
    """Apply the shared look; `title` must already be escaped if it contains user text."""
    fig.update_layout(
        title=dict(text=title, x=0.01, xanchor="left", font=dict(size=15)),
        height=height, margin=dict(l=60, r=20, t=50, b=60),
        font=dict(family=FONT, size=12),
        hoverlabel=dict(font=dict(family=FONT)), **extra)
    return fig


# ---- one way to assemble a figure -------------------------------------------------------------------
_RAW = contextvars.ContextVar("glassgpt_raw_figures", default=False)


@contextmanager
def raw_figures():
    """Inside this block, figure functions that use `make_figure` return the plain dict that
    go.Figure would wrap (no validation: ~50x cheaper). server/layer_data.py builds one figure per
    layer and head this way and sends the page only what differs between them."""
    token = _RAW.set(True)
    try:
        yield
    finally:
        _RAW.reset(token)


def make_figure(data: list, layout: dict, title: str, height: int, margin: dict | None = None):
    """A figure from plain dicts in one pass, with the shared look (`title` already escaped).
    Plotly's update_* walk every key of nested dicts such as labelalias, which costs milliseconds
    per axis on long prompts, so the layout is complete before go.Figure sees it."""
    layout = {**layout, "title": dict(text=title, x=0.01, xanchor="left", font=dict(size=15)), "height": height,
              "margin": margin or dict(l=60, r=20, t=72, b=60), "font": dict(family=FONT, size=12),
              "hoverlabel": dict(font=dict(family=FONT))}
    if _RAW.get():
        return {"data": data, "layout": layout}
    return go.Figure(data=data, layout=layout)


def two_line_title(main: str, detail: str = "") -> str:
    """A short first line (fits a phone) and a smaller second line with the details."""
    return main + (f"<br><span style='font-size:11px;color:#555'>{detail}</span>" if detail else "")


def token_axis(trace: Trace, positions=None, max_ticks: int = 60, alias: bool = True) -> dict:
    """Axis settings for a numeric token axis 0..P-1 showing `positions` (default: all tokens):
    one tick per token up to `max_ticks`, beyond that thinned ticks, with every position still
    labelled through `labelalias` (keys are plain position numbers, so a token that looks like a
    number cannot collide with a position); hover shows the label either way. `alias=False`:
    thinned ticks carry only their own tokens' labels (no labelalias)."""
    positions = list(range(trace.T)) if positions is None else list(positions)
    n = len(positions)
    labels = [piece_label(trace.pieces[i]) for i in positions]
    if n <= max_ticks:
        return dict(tickmode="array", tickvals=list(range(n)), ticktext=labels)
    step = math.ceil(n / (max_ticks // 2))
    if not alias:
        return dict(tickmode="array", tickvals=list(range(0, n, step)), ticktext=labels[::step])
    return dict(tickmode="linear", tick0=0, dtick=step, tickformat="d", hoverformat="d",
                exponentformat="none", labelalias={str(i): lab for i, lab in enumerate(labels)})


def causal_future(T: int, S: int | None = None) -> np.ndarray:
    """(T, S) bool: True where key s lies in the future of query t (the last T of S positions)."""
    S = T if S is None else S
    return np.triu(np.ones((T, S), dtype=bool), S - T + 1)


def check_bool(name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


class PCA(NamedTuple):
    mean: np.ndarray            # (C,) the mean that was subtracted
    components: np.ndarray      # (k, C) principal directions, k = min(dims, rank bound), signs fixed
    ratio: np.ndarray           # (k,) explained-variance ratio of each
    coords: np.ndarray          # (m, k) the rows of X in those directions (U·S, signs fixed)


def pca(X: np.ndarray, dims: int) -> PCA:
    """Centred PCA of the rows of X by numpy SVD (float64). Signs fixed so that each component's
    largest loading is positive (the picture does not flip between runs). Fewer than `dims`
    components when X has fewer rows or columns."""
    X = np.asarray(X, dtype=np.float64)
    mean = X.mean(axis=0)
    U, S, Vt = np.linalg.svd(X - mean, full_matrices=False)
    comps = Vt[:dims]
    k = len(comps)
    signs = np.sign(comps[np.arange(k), np.abs(comps).argmax(axis=1)])
    coords = U[:, :k] * S[:k] * signs
    total = float((S ** 2).sum())
    ratio = (S[:k] ** 2) / total if total > 0 else np.zeros(k)
    return PCA(mean, comps * signs[:, None], ratio, coords)


def grid_domains(row_heights, col_widths, vgap=0.0, hgap=0.0) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """Paper domains of a declared grid of subplots, for plain-dict layouts: rows from the top down,
    columns from the left. Heights, widths and gaps are fractions of the figure (a gap: one number
    for all, or one per gap); whatever they leave over stays empty at the bottom and the right.
    -> ([(y0, y1) per row, top row first], [(x0, x1) per column])."""
    def spans(sizes, gap, name):
        sizes = [float(v) for v in sizes]
        gaps = [float(gap)] * max(0, len(sizes) - 1) if isinstance(gap, (int, float)) else [float(g) for g in gap]
        if not sizes or len(gaps) != len(sizes) - 1 or min(sizes + gaps + [0.0]) < 0:
            raise ValueError(f"{name}: need sizes >= 0 and one gap fewer than sizes, got {sizes!r}, gaps {gaps!r}")
        if sum(sizes) + sum(gaps) > 1 + 1e-9:
            raise ValueError(f"{name}: sizes and gaps add up to more than the figure ({sum(sizes) + sum(gaps):g})")
        out, at = [], 0.0
        for i, size in enumerate(sizes):
            out.append((round(at, 9), round(min(at + size, 1.0), 9)))
            at += size + (gaps[i] if i < len(gaps) else 0.0)
        return out

    rows = [(round(1.0 - y1, 9), round(1.0 - y0, 9)) for y0, y1 in spans(row_heights, vgap, "rows")]
    return rows, spans(col_widths, hgap, "columns")
