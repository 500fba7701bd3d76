"""`Trace`: everything one forward pass computed, as plain numpy, ready for the panels.

Layout: no batch dimension. Per-position vectors are (T, width); per-head tensors are heads
first, (H, T, D) for q/z and (KV, T, D) for k/v, (H, T, T) for scores and pattern.

Precision, and why:
- float32: the residual stream (embed, resid_pre/mid/post, attn_out, mlp_out), q/k/v/z, the final
  norm and the logits. The residual stream holds values near 22,000 next to values near 0.01 (the
  attention sink of the default model), which float16 would round away.
- float16: the attention pattern (values in [0, 1]; float16 keeps ~3 significant digits, more than
  any heatmap shows, and a 1,024-token prompt's patterns alone would otherwise take
  layers x heads x T^2 x 4 bytes = 1.1 GB) and the MLP hidden activations (T x d_mlp per layer,
  the widest per-position arrays). Memory grows with layers x heads x T^2 for attention, with
  layers x T x d_mlp for the MLP.
- the attention pattern is stored packed: only its lower triangle (a position never attends to
  later ones, so the rest is zero), row after row, (H, T(T+1)/2). Reading `hook_pattern` gives
  the full (H, T, T) array; a 1,024-token prompt's patterns take 283 MB instead of 566 MB.
- hook_attn_scores is not stored at all: it is recomputed exactly, on demand and per layer, from
  the stored q and k (scaled by 1/sqrt(D), future positions set to -inf), which costs a
  fraction of a millisecond for one layer and saves another T^2 array per head.
- hook_resid_mid is not stored either: the model computes it as resid_pre + attn_out in float32,
  and the same addition of the stored arrays gives the same bits (70 MB saved at 1,024 tokens).
"""
from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from .config import ModelConfig
from .names import act_name, split_name

HALF_PRECISION_HOOKS = frozenset({"attn.hook_pattern", "mlp.hook_pre", "mlp.hook_pre_linear", "mlp.hook_post"})
DERIVED_HOOKS = frozenset({"attn.hook_attn_scores", "hook_resid_mid"})
PACKED_HOOKS = frozenset({"attn.hook_pattern"})      # stored as the lower triangle only


def triangle(n: int) -> int:
    """Entries of an n x n lower triangle, diagonal included: where row n starts in a packed array."""
    return n * (n + 1) // 2


@lru_cache(maxsize=4)
def _lower_indices(T: int) -> tuple[np.ndarray, np.ndarray]:
    return np.tril_indices(T)          # row after row: the packed order


def unpack_lower(packed: np.ndarray) -> np.ndarray:
    """(H, T(T+1)/2) lower triangles, row after row -> (H, T, T) with zeros above the diagonal."""
    H, N = packed.shape
    T = (math.isqrt(8 * N + 1) - 1) // 2
    if triangle(T) != N:
        raise ValueError(f"{N} entries are not a lower triangle")
    out = np.zeros((H, T, T), dtype=packed.dtype)
    rows, cols = _lower_indices(T)
    out[:, rows, cols] = packed
    return out


def storage_dtype(name: str):
    return np.float16 if split_name(name)[1] in HALF_PRECISION_HOOKS else np.float32


def attention_scores(q: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Scaled, causally masked scores, (H, T, S), from q (H, T, D) and k (KV, S, D)."""
    H, T, D = q.shape
    KV, S, _ = k.shape
    k_per_head = np.repeat(k, H // KV, axis=0)                           # (H, S, D)
    # einsum, not batched matmul: numpy's batched matmul was erratic (4-260 ms at T = 200) under load.
    scores = np.einsum("htd,hsd->hts", q, k_per_head) / np.float32(math.sqrt(D))  # (H, T, S)
    future = np.triu(np.ones((T, S), dtype=bool), S - T + 1)
    scores[:, future] = -np.inf
    return scores.astype(np.float32, copy=False)


class Activations(Mapping):
    """A read-only mapping name -> array. Stored arrays are returned as they are; derived ones
    (attention scores) are computed when asked for."""

    def __init__(self, stored: dict[str, np.ndarray], n_layer: int, growth: tuple | None = None):
        self._stored = stored
        self._n_layer = n_layer
        self.growth = growth      # (buffers, room) the stored arrays are views of (model/growth.py), or None

    def _derived_names(self) -> list[str]:
        if act_name("attn.hook_q", 0) not in self._stored:
            return []
        return [act_name(h, l) for l in range(self._n_layer) for h in sorted(DERIVED_HOOKS)]

    def _sources_of(self, hook: str, layer: int) -> tuple[str, ...]:
        if hook == "attn.hook_attn_scores":
            return act_name("attn.hook_q", layer), act_name("attn.hook_k", layer)
        return act_name("hook_resid_pre", layer), act_name("hook_attn_out", layer)

    def __getitem__(self, name: str) -> np.ndarray:
        layer, hook = split_name(name)
        if name in self._stored:
            return unpack_lower(self._stored[name]) if hook in PACKED_HOOKS else self._stored[name]
        if hook in DERIVED_HOOKS and layer is not None and 0 <= layer < self._n_layer and \
                all(n in self._stored for n in self._sources_of(hook, layer)):
            a, b = (self._stored[n] for n in self._sources_of(hook, layer))
            return attention_scores(a, b) if hook == "attn.hook_attn_scores" else a + b
        raise KeyError(f"no activation named {name!r}")

    def __iter__(self) -> Iterator[str]:
        yield from self._stored
        yield from self._derived_names()

    def __len__(self) -> int:
        return len(self._stored) + len(self._derived_names())

    @property
    def stored(self) -> dict[str, np.ndarray]:
        return self._stored

    def nbytes(self) -> int:
        """Bytes held, counting arrays that share memory (resid_post[l] is resid_pre[l+1]) once."""
        seen, total = set(), 0
        for a in self._stored.values():
            base = a if a.base is None else a.base
            if id(base) not in seen:
                seen.add(id(base))
                total += base.nbytes
        return total


@dataclass(frozen=True)
class Trace:
    prompt: str
    token_ids: tuple[int, ...]
    tokens: tuple[str, ...]          # each token's text; hex bytes like "<E4 B8>" for a partial character
    pieces: tuple                    # tokenizer.TokenPiece per token: id, raw bytes, display label, flags
    config: ModelConfig
    acts: Activations
    device: str                      # where the forward pass ran ("cpu", "cuda:0")
    dtype: str                       # compute dtype of the forward pass ("float32")
    n_prompt: int = 0                # how many of the tokens came from the prompt; the rest were generated
    timings: dict = field(default_factory=dict, compare=False)   # seconds, e.g. {"forward": 0.1}
    ablation: object = None          # model.ablation.Ablation the run was made with; None = the plain model

    @property
    def T(self) -> int:
        return len(self.token_ids)

    @property
    def logits(self) -> np.ndarray:
        return self.acts["logits"]

    def act(self, hook: str, layer: int | None = None) -> np.ndarray:
        return self.acts[act_name(hook, layer)]

    def shapes(self) -> dict[str, tuple[tuple[int, ...], str]]:
        """The table of shapes: name -> (shape, dtype), derived entries included."""
        logical = self.expected_shapes()
        table = {name: (logical.get(name, a.shape), a.dtype.name) for name, a in self.acts.stored.items()}
        if self.config.n_layer and act_name("attn.hook_q", 0) in self.acts.stored:
            for l in range(self.config.n_layer):
                table[act_name("attn.hook_attn_scores", l)] = ((self.config.n_head, self.T, self.T), "float32")
                table[act_name("hook_resid_mid", l)] = ((self.T, self.config.d_model), "float32")
        return table

    def expected_shapes(self) -> dict[str, tuple[int, ...]]:
        c, T = self.config, self.T
        H, KV, D = c.n_head, c.n_kv_head, c.d_head
        per_layer = {
            "hook_resid_pre": (T, c.d_model),
            "hook_resid_post": (T, c.d_model), "hook_attn_out": (T, c.d_model),
            "hook_mlp_out": (T, c.d_model),
            "attn.hook_q": (H, T, D), "attn.hook_k": (KV, T, D), "attn.hook_v": (KV, T, D),
            "attn.hook_z": (H, T, D), "attn.hook_pattern": (H, T, T),
            "mlp.hook_pre": (T, c.d_mlp), "mlp.hook_post": (T, c.d_mlp),
        }
        if c.mlp_kind == "swiglu":
            per_layer["mlp.hook_pre_linear"] = (T, c.d_mlp)
        out = {act_name(h, l): s for l in range(c.n_layer) for h, s in per_layer.items()}
        out["hook_embed"] = (T, c.d_model)
        if not c.uses_rope:
            out["hook_pos_embed"] = (T, c.d_model)
        out["ln_final.hook_normalized"] = (T, c.d_model)
        out["logits"] = (T, c.vocab_size)
        return out

    def validate(self) -> "Trace":
        """Raise ValueError naming the first thing that is not as documented; return self."""
        if not (len(self.token_ids) == len(self.tokens) == len(self.pieces)):
            raise ValueError("token_ids, tokens and pieces differ in length")
        if self.T == 0:
            raise ValueError("a trace needs at least one token")
        stored = self.acts.stored
        for name, shape in self.expected_shapes().items():
            if name not in stored:
                raise ValueError(f"activation {name} is missing")
            a = stored[name]
            if split_name(name)[1] in PACKED_HOOKS:
                shape = (shape[0], triangle(self.T))
            if a.shape != shape:
                raise ValueError(f"activation {name} has shape {a.shape}, expected {shape}")
            if a.dtype != storage_dtype(name):
                raise ValueError(f"activation {name} is {a.dtype}, expected {np.dtype(storage_dtype(name))}")
        for name in stored:
            if name not in self.expected_shapes():
                raise ValueError(f"unexpected activation {name}")
        bad = [self.tokens[i] for i in range(self.T) if not np.isfinite(self.logits[i]).all()]
        if bad:
            raise ValueError(f"non-finite logits at tokens {bad[:5]}")
        return self
