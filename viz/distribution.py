"""Next-token distribution: the data the page draws it from, and the top tokens as records.

The chart itself is drawn in the page (assets/sampling.js) from the model's full-vocabulary
logits, so moving temperature, top-k, top-p or the seed never asks the server.
"""
from __future__ import annotations

import base64
from typing import Callable

import numpy as np

from model.sampling import Distribution


def _check(dist: Distribution, labels: Callable[[int], str], n: int) -> int:
    if not isinstance(dist, Distribution):
        raise ValueError(f"expected a sampling.Distribution, got {type(dist).__name__}")
    if not callable(labels):
        raise ValueError("labels must be a function id -> display string")
    V = len(dist.logits)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= V:
        raise ValueError(f"n must be a whole number in 1..{V}, got {n!r}")
    return V


def top_ids(dist: Distribution, n: int) -> np.ndarray:
    """The n largest logits, best first, ties broken by id. Ranked by logit rather than by
    probability: the same order at any T > 0, and still meaningful at T = 0, where every
    probability but one is 0. argpartition + sort of n is ~10x faster than sorting 49k."""
    z = dist.logits
    cand = np.argpartition(-z, n - 1)[:n] if n < len(z) else np.arange(len(z))
    # Candidates tied with the n-th logit may have been cut arbitrarily: include all ties, then sort.
    cand = np.union1d(cand, np.flatnonzero(z == z[cand].min()))
    order = np.lexsort((cand, -z[cand]))
    return cand[order][:n]


def distribution_records(dist: Distribution, labels: Callable[[int], str], n: int = 20) -> list[dict]:
    """The top n as plain records for the API: token, id, logit, probability (final, after cuts)."""
    _check(dist, labels, n)
    return [{"token": labels(int(i)), "id": int(i), "logit": float(dist.logits[i]),
             "probability": float(dist.probs[i])} for i in top_ids(dist, n)]


def distribution_payload(logits: np.ndarray, position: int, labels: Callable[[int], str], n_labels: int = 64) -> dict:
    """What the page needs to draw the distribution under any temperature, top-k, top-p and seed
    (assets/sampling.js): every logit (float32, little-endian, base64), the position the next token
    takes (it seeds the draw), and the labels of the most likely tokens (the rest arrive once per page)."""
    z = np.ascontiguousarray(logits, dtype="<f4")
    if z.ndim != 1 or not np.isfinite(z).all():
        raise ValueError("logits must be one finite vector")
    top = np.argsort(-z, kind="stable")[:n_labels]
    return {"logits": base64.b64encode(z.tobytes()).decode("ascii"), "position": int(position),
            "labels": {str(int(i)): labels(int(i)) for i in top}}
