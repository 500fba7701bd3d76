"""A decoder-only transformer in one readable file, for the Llama and GPT-2 families.

Read it top to bottom: every piece is defined before it is used. Shapes use B (batch), T (new
positions), S (all positions the new ones may attend to, cached ones included), C (d_model),
H (query heads), KV (key/value heads), D (head size), F (MLP width), V (vocabulary).

Attention is written out by hand so that the scores and the pattern exist as tensors we can show;
`torch.nn.functional.scaled_dot_product_attention` appears only in the tests, as a parity check.

Every activation passes through a `Tap`, an identity module. When a recorder is attached, a tap
hands its tensor to the recorder under the tap's module-tree name ("blocks.3.attn.hook_q"), so
the names cannot drift from the code that computes them.
"""
from __future__ import annotations

import math
from typing import Callable, Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import ModelConfig

Recorder = Callable[[str, torch.Tensor], None]
Editor = Callable[[str, torch.Tensor], torch.Tensor]


class Tap(nn.Module):
    """Identity; reports its input to the model's recorder when one is attached.

    An editor (name, x) -> x', when attached, replaces the tensor first (e.g. zeroing a head for an
    ablation): the recorder then sees, and the rest of the model computes with, the edited tensor."""

    def __init__(self):
        super().__init__()
        self.name = ""                         # filled in from named_modules() by Transformer
        self.recorder: Recorder | None = None
        self.editor: Editor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.editor is not None:
            x = self.editor(self.name, x)
        if self.recorder is not None:
            self.recorder(self.name, x)
        return x


class RMSNorm(nn.Module):
    """Llama's norm: rescale to unit root-mean-square, then a learned gain. No mean, no bias."""

    def __init__(self, C: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(C))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def make_norm(cfg: ModelConfig) -> nn.Module:
    if cfg.norm_kind == "rms":
        return RMSNorm(cfg.d_model, cfg.norm_eps)
    return nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps)


class Rotary(nn.Module):
    """Rotary position embedding, "rotate half" form.

    Each head vector is split into halves (x1, x2); pair i = (x1[i], x2[i]) is rotated by the angle
    pos * base^(-2i/D). Queries and keys are rotated, values are not, so the score q·k depends on
    the distance between positions. Weights read from a GGUF file have their Q/K rows reordered
    back to this layout by the loader (see gguf_loader.unpermute_qk), so q and k here match other
    implementations element for element.
    """

    def __init__(self, D: int, base: float):
        super().__init__()
        self.D, self.base = D, base
        # On the CPU even while the model is built on "meta": meta arange imports torch._dynamo (2 s).
        self.register_buffer("inv_freq", self.frequencies(torch.device("cpu")), persistent=False)
        self._cos = self._sin = None

    def frequencies(self, device=None) -> torch.Tensor:
        """base^(-2i/D) for each pair i, float64 (the angles of far positions need it)."""
        return self.base ** (-torch.arange(0, self.D, 2, dtype=torch.float64, device=device) / self.D)

    def _table(self, n: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        if self._cos is None or self._cos.shape[0] < n or self._cos.device != device:
            n = max(n, 256 if self._cos is None else 2 * self._cos.shape[0])
            angles = torch.outer(torch.arange(n, dtype=torch.float64, device=device),
                                 self.inv_freq.to(device))             # (n, D/2)
            angles = torch.cat([angles, angles], dim=-1)              # (n, D)
            self._cos, self._sin = angles.cos().float(), angles.sin().float()
        return self._cos, self._sin

    def forward(self, x: torch.Tensor, pos0: int) -> torch.Tensor:
        T = x.shape[-2]
        cos, sin = self._table(pos0 + T, x.device)
        cos, sin = cos[pos0:pos0 + T], sin[pos0:pos0 + T]               # (T, D)
        x1, x2 = x.chunk(2, dim=-1)
        rotated_half = torch.cat([-x2, x1], dim=-1)                    # (..., T, D)
        return x * cos + rotated_half * sin


class KVCache:
    """Keys and values of every layer for the positions already read, so a new token attends to
    them without recomputing the prefix. Preallocated; `append` writes into the next slots."""

    def __init__(self, cfg: ModelConfig, capacity: int, device, dtype=torch.float32):
        shape = (cfg.n_layer, 1, cfg.n_kv_head, capacity, cfg.d_head)  # (L, B, KV, S_max, D)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.length = 0          # positions committed (all layers)
        self.capacity = capacity

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        """k, v: (B, KV, T, D) for the new positions -> views over all S = length + T positions."""
        T = k.shape[-2]
        end = self.length + T
        if end > self.capacity:
            raise ValueError(f"KV cache full: {end} positions > capacity {self.capacity}")
        self.k[layer, :, :, self.length:end] = k
        self.v[layer, :, :, self.length:end] = v
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]

    def commit(self, T: int):
        self.length += T

    def nbytes(self) -> int:
        return 2 * self.k[:, :, :, :self.length].numel() * self.k.element_size()


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig, layer: int):
        super().__init__()
        self.cfg, self.layer = cfg, layer
        H, KV, D, C = cfg.n_head, cfg.n_kv_head, cfg.d_head, cfg.d_model
        # Q, K and V projections fused into one matrix: one matmul instead of three.
        self.qkv = nn.Linear(C, (H + 2 * KV) * D, bias=cfg.has_bias)
        self.o = nn.Linear(H * D, C, bias=cfg.has_bias)
        self.rotary = Rotary(D, cfg.rope_base) if cfg.uses_rope else None
        self.hook_q, self.hook_k, self.hook_v = Tap(), Tap(), Tap()
        self.hook_attn_scores, self.hook_pattern, self.hook_z = Tap(), Tap(), Tap()

    def forward(self, x: torch.Tensor, pos0: int, cache: KVCache | None) -> torch.Tensor:
        cfg = self.cfg
        B, T, C = x.shape
        H, KV, D, G = cfg.n_head, cfg.n_kv_head, cfg.d_head, cfg.group_size
        q, k, v = self.qkv(x).split([H * D, KV * D, KV * D], dim=-1)
        q = q.view(B, T, H, D).transpose(1, 2)                          # (B, H, T, D)
        k = k.view(B, T, KV, D).transpose(1, 2)                         # (B, KV, T, D)
        v = v.view(B, T, KV, D).transpose(1, 2)                         # (B, KV, T, D)
        if self.rotary is not None:
            q, k = self.rotary(q, pos0), self.rotary(k, pos0)
        q, k, v = self.hook_q(q.contiguous()), self.hook_k(k.contiguous()), self.hook_v(v.contiguous())
        if cache is not None:
            k, v = cache.append(self.layer, k, v)                       # (B, KV, S, D)
        S = k.shape[-2]

        # Grouped-query attention: the G query heads of group g all use K/V head g. Heads of a
        # group are adjacent, so viewing q as (B, KV, G*T, D) lines each group up with its K/V
        # head without copying K or V. The view needs q in (B, H, T, D) memory order: the
        # .contiguous() above (after the transpose and RoPE) is what makes it valid.
        scores = q.view(B, KV, G * T, D) @ k.transpose(-2, -1)          # (B, KV, G*T, S)
        scores = scores.view(B, H, T, S) / math.sqrt(D)                 # (B, H, T, S)
        # Causal mask: new position i sits at absolute position S - T + i and may not see later keys.
        future = torch.ones(T, S, dtype=torch.bool, device=x.device).triu(S - T + 1)
        scores = self.hook_attn_scores(scores.masked_fill(future, float("-inf")))
        pattern = self.hook_pattern(scores.softmax(dim=-1))            # (B, H, T, S), rows sum to 1
        z = (pattern.view(B, KV, G * T, S) @ v).view(B, H, T, D)       # (B, H, T, D)
        z = self.hook_z(z)
        return self.o(z.transpose(1, 2).reshape(B, T, H * D))          # (B, T, C)


class MLP(nn.Module):
    """Per position: widen to F, a non-linearity, back to C.

    Llama (SwiGLU): down( silu(gate(x)) * up(x) ); hook_pre = gate(x), hook_pre_linear = up(x).
    GPT-2 (GELU):   down( gelu(up(x)) );           hook_pre = up(x).
    hook_post is the input of the down projection in both: one value per neuron.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        C, Fw = cfg.d_model, cfg.d_mlp
        self.gated = cfg.mlp_kind == "swiglu"
        # For SwiGLU, gate and up are fused into one (2F, C) matrix: rows [0, F) gate, [F, 2F) up.
        self.up = nn.Linear(C, 2 * Fw if self.gated else Fw, bias=cfg.has_bias)
        self.down = nn.Linear(Fw, C, bias=cfg.has_bias)
        self.hook_pre, self.hook_pre_linear, self.hook_post = Tap(), Tap(), Tap()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.up(x)                                                  # (B, T, 2F) or (B, T, F)
        if self.gated:
            gate, lin = h.chunk(2, dim=-1)                              # (B, T, F) each
            post = F.silu(self.hook_pre(gate)) * self.hook_pre_linear(lin)
        else:
            post = F.gelu(self.hook_pre(h), approximate="tanh")
        return self.down(self.hook_post(post))                          # (B, T, C)


class Block(nn.Module):
    """resid_mid = resid_pre + attn(norm(resid_pre)); resid_post = resid_mid + mlp(norm(resid_mid))."""

    def __init__(self, cfg: ModelConfig, layer: int):
        super().__init__()
        self.ln1, self.attn = make_norm(cfg), Attention(cfg, layer)
        self.ln2, self.mlp = make_norm(cfg), MLP(cfg)
        self.hook_resid_pre, self.hook_attn_out, self.hook_resid_mid = Tap(), Tap(), Tap()
        self.hook_mlp_out, self.hook_resid_post = Tap(), Tap()

    def forward(self, x: torch.Tensor, pos0: int, cache: KVCache | None) -> torch.Tensor:
        x = self.hook_resid_pre(x)
        attn_out = self.hook_attn_out(self.attn(self.ln1(x), pos0, cache))
        x = self.hook_resid_mid(x + attn_out)
        mlp_out = self.hook_mlp_out(self.mlp(self.ln2(x)))
        return self.hook_resid_post(x + mlp_out)


class Transformer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        # Given an empty weight, nn.Embedding skips its random init, whose first call imports
        # torch._dynamo (2 s of every start); the weights are loaded over it anyway.
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model, _weight=torch.empty(cfg.vocab_size, cfg.d_model))  # W_E, (V, C)
        self.pos_embed = None if cfg.uses_rope else \
            nn.Embedding(cfg.n_ctx, cfg.d_model, _weight=torch.empty(cfg.n_ctx, cfg.d_model))
        self.hook_embed, self.hook_pos_embed = Tap(), Tap()
        self.blocks = nn.ModuleList(Block(cfg, l) for l in range(cfg.n_layer))
        self.ln_final = make_norm(cfg)
        self.ln_final.hook_normalized = Tap()
        self.unembed = None if cfg.tied_embeddings else nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.hook_logits = Tap()
        self.taps: dict[str, Tap] = {}
        for name, module in self.named_modules():
            if isinstance(module, Tap):
                module.name = "logits" if name == "hook_logits" else name
                self.taps[module.name] = module

    @property
    def W_U(self) -> torch.Tensor:
        """Unembedding, (V, C): the embedding itself when the two are tied."""
        return self.embed.weight if self.unembed is None else self.unembed.weight

    def attach(self, recorder: Recorder | None, names=None):
        """Route the named taps (all when names is None) to recorder; None detaches every tap."""
        for name, tap in self.taps.items():   # plain writes: nn.Module.__setattr__ costs ~10 ms a pass over 400 taps
            vars(tap)["recorder"] = recorder if (recorder is not None and (names is None or name in names)) else None

    def attach_editors(self, editors: Mapping[str, Editor] | None):
        """Give the named taps an editor each (unnamed taps get none); None or {} removes every editor."""
        editors = dict(editors or {})
        unknown = [n for n in editors if n not in self.taps]
        if unknown:
            raise ValueError(f"no tap named {unknown[0]!r}")
        for name, tap in self.taps.items():
            vars(tap)["editor"] = editors.get(name)

    def final_norm(self, x: torch.Tensor) -> torch.Tensor:
        return self.ln_final(x)

    def forward(self, ids: torch.Tensor, pos0: int = 0, cache: KVCache | None = None,
                last_only: bool = False) -> torch.Tensor:
        """ids: (B, T) token ids at positions pos0..pos0+T-1 -> logits (B, T, V), or (B, 1, V)."""
        B, T = ids.shape
        x = self.hook_embed(self.embed(ids))                             # (B, T, C)
        if self.pos_embed is not None:
            positions = torch.arange(pos0, pos0 + T, device=ids.device)
            x = x + self.hook_pos_embed(self.pos_embed(positions)[None])             # (1, T, C)
        for block in self.blocks:
            x = block(x, pos0, cache)
        if cache is not None:
            cache.commit(T)
        if last_only:
            x = x[:, -1:]
        x = self.ln_final.hook_normalized(self.ln_final(x))             # (B, T, C)
        return self.hook_logits(F.linear(x, self.W_U, None if self.unembed is None else self.unembed.bias))
