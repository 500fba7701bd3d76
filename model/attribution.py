"""Direct logit attribution (DLA): which parts of the model wrote the answer.

The final residual stream at a position is a sum: embedding + every head's output (+ attention
output biases) + every MLP's output. The logit of a token t is W_U[t] . norm(x). Freezing the final
norm's scale s at its value in the actual run makes it linear, so each part c contributes

    s * (W_U[t] * w_norm) . centre(c)        (centre: minus the mean for LayerNorm, nothing for RMSNorm)

and the final norm's bias contributes W_U[t] . b. The parts add up to the model's logit exactly.
This is the *direct* effect only: a head that matters by changing what later layers do gets no
credit here (activation patching, model/patching.py, measures that).
"""
from __future__ import annotations

import numpy as np
import torch

from .records import Attribution
from .trace import Trace


def _final_norm(lm):
    norm = lm.net.ln_final
    w = norm.weight.detach().double().cpu().numpy()
    b = norm.bias.detach().double().cpu().numpy() if getattr(norm, "bias", None) is not None else None
    return w, b, float(norm.eps), lm.cfg.family != "llama"       # LayerNorm centres, RMSNorm does not


@torch.inference_mode()
def direct_logit_attribution(lm, trace: Trace, position: int, target: int, foil: int | None = None) -> Attribution:
    cfg = lm.cfg
    L, H, D, C = cfg.n_layer, cfg.n_head, cfg.d_head, cfg.d_model
    if not 0 <= position < trace.T:
        raise ValueError(f"position must be in 0..{trace.T - 1}, got {position}")
    for t in (target, foil):
        if t is not None and not 0 <= t < cfg.vocab_size:
            raise ValueError(f"token id out of range 0..{cfg.vocab_size - 1}: {t}")
    W_U = lm.net.W_U
    u = W_U[target].double().cpu().numpy()
    if foil is not None:
        u = u - W_U[foil].double().cpu().numpy()
    w, b, eps, centres = _final_norm(lm)
    x = trace.act("hook_resid_post", L - 1)[position].astype(np.float64)                 # (C,)
    centre = (lambda v: v - v.mean(-1, keepdims=True)) if centres else (lambda v: v)
    xc = centre(x)
    scale = 1.0 / np.sqrt((xc ** 2).mean() + eps)
    d = u * w                                                                           # (C,)

    def contribution(v: np.ndarray) -> np.ndarray:
        return scale * (centre(v) @ d)

    embed = trace.act("hook_embed")[position].astype(np.float64)
    if "hook_pos_embed" in trace.acts:
        embed = embed + trace.act("hook_pos_embed")[position].astype(np.float64)
    heads = np.zeros((L, H))
    mlps = np.zeros(L)
    attn_bias = np.zeros(C)
    for l in range(L):
        attn = lm.net.blocks[l].attn
        W_O = attn.o.weight.detach().double().cpu().numpy().reshape(C, H, D)             # (C, H, D)
        z = trace.act("attn.hook_z", l)[:, position, :].astype(np.float64)               # (H, D)
        heads[l] = contribution(np.einsum("chd,hd->hc", W_O, z))                         # (H, C) -> (H,)
        if attn.o.bias is not None:
            attn_bias += attn.o.bias.detach().double().cpu().numpy()
        mlps[l] = contribution(trace.act("hook_mlp_out", l)[position].astype(np.float64))
    bias = float(contribution(attn_bias)) if cfg.has_bias else 0.0
    if b is not None:
        bias += float(u @ b)
    logit = float(trace.logits[position, target] - (trace.logits[position, foil] if foil is not None else 0.0))
    return Attribution(position, int(target), None if foil is None else int(foil), logit,
                       float(contribution(embed)), heads, mlps, bias, float(scale))
