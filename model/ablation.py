"""Ablation: switch parts of the model off and run it again, to see what they were doing.

    from model.ablation import Ablation, parse_heads, parse_neurons
    abl = Ablation(heads=frozenset({(3, 4), (10, 0)}), neurons=frozenset({(5, 1297)}))
    tr = lm.trace("The capital of France is", ablate=abl)   # every activation is the ablated run's

What "switched off" means here (zero ablation):
- attention head (layer, head): its slice of `blocks.{layer}.attn.hook_z` (the pattern-weighted sum
  of values, before the output projection) is set to 0, so the head adds nothing to the residual
  stream. The default model has no output bias, so ablating every head of a layer makes that
  layer's hook_attn_out exactly 0 (a GPT-2 model would be left with its output bias).
- MLP neuron (layer, neuron): its entry of `blocks.{layer}.mlp.hook_post` (the input of the down
  projection) is set to 0, so its column of the down projection is never added.

An ablation is applied through tap editors (`Transformer.attach_editors`): each edited tap replaces
its tensor before the recorder sees it, so the trace records the ablated run.
"""
from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from typing import Callable

import torch

from .config import ModelConfig
from .names import act_name

Editor = Callable[[str, torch.Tensor], torch.Tensor]
MAX_ITEMS = 50_000          # more than every neuron of the default model (30 x 1536 = 46,080)


def _pairs(items, what: str) -> frozenset[tuple[int, int]]:
    out = set()
    for item in items:
        try:
            a, b = item
            if isinstance(a, bool) or isinstance(b, bool):
                raise TypeError
            out.add((operator.index(a), operator.index(b)))
        except (TypeError, ValueError):
            raise ValueError(f"each {what} must be a (layer, index) pair of whole numbers, got {item!r}") from None
    return frozenset(out)


@dataclass(frozen=True)
class Ablation:
    """Which attention heads and MLP neurons to switch off: sets of (layer, head) and (layer, neuron)."""
    heads: frozenset[tuple[int, int]] = frozenset()
    neurons: frozenset[tuple[int, int]] = frozenset()

    def __post_init__(self):
        object.__setattr__(self, "heads", _pairs(self.heads, "head"))
        object.__setattr__(self, "neurons", _pairs(self.neurons, "neuron"))

    @property
    def empty(self) -> bool:
        return not self.heads and not self.neurons

    def validate(self, cfg: ModelConfig) -> "Ablation":
        """Raise ValueError naming the first head or neuron this model does not have; return self."""
        for layer, head in sorted(self.heads):
            if not 0 <= layer < cfg.n_layer:
                raise ValueError(f"head {layer}.{head}: layer must be in 0..{cfg.n_layer - 1}")
            if not 0 <= head < cfg.n_head:
                raise ValueError(f"head {layer}.{head}: head must be in 0..{cfg.n_head - 1} "
                                 f"(each layer has {cfg.n_head} query heads)")
        for layer, neuron in sorted(self.neurons):
            if not 0 <= layer < cfg.n_layer:
                raise ValueError(f"neuron {layer}:{neuron}: layer must be in 0..{cfg.n_layer - 1}")
            if not 0 <= neuron < cfg.d_mlp:
                raise ValueError(f"neuron {layer}:{neuron}: neuron must be in 0..{cfg.d_mlp - 1} "
                                 f"(each MLP has {cfg.d_mlp} neurons)")
        return self

    def editors(self, cfg: ModelConfig) -> dict[str, Editor]:
        """Tap name -> editor that zeroes the chosen slices (a new tensor; the input is not modified)."""
        self.validate(cfg)
        out: dict[str, Editor] = {}
        for layer in sorted({l for l, _ in self.heads}):
            idx = sorted(h for l, h in self.heads if l == layer)
            out[act_name("attn.hook_z", layer)] = _zero_along(1, idx)         # z: (B, H, T, D)
        for layer in sorted({l for l, _ in self.neurons}):
            idx = sorted(n for l, n in self.neurons if l == layer)
            out[act_name("mlp.hook_post", layer)] = _zero_along(-1, idx)      # post: (B, T, F)
        return out

    def describe(self, max_items: int = 12, cfg: ModelConfig | None = None) -> str:
        """Plain text, e.g. "heads 3.4, 10.0; neuron 5:1297" (long lists shortened). With cfg, a
        whole layer is written 3.* (every head) or 5:* (every neuron)."""
        def part(items, sep, what):
            if not items:
                return ""
            full = {"head": cfg.n_head, "neuron": cfg.d_mlp}[what] if cfg is not None else None
            s = []
            for layer in sorted({a for a, _ in items}):
                idx = sorted(b for a, b in items if a == layer)
                s += [f"{layer}{sep}*"] if full is not None and len(idx) == full else [f"{layer}{sep}{b}" for b in idx]
            more = f" and {len(s) - max_items} more" if len(s) > max_items else ""
            plural = len(items) > 1
            return f"{what}{'s' if plural else ''} " + ", ".join(s[:max_items]) + more
        parts = [p for p in (part(self.heads, ".", "head"), part(self.neurons, ":", "neuron")) if p]
        return "; ".join(parts) if parts else "nothing"


def _zero_along(dim: int, idx: list[int]) -> Editor:
    cache: dict = {}

    def edit(name: str, x: torch.Tensor) -> torch.Tensor:
        key = x.device
        if key not in cache:
            cache[key] = torch.tensor(idx, dtype=torch.long, device=x.device)
        return x.index_fill(dim, cache[key], 0.0)
    return edit


# ---- parsing what a person types ---------------------------------------------------------------
_SEPARATORS = re.compile(r"[\s,;，；、]+")
_FULLWIDTH = str.maketrans({"：": ":", "。": ".", "．": ".", "＊": "*"})


def _items(text, what: str) -> list[str]:
    if text is None:
        return []
    if not isinstance(text, str):
        raise ValueError(f"the {what} list must be text")
    if len(text) > 20_000:
        raise ValueError(f"the {what} list is {len(text):,} characters long; the limit is 20,000")
    return [t for t in _SEPARATORS.split(text.translate(_FULLWIDTH).strip()) if t]


def _index(s: str, what: str, item: str, example: str) -> int:
    if not re.fullmatch(r"\d{1,6}", s):
        raise ValueError(f"cannot read {what} {item!r}: {example}")
    return int(s)


def parse_heads(text: str, cfg: ModelConfig) -> frozenset[tuple[int, int]]:
    """"3.4, 10.0" -> {(3, 4), (10, 0)}; "3.*" means every head of layer 3. Checked against cfg."""
    example = "write layer.head, e.g. 3.4 (layer 3, head 4), or 3.* for every head of layer 3"
    out = set()
    for item in _items(text, "heads"):
        m = re.fullmatch(r"([^.:]*)\.([^.:]*)", item)
        if not m:
            hint = " (':' is for neurons, layer:neuron)" if ":" in item else ""
            raise ValueError(f"cannot read head {item!r}{hint}: {example}")
        layer = _index(m[1], "head", item, example)
        heads = range(cfg.n_head) if m[2] == "*" else [_index(m[2], "head", item, example)]
        out.update((layer, h) for h in heads)
        if len(out) > MAX_ITEMS:
            raise ValueError(f"more than {MAX_ITEMS:,} heads listed")
    result = frozenset(out)
    Ablation(heads=result).validate(cfg)
    return result


def parse_neurons(text: str, cfg: ModelConfig) -> frozenset[tuple[int, int]]:
    """"5:1297, 5:12" -> {(5, 1297), (5, 12)}; "5:*" means every neuron of layer 5. Checked against cfg."""
    example = "write layer:neuron, e.g. 5:1297 (layer 5, neuron 1297), or 5:* for the whole MLP of layer 5"
    out = set()
    for item in _items(text, "neurons"):
        m = re.fullmatch(r"([^.:]*):([^.:]*)", item)
        if not m:
            hint = " ('.' is for heads, layer.head)" if "." in item else ""
            raise ValueError(f"cannot read neuron {item!r}{hint}: {example}")
        layer = _index(m[1], "neuron", item, example)
        neurons = range(cfg.d_mlp) if m[2] == "*" else [_index(m[2], "neuron", item, example)]
        out.update((layer, n) for n in neurons)
        if len(out) > MAX_ITEMS:
            raise ValueError(f"more than {MAX_ITEMS:,} neurons listed")
    result = frozenset(out)
    Ablation(neurons=result).validate(cfg)
    return result


def parse_ablation(heads_text: str, neurons_text: str, cfg: ModelConfig) -> Ablation:
    return Ablation(parse_heads(heads_text, cfg), parse_neurons(neurons_text, cfg))
