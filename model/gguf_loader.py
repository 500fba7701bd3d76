"""Read a Llama-family GGUF file into a ModelConfig, a state dict for `Transformer`, and a tokenizer.

Dequantization is gguf's own (`gguf.quants.dequantize`); it returns float32 arrays already shaped
(out, in), which is nn.Linear's layout.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .config import ModelConfig


class GGUFFormatError(ValueError):
    pass


def _field(reader, key, default=None):
    f = reader.fields.get(key)
    if f is None:
        if default is None:
            raise GGUFFormatError(f"GGUF metadata has no {key!r}")
        return default
    return f.contents()


def config_from_reader(reader, name: str) -> ModelConfig:
    arch = _field(reader, "general.architecture")
    if arch != "llama":
        raise GGUFFormatError(f"only Llama-family GGUF files are supported, this one is {arch!r}")
    tensor_names = {t.name for t in reader.tensors}
    n_head = int(_field(reader, "llama.attention.head_count"))
    return ModelConfig(
        name=name,
        family="llama",
        n_layer=int(_field(reader, "llama.block_count")),
        n_head=n_head,
        n_kv_head=int(_field(reader, "llama.attention.head_count_kv", n_head)),
        d_model=int(_field(reader, "llama.embedding_length")),
        d_mlp=int(_field(reader, "llama.feed_forward_length")),
        vocab_size=len(reader.fields["tokenizer.ggml.tokens"].data),
        n_ctx=int(_field(reader, "llama.context_length")),
        norm_eps=float(_field(reader, "llama.attention.layer_norm_rms_epsilon")),
        rope_base=float(_field(reader, "llama.rope.freq_base", 10000.0)),
        tied_embeddings="output.weight" not in tensor_names,
    )


def unpermute_qk(w: np.ndarray, n_heads: int) -> np.ndarray:
    """Undo the row order llama.cpp's converter gives Q and K of Llama models.

    The converter reorders each head's rows from (2, D/2) to (D/2, 2), so that its RoPE can rotate
    *adjacent* pairs (x0, x1), (x2, x3), ... Reordering back to (2, D/2) puts rotation partner
    i + D/2 next to i again, the "rotate half" layout our Rotary uses, and makes our per-head q and
    k equal to those of other implementations. (Keeping the file's order with rotate-half RoPE
    still writes fluent text while the logits are wrong by up to ~40: fluency proves nothing.)
    """
    out, inp = w.shape
    D = out // n_heads
    return w.reshape(n_heads, D // 2, 2, inp).swapaxes(1, 2).reshape(out, inp)


def state_dict_from_reader(reader, cfg: ModelConfig) -> dict[str, torch.Tensor]:
    import gguf

    def get(name: str) -> np.ndarray:
        t = by_name.get(name)
        if t is None:
            raise GGUFFormatError(f"GGUF file has no tensor {name!r}")
        # gguf hands back read-only views of the file for F32 tensors: copy before torch owns them.
        return np.array(gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float32, copy=True)

    by_name = {t.name: t for t in reader.tensors}
    sd: dict[str, np.ndarray] = {"embed.weight": get("token_embd.weight"),
                                 "ln_final.weight": get("output_norm.weight")}
    if not cfg.tied_embeddings:
        sd["unembed.weight"] = get("output.weight")
    for l in range(cfg.n_layer):
        p, b = f"blk.{l}.", f"blocks.{l}."
        q = unpermute_qk(get(p + "attn_q.weight"), cfg.n_head)
        k = unpermute_qk(get(p + "attn_k.weight"), cfg.n_kv_head)
        sd[b + "attn.qkv.weight"] = np.concatenate([q, k, get(p + "attn_v.weight")])
        sd[b + "attn.o.weight"] = get(p + "attn_output.weight")
        sd[b + "ln1.weight"] = get(p + "attn_norm.weight")
        sd[b + "ln2.weight"] = get(p + "ffn_norm.weight")
        sd[b + "mlp.up.weight"] = np.concatenate([get(p + "ffn_gate.weight"), get(p + "ffn_up.weight")])
        sd[b + "mlp.down.weight"] = get(p + "ffn_down.weight")
    expected = {"embed.weight": (cfg.vocab_size, cfg.d_model)}
    for key, shape in expected.items():
        if sd[key].shape != shape:
            raise GGUFFormatError(f"{key} has shape {sd[key].shape}, expected {shape}")
    return {k: torch.from_numpy(v) for k, v in sd.items()}


def read_gguf(path: Path, name: str | None = None):
    """-> (ModelConfig, state dict, Tokenizer). Slow (seconds): callers cache the result."""
    import gguf

    from .tokenizer import Tokenizer

    try:
        reader = gguf.GGUFReader(str(path))
    except Exception as e:  # a truncated or foreign file fails deep inside the reader
        raise GGUFFormatError(f"{path} is not a readable GGUF file ({type(e).__name__}: {e})") from e
    cfg = config_from_reader(reader, name or Path(path).stem)
    return cfg, state_dict_from_reader(reader, cfg), Tokenizer.from_gguf_reader(reader)
