"""A tiny random-weight Llama for tests that need *a* trace, not the real model's facts.

It is built the way `model.lm.load_model` builds the real one (`model.lm.build`: our own
Transformer, a state dict, the real default tokenizer), only with a small config and seeded
random weights, so it takes milliseconds instead of seconds and needs no network.

    n_layer=2  n_head=4  n_kv_head=2 (GQA, 2 query heads per K/V head)  d_model=64 (d_head=16)
    d_mlp=128  RoPE (rotate half, base 100000 as SmolLM2)  RMSNorm (eps 1e-5)  vocab 49,152

The vocabulary is the default model's, so every tokenizer behaviour (pieces, partial bytes,
control tokens, chat layout) is the real one. The tokenizer is read from the load cache entry the
real model's first load writes (`model.load_cache`, ~0.2 s); when there is none, from the GGUF
file itself (~3 s, once per process).

Weights are drawn from a seeded generator with scales chosen so that nothing is degenerate:
attention patterns are neither uniform nor one-hot, the MLP's SwiGLU is in its curved range, the
norm gains are not all 1, and the logits are spread but not saturated.
"""
from __future__ import annotations

import functools

import torch

from model import bundled, load_cache
from model.config import ModelConfig
from model.lm import LanguageModel
from model.transformer import Transformer

VOCAB = 49152
TINY = dict(n_layer=2, n_head=4, n_kv_head=2, d_model=64, d_mlp=128, vocab_size=VOCAB, n_ctx=2048,
            norm_eps=1e-5, rope_base=100000.0)
SOURCE = "tests/tiny_model.py (random weights)"


def tiny_config(tied: bool = True, **overrides) -> ModelConfig:
    return ModelConfig(**{"name": "tiny-random-llama", "family": "llama", **TINY, "tied_embeddings": tied,
                          **overrides})


@functools.lru_cache(maxsize=1)
def default_tokenizer():
    """The default model's tokenizer: from the load cache when the real model has been loaded
    once on this machine, else from the GGUF file (slower; its integrity is not re-checked here)."""
    from model.tokenizer import Tokenizer

    try:
        text = (load_cache.entry_dir(bundled.SHA256) / "tokenizer.json").read_text()
        return Tokenizer.from_json(text)
    except (OSError, ValueError, KeyError, TypeError):
        import gguf

        return Tokenizer.from_gguf_reader(gguf.GGUFReader(str(bundled.default_model_path())))


def random_state_dict(cfg: ModelConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    """Seeded weights in our Transformer's layout: attn.qkv rows are [Q (H*D); K (KV*D); V (KV*D)]
    in rotate-half order, mlp.up rows are [gate (F); up (F)]."""
    g = torch.Generator().manual_seed(seed)
    C, F, H, KV, D = cfg.d_model, cfg.d_mlp, cfg.n_head, cfg.n_kv_head, cfg.d_head

    def randn(*shape, std):
        return torch.randn(*shape, generator=g) * std

    def gain():
        return 1.0 + randn(C, std=0.2)

    sd = {"embed.weight": randn(cfg.vocab_size, C, std=0.3), "ln_final.weight": gain()}
    if not cfg.tied_embeddings:
        sd["unembed.weight"] = randn(cfg.vocab_size, C, std=0.3)
    for l in range(cfg.n_layer):
        b = f"blocks.{l}."
        sd[b + "ln1.weight"] = gain()
        sd[b + "ln2.weight"] = gain()
        sd[b + "attn.qkv.weight"] = randn((H + 2 * KV) * D, C, std=1.5 / C ** 0.5)
        sd[b + "attn.o.weight"] = randn(C, H * D, std=1.0 / (H * D) ** 0.5)
        sd[b + "mlp.up.weight"] = randn(2 * F, C, std=1.0 / C ** 0.5)
        sd[b + "mlp.down.weight"] = randn(C, F, std=1.0 / F ** 0.5)
    return sd


def tiny_lm(seed: int = 0, tied: bool = True, **overrides) -> LanguageModel:
    """A LanguageModel around our Transformer with the tiny config and seeded random weights (CPU, float32).

    Not through `model.lm.build`: it makes the modules on the meta device, and the first meta
    `normal_` of a process imports torch._dynamo (~2 s). Made on the CPU instead (the default
    init of ~3.2M parameters costs ~30 ms), then loaded strictly: every parameter is ours."""
    cfg = tiny_config(tied, **overrides)
    net = Transformer(cfg)
    net.load_state_dict(random_state_dict(cfg, seed), strict=True)
    return LanguageModel(net, default_tokenizer(), torch.device("cpu"), source=SOURCE)
