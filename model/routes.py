"""Information-flow routes (after Ferrando & Voita, 2024): which earlier states the prediction was
built from, found from one forward pass, with no patching.

Each block writes a sum. After attention, the stream at position i is

    resid_mid[i] = resid_pre[i] + sum over heads h and keys j of A_h[i, j] * (v_j of h's K/V head) W_O_h  (+ b_O)

and after the MLP, resid_post[i] = resid_mid[i] + mlp_out[i]. The importance of one term c of a sum
y is its proximity to y, max(|y|_1 - |y - c|_1, 0), divided by the proximities of all the terms:
a term close to the total carries much of it. Heads share K/V heads under GQA (kv_head_of).
The route is read from the top: keep the edges into the prediction's state whose importance is
above a threshold, then the edges into those states, down to the embeddings.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .trace import Trace

QUERY_CHUNK = 8          # queries at a time: (chunk, H, T, C) float32 terms in memory at once


@dataclass(frozen=True)
class Contributions:
    """Importances, each in [0, 1]; per layer l the terms of resid_mid (attention, residual, bias)
    sum to 1, and so do the terms of resid_post (residual, MLP)."""
    attn: np.ndarray        # (L, T, H, T) head h's term from key j into query i: [l, i, h, j]
    resid: np.ndarray       # (L, T) resid_pre[i]'s term in resid_mid[i]
    mid: np.ndarray         # (L, T) resid_mid[i]'s term in resid_post[i]
    mlp: np.ndarray         # (L, T) mlp_out[i]'s term in resid_post[i]


@dataclass(frozen=True)
class Route:
    """The kept edges, from the prediction down. A node (level, position) is the stream before
    block `level` (level L: after the last block)."""
    target: tuple[int, int]
    edges: tuple[tuple[int, int, int, float, int, float], ...]   # (layer, key j, query i, importance, top head, its share)
    nodes: tuple[tuple[int, int], ...]
    threshold: float


def _proximity(y: np.ndarray, terms: np.ndarray) -> np.ndarray:
    """y (..., C), terms (..., K, C) -> (..., K) max(|y|_1 - |y - c|_1, 0)."""
    return np.maximum(np.abs(y).sum(-1)[..., None] - np.abs(y[..., None, :] - terms).sum(-1), 0.0)


def contributions(lm, trace: Trace) -> Contributions:
    cfg = lm.cfg
    L, H, D, C, T = cfg.n_layer, cfg.n_head, cfg.d_head, cfg.d_model, trace.T
    kv_of = np.array([cfg.kv_head_of(h) for h in range(H)])
    attn = np.zeros((L, T, H, T), dtype=np.float32)
    resid, mid, mlp = (np.zeros((L, T), dtype=np.float32) for _ in range(3))
    for l in range(L):
        o = lm.net.blocks[l].attn.o
        W_O = o.weight.detach().float().cpu().numpy().reshape(C, H, D)                      # (C, H, D)
        b_O = o.bias.detach().float().cpu().numpy() if o.bias is not None else None
        v = trace.act("attn.hook_v", l).astype(np.float32)[kv_of]                          # (H, T, D)
        VO = np.einsum("htd,chd->htc", v, W_O)                                             # (H, T, C): each key's value, written out
        A = trace.act("attn.hook_pattern", l).astype(np.float32)                           # (H, T, T)
        pre = trace.act("hook_resid_pre", l).astype(np.float32)
        y_mid = trace.act("hook_resid_mid", l).astype(np.float32)
        for q0 in range(0, T, QUERY_CHUNK):
            q1 = min(T, q0 + QUERY_CHUNK)
            q = slice(q0, q1)                     # keys after the last query of the chunk get no attention
            heads = A[:, q, :q1].transpose(1, 0, 2)[..., None] * VO[None, :, :q1]          # (Q, H, K, C)
            n = heads.shape[0]
            terms = [heads.reshape(n, H * q1, C), pre[q][:, None]]
            if b_O is not None:
                terms.append(np.broadcast_to(b_O, (n, 1, C)))
            prox = _proximity(y_mid[q], np.concatenate(terms, axis=1))                     # (Q, H*K + 1 (+1))
            prox /= np.maximum(prox.sum(-1, keepdims=True), 1e-12)
            attn[l, q, :, :q1] = prox[:, :H * q1].reshape(n, H, q1)
            resid[l, q] = prox[:, H * q1]
        post_terms = np.stack([y_mid, trace.act("hook_mlp_out", l).astype(np.float32)], axis=1)   # (T, 2, C)
        prox = _proximity(trace.act("hook_resid_post", l).astype(np.float32), post_terms)
        prox /= np.maximum(prox.sum(-1, keepdims=True), 1e-12)
        mid[l], mlp[l] = prox[:, 0], prox[:, 1]
    return Contributions(attn, resid, mid, mlp)


def route(c: Contributions, position: int, threshold: float = 0.04) -> Route:
    """The edges above `threshold` that lead to the state after the last block at `position`."""
    L, T = c.resid.shape
    if not 0 <= position < T:
        raise ValueError(f"position must be in 0..{T - 1}, got {position}")
    if not 0 < threshold < 1:
        raise ValueError(f"the threshold must be between 0 and 1, got {threshold}")
    active, nodes, edges = {position}, {(L, position)}, []
    for l in range(L - 1, -1, -1):
        below = set()
        for i in sorted(active):
            by_key = c.attn[l, i].sum(0)                                                   # (T,) heads summed
            for j in np.flatnonzero(by_key > threshold):
                h = int(np.argmax(c.attn[l, i, :, j]))
                edges.append((l, int(j), i, float(by_key[j]), h, float(c.attn[l, i, h, j])))
                below.add(int(j))
            if c.resid[l, i] > threshold:
                edges.append((l, i, i, float(c.resid[l, i]), -1, 0.0))                    # the residual edge
                below.add(i)
        nodes |= {(l, j) for j in below}
        active = below
        if not active:
            break
    return Route((L, position), tuple(edges), tuple(sorted(nodes)), threshold)


MAX_TOKENS = 128         # the cost grows with T^2 (every query against every key, every head)


def node_readout(lm, trace: Trace, nodes) -> dict[tuple[int, int], tuple[int, float]]:
    """The logit lens at each node: (level, position) -> (top token id, its probability), where level
    l is the stream entering block l (level L: after the last block, the model's own prediction)."""
    import torch
    L = lm.cfg.n_layer
    nodes = list(nodes)
    if not nodes:
        return {}
    rows = np.stack([trace.act("hook_resid_pre", l)[i] if l < L else trace.act("hook_resid_post", L - 1)[i]
                     for l, i in nodes]).astype(np.float32)
    with torch.inference_mode():
        x = torch.from_numpy(rows).to(lm.device)
        probs = (lm.net.final_norm(x) @ lm.net.W_U.T).float().softmax(-1)
        p, top = probs.max(-1)
    return {n: (int(t), float(q)) for n, t, q in zip(nodes, top.cpu().tolist(), p.cpu().tolist())}
