"""Activation patching (causal tracing): run the corrupted prompt with one activation taken from the
clean prompt, and see how much of the clean answer comes back.

Metric: logit(answer) - logit(foil) at the last position. For each layer l and position p, one
activation of the corrupted run is replaced by the clean run's: the residual stream entering the
block (blocks.l.hook_resid_pre), the attention output (hook_attn_out) or the MLP output
(hook_mlp_out). Both runs are traced once; each patched run starts from the corrupted run's
stream at layer l (nothing below a patch changes) and runs only the blocks from l up, with all T
positions of one layer patched side by side in one batch.
"""
from __future__ import annotations

from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from .names import act_name
from .records import Patching

KINDS = ("resid_pre", "attn_out", "mlp_out")
MAX_TOKENS = 32          # each layer's patched runs are one batch of T copies of T positions


def _metric(lm, x_last: torch.Tensor, answer: int, foil: int) -> torch.Tensor:
    """(B, C) final residual at the last position -> (B,) logit(answer) - logit(foil)."""
    logits = lm.net.final_norm(x_last) @ lm.net.W_U[[answer, foil]].T                   # (B, 2)
    return logits[:, 0] - logits[:, 1]


def _row_replacer(clean: torch.Tensor) -> Callable:
    """An editor for a (B=T, T, C) batch: item b gets the clean value at position b."""
    def edit(name: str, x: torch.Tensor) -> torch.Tensor:
        out = x.clone()
        idx = torch.arange(x.shape[0], device=x.device)
        out[idx, idx] = clean.to(x.dtype)
        return out
    return edit


@torch.inference_mode()
def _patched_layer(lm, corrupt, clean, kind: str, layer: int, answer: int, foil: int) -> np.ndarray:
    """(T,) the metric with `kind` at `layer` patched at each position in turn (one batch)."""
    T = corrupt.T
    start = torch.from_numpy(np.ascontiguousarray(corrupt.act("hook_resid_pre", layer))).to(lm.device)     # (T, C)
    x = start[None].repeat(T, 1, 1)                                                   # (B=T, T, C)
    clean_rows = torch.from_numpy(np.ascontiguousarray(clean.act(f"hook_{kind}", layer))).to(lm.device)     # (T, C)
    editors = {}
    if kind == "resid_pre":
        idx = torch.arange(T, device=x.device)
        x[idx, idx] = clean_rows
    else:
        editors[act_name(f"hook_{kind}", layer)] = _row_replacer(clean_rows)
    with lm._lock:
        lm.net.attach(None)
        lm.net.attach_editors(editors)
        try:
            for block in lm.net.blocks[layer:]:
                x = block(x, 0, None)
        finally:
            lm.net.attach_editors(None)
        return _metric(lm, x[:, -1], answer, foil).double().cpu().numpy()


def patch_steps(lm, clean_ids: Sequence[int], corrupted_ids: Sequence[int], answer: int, foil: int,
                kinds: Sequence[str] = KINDS) -> Iterator[tuple[Patching, int, int]]:
    """Yield (the grids so far, steps done, steps in all) after each patched layer, so a caller can
    show progress and stop early; grids not yet computed are NaN."""
    clean_ids, corrupted_ids = list(clean_ids), list(corrupted_ids)
    if len(clean_ids) != len(corrupted_ids):
        raise ValueError(f"the two prompts must have the same number of tokens ({len(clean_ids)} vs {len(corrupted_ids)})")
    if len(clean_ids) > MAX_TOKENS:
        raise ValueError(f"patching takes prompts of at most {MAX_TOKENS} tokens, got {len(clean_ids)}")
    for k in kinds:
        if k not in KINDS:
            raise ValueError(f"unknown activation {k!r}; one of {KINDS}")
    clean, corrupt = lm.trace(clean_ids), lm.trace(corrupted_ids)
    L, T = lm.cfg.n_layer, clean.T

    def metric_of(tr) -> float:
        return float(tr.logits[-1, answer] - tr.logits[-1, foil])

    grids = {k: np.full((L, T), np.nan) for k in KINDS}
    labels = tuple(p.label for p in clean.pieces)

    def record() -> Patching:
        return Patching(labels, int(answer), int(foil), metric_of(clean), metric_of(corrupt),
                        grids["resid_pre"].copy(), grids["attn_out"].copy(), grids["mlp_out"].copy())

    total, done = L * len(kinds), 0
    for kind in kinds:
        for layer in range(L):
            grids[kind][layer] = _patched_layer(lm, corrupt, clean, kind, layer, answer, foil)
            done += 1
            yield record(), done, total


def activation_patching(lm, clean_ids, corrupted_ids, answer: int, foil: int, kinds: Sequence[str] = KINDS) -> Patching:
    result = None
    for result, _, _ in patch_steps(lm, clean_ids, corrupted_ids, answer, foil, kinds):
        pass
    return result
