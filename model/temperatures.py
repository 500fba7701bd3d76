"""The same prompt continued at several temperatures with the same seed, each new token with the
probability the sampler gave it (temperature only: no top-k or top-p cut, so temperature alone
makes the difference)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .sampling import temperature_probs

TEMPERATURES = (0.0, 0.7, 1.2, 2.0)


@dataclass(frozen=True)
class Continuation:
    temperature: float
    new_ids: tuple[int, ...]
    probs: tuple[float, ...]          # the probability at this temperature of each token picked
    probs_plain: tuple[float, ...]    # the same token's probability at T = 1 (the model's own)
    stopped_at_eos: bool


def continue_at(lm, ids: Sequence[int], n: int, seed: int, temperatures: Sequence[float] = TEMPERATURES) -> list[Continuation]:
    """One continuation of `ids` per temperature, n new tokens at most (fewer if the model ends)."""
    out = []
    for t in temperatures:
        g = lm.generate(list(ids), n, t, 0, 1.0, seed)
        if not g.new_ids:
            out.append(Continuation(float(t), (), (), (), False))
            continue
        logits = lm.forward(g.ids[:-1])[len(ids) - 1:]             # (n_new, V): the logits each pick was drawn from
        picked = [(temperature_probs(z, t)[i], temperature_probs(z, 1.0)[i]) for z, i in zip(logits, g.new_ids)]
        out.append(Continuation(float(t), tuple(g.new_ids), tuple(float(p) for p, _ in picked),
                                tuple(float(q) for _, q in picked), g.stopped_at_eos))
    return out
