"""From logits to a chosen token: temperature, top-k, top-p, greedy. Pure numpy functions.

    p_i = exp(z_i / T) / sum_j exp(z_j / T)          (T = 0: all mass on the largest logit)
    top-k keeps the k most likely tokens; top-p keeps the smallest set whose mass reaches p;
    what is kept is renormalised, and one token is drawn by inverting the cumulative
    distribution at a uniform number fixed by (seed, position), so the same settings give the
    same pick at the same position. The page (assets/sampling.js) repeats these steps exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MAX_TEMPERATURE = 100.0


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 1.0     # 0 = greedy
    top_k: int = 0               # 0 = no top-k cut
    top_p: float = 1.0           # 1 = no top-p cut
    seed: int = 0

    def __post_init__(self):
        check_params(self.temperature, self.top_k, self.top_p, self.seed)


def check_params(temperature, top_k, top_p, seed=0, vocab_size: int | None = None) -> None:
    """Raise ValueError with a message a person can act on."""
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not math.isfinite(temperature):
        raise ValueError(f"temperature must be a finite number, got {temperature!r}")
    if not 0 <= temperature <= MAX_TEMPERATURE:
        raise ValueError(f"temperature must be between 0 and {MAX_TEMPERATURE:g}, got {temperature:g}")
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 0:
        raise ValueError(f"top-k must be a whole number >= 0 (0 turns it off), got {top_k!r}")
    if vocab_size is not None and top_k > vocab_size:
        raise ValueError(f"top-k must be at most the vocabulary size {vocab_size}, got {top_k}")
    if isinstance(top_p, bool) or not isinstance(top_p, (int, float)) or not math.isfinite(top_p) or not 0 < top_p <= 1:
        raise ValueError(f"top-p must be a number in (0, 1], got {top_p!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63:
        raise ValueError(f"seed must be a whole number between 0 and 2^63-1, got {seed!r}")


def softmax(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max())
    return e / e.sum()


def temperature_probs(logits: np.ndarray, temperature: float) -> np.ndarray:
    """Full-vocabulary probabilities after temperature (float64, sums to 1)."""
    logits = np.asarray(logits, dtype=np.float64)
    if temperature == 0:
        p = np.zeros_like(logits)
        p[int(np.argmax(logits))] = 1.0
        return p
    # Shift before dividing: logits / T overflows to inf for a tiny T, and inf - inf is NaN. After the
    # shift every value is <= 0, so an overflow can only give -inf, i.e. probability 0: intended.
    with np.errstate(over="ignore"):
        return softmax((logits - logits.max()) / temperature)


def kept_mask(probs: np.ndarray, top_k: int, top_p: float, greedy: bool = False) -> np.ndarray:
    """Which tokens survive the top-k and top-p cuts (the most likely token always does).
    Greedy decoding (T = 0) keeps exactly one token, the largest logit's."""
    if greedy:
        keep = np.zeros(len(probs), dtype=bool)
        keep[int(np.argmax(probs))] = True
        return keep
    order = np.argsort(-probs, kind="stable")
    keep_sorted = np.ones(len(probs), dtype=bool)
    if top_k:
        keep_sorted[top_k:] = False
    if top_p < 1.0:
        mass_before = np.cumsum(probs[order]) - probs[order]      # mass of strictly more likely tokens
        keep_sorted &= mass_before < top_p
    keep_sorted[0] = True
    keep = np.empty_like(keep_sorted)
    keep[order] = keep_sorted
    return keep


@dataclass(frozen=True)
class Distribution:
    """The next-token distribution under one setting, with every step kept for explanation."""
    logits: np.ndarray          # (V,) raw
    probs_t: np.ndarray         # (V,) softmax(logits / T), before the cuts
    kept: np.ndarray            # (V,) bool, survived top-k and top-p
    probs: np.ndarray           # (V,) final, renormalised over kept tokens
    params: SamplingParams

    @property
    def entropy_bits(self) -> float:
        p = self.probs[self.probs > 0]
        return float(-(p * np.log2(p)).sum())

    @property
    def n_kept(self) -> int:
        return int(self.kept.sum())

    def top(self, n: int) -> np.ndarray:
        """Ids of the n most likely tokens under probs_t (ties broken by id)."""
        return np.argsort(-self.probs_t, kind="stable")[:n]


def distribution(logits: np.ndarray, params: SamplingParams) -> Distribution:
    logits = np.asarray(logits, dtype=np.float32)
    if logits.ndim != 1 or not np.isfinite(logits).all():
        raise ValueError("logits must be one finite vector")
    check_params(params.temperature, params.top_k, params.top_p, params.seed, vocab_size=len(logits))
    probs_t = temperature_probs(logits, params.temperature)
    kept = kept_mask(probs_t, params.top_k, params.top_p, greedy=params.temperature == 0)
    final = np.where(kept, probs_t, 0.0)
    return Distribution(logits, probs_t, kept, final / final.sum(), params)


@dataclass(frozen=True)
class TokenRecord:
    """One row of the explanation: logit -> logit / T -> probability -> cut or kept."""
    id: int
    logit: float
    scaled_logit: float | None   # None when T = 0 (greedy: no division)
    prob_t: float                # after temperature, before cuts
    kept: bool
    prob: float                  # final, after cuts and renormalisation


def records(dist: Distribution, n: int) -> list[TokenRecord]:
    T = dist.params.temperature
    return [TokenRecord(int(i), float(dist.logits[i]), None if T == 0 else float(dist.logits[i] / T),
                        float(dist.probs_t[i]), bool(dist.kept[i]), float(dist.probs[i]))
            for i in dist.top(n)]


_MASK64 = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    """One step of SplitMix64 (Steele, Lea & Flood 2014): a 64-bit integer hash that JavaScript's
    BigInt reproduces bit for bit, so the page can make the same draw as the server."""
    z = (x + 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def uniform_draw(seed: int, position: int) -> float:
    """The uniform number in [0, 1) that decides the pick at `position` under `seed` (53 bits)."""
    return (_splitmix64((int(seed) ^ _splitmix64(int(position))) & _MASK64) >> 11) / 2.0 ** 53


def sample(dist: Distribution, position: int) -> int:
    """Draw one token id. Seeded by (seed, position): repeatable, and independent across positions."""
    if dist.params.temperature == 0:
        return int(np.argmax(dist.probs))
    cdf = np.cumsum(dist.probs)
    u = uniform_draw(dist.params.seed, position)
    return int(min(np.searchsorted(cdf, u * cdf[-1], side="right"), len(cdf) - 1))
