"""Plain records the model room returns besides a Trace, numpy only (no torch), so the panels
(viz/) can name and check their types without loading torch."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LogitLens:
    """Final norm + unembedding applied to the residual stream after each layer.

    Row 0 reads the embedding (before any block); row l+1 reads the output of block l; the last
    row is the model's real prediction.
    """
    positions: tuple[int, ...]       # (P,) token positions read
    layer_labels: tuple[str, ...]    # (L+1,) "embed", "0", ..., "L-1"
    top_ids: np.ndarray              # (L+1, P, k) most likely ids per layer and position
    top_probs: np.ndarray            # (L+1, P, k)
    target_ids: np.ndarray           # (P,) the final layer's top-1 id at each position
    target_probs: np.ndarray         # (L+1, P) probability each layer gives that final token
    target_ranks: np.ndarray         # (L+1, P) its rank (0 = top) at each layer


@dataclass(frozen=True)
class Neighbours:
    """Nearest vocabulary tokens of some tokens, by cosine similarity of their embedding rows."""
    query_ids: np.ndarray        # (n,) the tokens asked about (unique, in order of first use)
    neighbour_ids: np.ndarray    # (n, k) most similar other tokens, best first
    cosine: np.ndarray           # (n, k) their cosine similarity to the query token
    vector_ids: np.ndarray       # (m,) queries and all their neighbours, unique
    vectors: np.ndarray          # (m, C) float32 embedding rows of vector_ids (for PCA)


# ---- the embedding lab (model/embedding_lab.py) ------------------------------------------------
@dataclass(frozen=True)
class Neighbour:
    token: str
    id: int
    cosine: float


@dataclass(frozen=True)
class Analogy:
    ids: dict[str, int]                  # {"a": id, "b": id, "c": id}
    results: tuple[Neighbour, ...]       # best first
    points: np.ndarray                   # (3 + k, C) E rows of a, b, c and the results (for a picture)
    target: np.ndarray                   # (C,) E[a] - E[b] + E[c]


@dataclass(frozen=True)
class Projection:
    word: str
    id: int
    projection: float


@dataclass(frozen=True)
class Direction:
    ids: dict[str, int]                  # {"a": id, "b": id}
    scores: tuple[Projection, ...]       # in the order the words were given
    norm: float                          # |E[a] - E[b]|


# ---- attribution and patching (model/attribution.py, model/patching.py) -------------------------------
@dataclass(frozen=True)
class Attribution:
    """Direct logit attribution: the target's logit (minus the foil's, when there is one) at one
    position, split into what each part of the model wrote into the residual stream, read through
    the final norm with its scale frozen at the value of the actual run."""
    position: int
    target: int
    foil: int | None
    logit: float                 # the model's own logit (or logit difference) at `position`
    embed: float                 # token (and learned position) embedding
    heads: np.ndarray            # (L, H) each attention head's output
    mlps: np.ndarray             # (L,) each MLP's output
    bias: float                  # attention output biases and the final norm's bias (0 for Llama)
    scale: float                 # the frozen final-norm scale, 1 / rms (or 1 / std)

    @property
    def total(self) -> float:
        return float(self.embed + self.heads.sum() + self.mlps.sum() + self.bias)


@dataclass(frozen=True)
class Patching:
    """Activation patching: the corrupted run with one clean activation put back, for every layer
    and position. Metric: logit(answer) - logit(foil) at the last position."""
    positions: tuple[str, ...]   # the clean prompt's token labels
    answer: int
    foil: int
    clean: float
    corrupted: float
    resid_pre: np.ndarray        # (L, T) metric with blocks.l.hook_resid_pre at position p from the clean run
    attn_out: np.ndarray         # (L, T) likewise, hook_attn_out
    mlp_out: np.ndarray          # (L, T) likewise, hook_mlp_out

    def restored(self, grid: np.ndarray) -> np.ndarray:
        """The share of the clean-corrupted gap a patch restores (1 = all of it)."""
        gap = self.clean - self.corrupted
        return (grid - self.corrupted) / gap if gap != 0 else np.zeros_like(grid)
