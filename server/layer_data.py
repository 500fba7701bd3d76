"""What the page needs to switch layer and head without asking the server.

For every layer-dependent panel the page gets the figure for the current layer and head (the
base) and, for the other layers and heads, only what differs from it (patches: {path: value}).
Both come from the same viz functions, built as plain dicts (viz.common.raw_figures), so the
figure a patch produces in the page is exactly the figure the server would have drawn: the
viz function stays the one definition of each panel. Equal arrays are sent once (keys and
values shared by the query heads of a K/V group, one layer's patterns in both attention panels).

A prompt long enough to exceed BUDGET_BYTES gets the layers nearest the current one; the page
asks for another window when the layer control leaves it (assets/layers.js).
"""
from __future__ import annotations

import hashlib
import json
from typing import Callable

import base64

import numpy as np

from viz import attention, mlp
from viz.common import raw_figures

from .controls import Controls
from .state import View

BUDGET_BYTES = 600_000        # patches per response (base64 text): ~6 layers at 20 tokens, 1 at 200


def _pattern_options(c: Controls) -> dict:
    return dict(exclude_first=c.exclude_first, scale="log" if c.log_scale else "linear")


# panel id -> (what it depends on, figure for (view, controls, layer, head))
PANELS: dict[str, tuple[str, Callable]] = {
    "attention": ("layer-head", lambda v, c, l, h: attention.head_pattern_figure(v.trace, l, h, v.focus,
                                                                                 **_pattern_options(c))),
    # The selected head's outline is drawn by the page (layout.meta.gg_mark), so one figure per layer.
    "attention-heads": ("layer", lambda v, c, l, h: attention.layer_heads_figure(v.trace, l, exclude_first=c.exclude_first)),
    "attention-detail": ("layer-head", lambda v, c, l, h: attention.attention_detail_figure(v.trace, l, h, v.focus)),
    "mlp": ("layer", lambda v, c, l, h: mlp.mlp_figure(v.trace, l, sort="all" if c.mlp_all else "top",
                                                       exclude_first=c.exclude_first)),
    "mlp-top": ("layer", lambda v, c, l, h: mlp.top_neurons_figure(v.trace, l, v.focus)),
}


# ---- plain JSON with typed arrays ----------------------------------------------------------------------
_DTYPES = {"float32": "f4", "float64": "f8", "int8": "i1", "uint8": "u1", "int16": "i2", "uint16": "u2",
           "int32": "i4", "uint32": "u4"}


def typed_array(a: np.ndarray) -> dict:
    """Plotly's base64 typed-array spec (what plotly.py sends for numpy arrays), little-endian."""
    if a.dtype in (np.float16, np.float64):
        a = a.astype(np.float32)
    elif a.dtype == np.bool_:
        a = a.astype(np.uint8)
    elif a.dtype == np.int64:
        a = a.astype(np.int32)
    a = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))
    spec = {"dtype": _DTYPES[a.dtype.name], "bdata": base64.b64encode(a.tobytes()).decode("ascii")}
    if a.ndim > 1:
        spec["shape"] = ", ".join(str(n) for n in a.shape)
    return spec


class Arrays:
    """Arrays as Plotly's base64 typed-array specs, each distinct array stored once."""

    def __init__(self):
        self.table: list[dict] = []
        self.index: dict[bytes, int] = {}
        self.nbytes = 0

    def ref(self, a: np.ndarray) -> dict:
        a = np.ascontiguousarray(a)
        key = hashlib.blake2b(a.tobytes() + str((a.dtype.str, a.shape)).encode(), digest_size=16).digest()
        if key not in self.index:
            spec = typed_array(a)
            self.index[key] = len(self.table)
            self.table.append(spec)
            self.nbytes += len(spec["bdata"])
        return {"$a": self.index[key]}


def plain(obj, arrays: Arrays | None = None):
    """Numpy arrays -> typed-array specs (or references into `arrays`), numpy scalars -> Python."""
    if isinstance(obj, dict):
        return {k: plain(v, arrays) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v, arrays) for v in obj]
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind in "OUS":
            return obj.tolist()
        return arrays.ref(obj) if arrays is not None else typed_array(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


# ---- what differs between two figures ------------------------------------------------------------------
_SCALARS = (str, int, float, bool, type(None))


def _same(a, b) -> bool:
    if type(a) is not type(b):
        return False
    if type(a) is np.ndarray:
        return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
    try:
        return bool(a == b)
    except (TypeError, ValueError):      # lists holding arrays
        return False


def _flat(d: dict) -> bool:
    """A dict of plain strings (e.g. an axis's labelalias): compared whole, not key by key."""
    return len(d) > 8 and all(type(v) is str for v in d.values())


def differences(base, other, path: str = "", out: dict | None = None) -> dict:
    """{"data.0.z": value, "layout.title.text": value, ...}: the leaves where `other` differs from
    `base`; a dict with other keys or a list of another length is replaced whole."""
    out = {} if out is None else out
    tb = type(base)
    if tb is not type(other):
        out[path] = other
    elif tb in _SCALARS:
        if base != other:
            out[path] = other
    elif tb is dict and base.keys() == other.keys() and not _flat(base):
        prefix = f"{path}." if path else ""
        for k, v in base.items():
            differences(v, other[k], prefix + k, out)
    elif (tb is list and len(base) == len(other) and base
          and all(type(x) is dict for x in base) and all(type(x) is dict for x in other)):
        for i, (a, b) in enumerate(zip(base, other)):
            differences(a, b, f"{path}.{i}", out)
    elif not _same(base, other):
        out[path] = other
    return out


def apply_patch(base, patch: dict):
    """The figure a patch describes (what assets/layers.js does in the page); `base` is not changed."""
    import copy
    fig = copy.deepcopy(base)
    for path, value in patch.items():
        keys = [int(k) if k.isdigit() else k for k in path.split(".")]
        node = fig
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value
    return fig


# ---- the payload ---------------------------------------------------------------------------------------
def window(n_layer: int, center: int):
    """Layers nearest `center` first: center, center+1, center-1, center+2, ..."""
    yield center
    for d in range(1, n_layer):
        for l in (center + d, center - d):
            if 0 <= l < n_layer:
                yield l


def version(view: View, c: Controls) -> str:
    """Which figures a response's patches belong to: the page merges responses of one version."""
    key = (view.trace.token_ids, view.trace.n_prompt, view.focus, c.exclude_first, c.log_scale, c.mlp_all, c.lang)
    return hashlib.blake2b(repr(key).encode(), digest_size=8).hexdigest()


def layer_data(view: View, c: Controls, budget: int = BUDGET_BYTES, layers: list[int] | None = None) -> dict:
    """Base figures at (c.layer, c.head) and patches for as many layers as `budget` allows: those
    nearest c.layer, or the `layers` given, in their order."""
    cfg = view.trace.config
    order = list(window(cfg.n_layer, c.layer)) if layers is None else [c.layer] + [l for l in layers if l != c.layer]
    arrays = Arrays()
    with raw_figures():
        bases = {pid: fn(view, c, c.layer, c.head) for pid, (_, fn) in PANELS.items()}
        patches: dict[str, dict] = {pid: {} for pid in PANELS}
        done = []
        for l in order:
            for pid, (by, fn) in PANELS.items():
                heads = range(cfg.n_head) if by == "layer-head" else [c.head]
                for h in heads:
                    if (l, h) == (c.layer, c.head):
                        continue
                    key = f"{l}.{h}" if by == "layer-head" else str(l)
                    patches[pid][key] = plain(differences(bases[pid], fn(view, c, l, h)), arrays)
            done.append(l)
            if arrays.nbytes > budget:
                break
    return {
        "version": version(view, c), "prefetch": layers is not None, "layer": c.layer, "head": c.head, "layers": sorted(done), "n_layer": cfg.n_layer,
        "panels": {pid: {"by": PANELS[pid][0], "base": plain(bases[pid]), "patches": patches[pid]} for pid in PANELS},
        "arrays": arrays.table,
    }


def layer_data_value(data: dict) -> str:
    return json.dumps(data, separators=(",", ":"), allow_nan=False)
