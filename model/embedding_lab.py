"""Embedding arithmetic and directions over the model's input embedding matrix E (V, C).

- analogy: a - b + c -> the k vocabulary rows most cosine-similar to E[a] - E[b] + E[c], the three
  inputs left out (" king" - " man" + " woman" -> " queen").
- direction: d = E[a] - E[b] and each word's projection E[w] . d / |d| (" cats" - " cat" puts
  plural nouns above singular ones).

Words are used exactly as typed (a leading space is part of the word) and must each be one token of
the vocabulary; otherwise a ValueError names the pieces the tokenizer made of it.
"""
from __future__ import annotations

from typing import Sequence

import torch

from .records import Analogy, Direction, Neighbour, Projection


MAX_SHOWN = 8            # pieces a message lists; a long word is cut short in messages


def short_text(word: str, limit: int = 40) -> str:
    return word if len(word) <= limit else word[:limit - 1] + "…"


def listed(pieces: list[str]) -> str:
    """The tokenizer's pieces for a message: the first few, and how many in all."""
    if not pieces:
        return "no token at all"
    shown = " + ".join(repr(p) for p in pieces[:MAX_SHOWN])
    return shown if len(pieces) <= MAX_SHOWN else f"{shown} + … ({len(pieces)} pieces)"


class LabRefusal(ValueError):
    """A refused lab input; `key` names the reason (the page words it in its own language)."""

    def __init__(self, key: str, text: str):
        super().__init__(text)
        self.key = key


class NotOneToken(LabRefusal):
    """A lab word that the tokenizer splits into several tokens (or none)."""

    def __init__(self, word: str, pieces: list[str], suggestion: str | None):
        self.word, self.pieces, self.suggestion = word, pieces, suggestion
        text = f"{short_text(word)!r} is not one token of the vocabulary: the tokenizer makes {listed(pieces)}."
        if suggestion is not None:
            text += f" Try {suggestion!r} (with a leading space), which is one token."
        super().__init__("not_one", text)


def one_token(lm, word: str) -> int:
    """The id of `word` when it is exactly one token, else NotOneToken naming its pieces."""
    if not isinstance(word, str) or not word:
        raise LabRefusal("empty_word", "each word must be non-empty text")
    ids = lm.tokenize(word)
    if len(ids) == 1:
        return ids[0]
    spaced = " " + word.lstrip(" ")
    suggestion = spaced if spaced != word and len(lm.tokenize(spaced)) == 1 else None
    raise NotOneToken(word, [lm.decode([i]) for i in ids], suggestion)


def split_words(words: str) -> list[str]:
    """A comma-separated list, each piece kept as typed (" cars, car" -> [" cars", " car"]); empty pieces dropped."""
    if not isinstance(words, str):
        raise LabRefusal("no_words", "words must be text: a comma-separated list")
    return [w for w in words.split(",") if w.strip()]


def _matrix(lm) -> torch.Tensor:
    return lm.net.embed.weight                                                   # (V, C)


@torch.inference_mode()
def analogy(lm, a: str, b: str, c: str, k: int = 10) -> Analogy:
    ids = {"a": one_token(lm, a), "b": one_token(lm, b), "c": one_token(lm, c)}
    if not 1 <= int(k) <= 100:
        raise LabRefusal("k", f"k must be a whole number in 1..100, got {k}")
    E = _matrix(lm).float()
    target = E[ids["a"]] - E[ids["b"]] + E[ids["c"]]                             # (C,)
    norms = E.norm(dim=-1).clamp_min(1e-12)                                      # (V,)
    cos = (E @ target) / (norms * target.norm().clamp_min(1e-12))                # (V,)
    cos[list(set(ids.values()))] = -2.0                                          # the inputs are left out
    sims, best = cos.topk(int(k))
    results = tuple(Neighbour(lm.decode([int(i)]), int(i), float(s)) for s, i in zip(sims, best))
    rows = [*ids.values(), *(r.id for r in results)]
    return Analogy(ids, results, E[rows].cpu().numpy(), target.cpu().numpy())


@torch.inference_mode()
def direction(lm, a: str, b: str, words: Sequence[str] | str) -> Direction:
    ids = {"a": one_token(lm, a), "b": one_token(lm, b)}
    if isinstance(words, (list, tuple)) and all(isinstance(w, str) for w in words):
        listed = [w for w in words if w]
    else:
        listed = split_words(words)
    if not listed:
        raise LabRefusal("no_words", "give at least one word to place on the direction (a comma-separated list)")
    if len(listed) > 100:
        raise LabRefusal("too_many", f"at most 100 words, got {len(listed)}")
    word_ids = [one_token(lm, w) for w in listed]
    E = _matrix(lm).float()
    d = E[ids["a"]] - E[ids["b"]]                                                # (C,)
    norm = float(d.norm())
    if norm == 0.0:
        raise LabRefusal("same", "a and b are the same token: their difference has no direction")
    proj = (E[word_ids] @ d) / norm                                              # (n,)
    scores = tuple(Projection(w, i, float(p)) for w, i, p in zip(listed, word_ids, proj.tolist()))
    return Direction(ids, scores, norm)
