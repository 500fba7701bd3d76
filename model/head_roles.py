"""What each attention head does, scored from its pattern: previous-token, first-token (sink),
self, duplicate-token and induction heads.

Every score is the attention weight a head puts on the positions that define the role, averaged
over the query positions where the role is defined (numpy only, no torch):

- previous:  A[q, q-1]                                     (q >= 1)
- first:     A[q, 0]                                       (q >= 1: position 0 can only see itself)
- self:      A[q, q]                                       (q >= 1)
- duplicate: sum of A[q, j] over earlier j with the same token as q
- induction: sum of A[q, j+1] over earlier j with the same token as q, j+1 < q: the token that
             followed the previous copy of the current token (how a model copies in context)

Duplicate and induction scores are defined only at positions whose token appeared before; a
repeated random sequence (n random tokens, then the same n again) has n such positions, a plain
prompt few or none (then the score is NaN: not measurable on that text).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

ROLES = ("previous", "first", "self", "duplicate", "induction")


def all_patterns(trace) -> np.ndarray:
    """(L, H, T, T) every layer's attention patterns of a trace, the input of role_scores."""
    return np.stack([trace.act("attn.hook_pattern", l) for l in range(trace.config.n_layer)])


def earlier_copies(ids: Sequence[int]) -> list[list[int]]:
    """For each position q, the earlier positions j < q holding the same token."""
    seen: dict[int, list[int]] = {}
    out = []
    for q, t in enumerate(ids):
        out.append(list(seen.get(int(t), [])))
        seen.setdefault(int(t), []).append(q)
    return out


def role_scores(patterns: np.ndarray, ids: Sequence[int]) -> dict[str, np.ndarray]:
    """patterns: (L, H, T, T) attention weights (rows sum to 1), ids: the T token ids.
    -> {role: (L, H) score in [0, 1], NaN where the role is not defined on this text}."""
    A = np.asarray(patterns, dtype=np.float64)
    L, H, T, S = A.shape
    if T != S or len(ids) != T:
        raise ValueError(f"patterns must be (L, H, T, T) for T = {len(ids)} tokens, got {A.shape}")
    nan = np.full((L, H), np.nan)
    q = np.arange(1, T)
    out = {"previous": A[:, :, q, q - 1].mean(-1) if T > 1 else nan,
           "first": A[:, :, q, 0].mean(-1) if T > 1 else nan,
           "self": A[:, :, q, q].mean(-1) if T > 1 else nan}
    copies = earlier_copies(ids)
    dup_rows = [(qq, js) for qq, js in enumerate(copies) if js]
    ind_rows = [(qq, [j + 1 for j in js if j + 1 < qq]) for qq, js in dup_rows]
    ind_rows = [(qq, ks) for qq, ks in ind_rows if ks]
    out["duplicate"] = np.mean([A[:, :, qq, js].sum(-1) for qq, js in dup_rows], axis=0) if dup_rows else nan
    out["induction"] = np.mean([A[:, :, qq, ks].sum(-1) for qq, ks in ind_rows], axis=0) if ind_rows else nan
    return out


def repeated_random_ids(n: int, low: int, high: int, seed: int = 0, prefix: Sequence[int] = ()) -> list[int]:
    """`prefix`, then n distinct random token ids from [low, high), then the same n again."""
    if not 2 <= n <= (high - low):
        raise ValueError(f"n must be in 2..{high - low}, got {n}")
    rng = np.random.default_rng(seed)
    half = rng.choice(np.arange(low, high), size=n, replace=False).tolist()
    return list(prefix) + half + half


def top_heads(scores: np.ndarray, k: int = 5) -> list[tuple[int, int, float]]:
    """The k highest-scoring (layer, head, score), best first; NaN scores are left out."""
    flat = np.where(np.isnan(scores), -np.inf, scores).ravel()
    order = np.argsort(-flat, kind="stable")[:k]
    H = scores.shape[1]
    return [(int(i // H), int(i % H), float(flat[i])) for i in order if np.isfinite(flat[i])]
