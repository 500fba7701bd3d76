"""Read a GPT-2 checkpoint from a local Hugging Face directory into a ModelConfig, a state dict for
`Transformer`, and a tokenizer: the classic GPT picture (learned positions, LayerNorm, GELU, biases)
run by the same Transformer class as the Llama family.

The directory holds config.json, the weights (model.safetensors, a sharded
model.safetensors.index.json, or pytorch_model.bin) and the tokenizer (vocab.json + merges.txt, or
tokenizer.json).

Name mapping (Hugging Face -> ours; the "transformer." prefix is optional, since checkpoints saved
from GPT2Model lack it):

  wte                    -> embed                (V, C)
  wpe                    -> pos_embed            (n_ctx, C)
  h.{i}.ln_1             -> blocks.{i}.ln1       weight and bias
  h.{i}.attn.c_attn      -> blocks.{i}.attn.qkv  output rows [q; k; v], heads contiguous in each
  h.{i}.attn.c_proj      -> blocks.{i}.attn.o
  h.{i}.ln_2             -> blocks.{i}.ln2
  h.{i}.mlp.c_fc         -> blocks.{i}.mlp.up
  h.{i}.mlp.c_proj       -> blocks.{i}.mlp.down
  ln_f                   -> ln_final
  lm_head                -> unembed              only when the embeddings are not tied

GPT-2's projections are `Conv1D` modules, which store weights as (in, out), the transpose of
nn.Linear's (out, in): every c_attn / c_proj / c_fc weight is transposed. Old checkpoints also hold
the causal-mask buffers attn.bias / attn.masked_bias; they are not weights and are skipped.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from .config import ModelConfig

# Both are GELU's tanh approximation, which is what MLP uses for the gpt2 family.
SUPPORTED_ACTIVATIONS = ("gelu_new", "gelu_pytorch_tanh")


class HFFormatError(ValueError):
    pass


def config_from_hf(raw: dict, name: str) -> ModelConfig:
    """ModelConfig from a GPT-2 config.json (already parsed); unsupported variants raise HFFormatError."""
    if raw.get("model_type", "gpt2") != "gpt2":
        raise HFFormatError(f"only GPT-2 checkpoints can be read from a Hugging Face directory; "
                            f"this one has model_type {raw.get('model_type')!r}")
    act = raw.get("activation_function", "gelu_new")
    if act not in SUPPORTED_ACTIVATIONS:
        raise HFFormatError(f"activation_function {act!r} is not supported: the GPT-2 MLP here is GELU's tanh "
                            f"approximation ({' or '.join(SUPPORTED_ACTIVATIONS)})")
    if not raw.get("scale_attn_weights", True) or raw.get("scale_attn_by_inverse_layer_idx", False):
        raise HFFormatError("only the standard 1/sqrt(head size) attention scaling is supported "
                            "(scale_attn_weights=True, scale_attn_by_inverse_layer_idx=False)")
    if raw.get("add_cross_attention", False):
        raise HFFormatError("GPT-2 with cross-attention (an encoder-decoder part) is not supported")
    try:
        n_embd, n_head = int(raw["n_embd"]), int(raw["n_head"])
        n_inner = raw.get("n_inner")
        return ModelConfig(
            name=name, family="gpt2",
            n_layer=int(raw["n_layer"]), n_head=n_head, n_kv_head=n_head, d_model=n_embd,
            d_mlp=4 * n_embd if n_inner is None else int(n_inner),
            vocab_size=int(raw["vocab_size"]), n_ctx=int(raw["n_positions"]),
            norm_eps=float(raw.get("layer_norm_epsilon", 1e-5)),
            tied_embeddings=bool(raw.get("tie_word_embeddings", True)))
    except KeyError as e:
        raise HFFormatError(f"config.json has no {e.args[0]!r}") from None


def read_weights(directory: Path) -> dict[str, torch.Tensor]:
    """All tensors of the checkpoint by their Hugging Face names (safetensors preferred)."""
    from safetensors.torch import load_file

    if (directory / "model.safetensors").is_file():
        return load_file(directory / "model.safetensors")
    index = directory / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        out: dict[str, torch.Tensor] = {}
        for shard in shards:
            out.update(load_file(directory / shard))
        return out
    if (directory / "pytorch_model.bin").is_file():
        path = directory / "pytorch_model.bin"
        try:
            try:
                return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError:     # files in torch's legacy (pre-zip) format cannot be memory-mapped
                return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - a foreign or truncated pickle fails deep inside torch
            raise HFFormatError(f"{path} cannot be read ({type(e).__name__}: {e})") from e
    raise HFFormatError(f"{directory} has no weights: expected model.safetensors, model.safetensors.index.json "
                        "or pytorch_model.bin")


def state_dict_from_hf(weights: dict[str, torch.Tensor], cfg: ModelConfig) -> dict[str, torch.Tensor]:
    """Rename (and transpose the Conv1D weights of) a GPT-2 checkpoint into our names, float32."""
    w = {k.removeprefix("transformer."): v for k, v in weights.items()}

    def get(name: str, shape: tuple[int, ...], conv1d: bool = False) -> torch.Tensor:
        t = w.get(name)
        if t is None:
            raise HFFormatError(f"the checkpoint has no tensor {name!r}")
        stored = shape[::-1] if conv1d else shape
        if tuple(t.shape) != stored:
            raise HFFormatError(f"{name} has shape {tuple(t.shape)}, expected {stored}")
        t = t.float()
        return (t.T if conv1d else t).contiguous()

    C, F, V = cfg.d_model, cfg.d_mlp, cfg.vocab_size
    sd = {"embed.weight": get("wte.weight", (V, C)),
          "pos_embed.weight": get("wpe.weight", (cfg.n_ctx, C)),
          "ln_final.weight": get("ln_f.weight", (C,)), "ln_final.bias": get("ln_f.bias", (C,))}
    for l in range(cfg.n_layer):
        h, b = f"h.{l}.", f"blocks.{l}."
        for ours, theirs, out_in in (("attn.qkv", "attn.c_attn", (3 * C, C)), ("attn.o", "attn.c_proj", (C, C)),
                                     ("mlp.up", "mlp.c_fc", (F, C)), ("mlp.down", "mlp.c_proj", (C, F))):
            sd[b + ours + ".weight"] = get(h + theirs + ".weight", out_in, conv1d=True)
            sd[b + ours + ".bias"] = get(h + theirs + ".bias", (out_in[0],))
        for ours, theirs in (("ln1", "ln_1"), ("ln2", "ln_2")):
            sd[b + ours + ".weight"] = get(h + theirs + ".weight", (C,))
            sd[b + ours + ".bias"] = get(h + theirs + ".bias", (C,))
    if not cfg.tied_embeddings:
        if "lm_head.weight" not in weights:
            raise HFFormatError("tie_word_embeddings is false but the checkpoint has no lm_head.weight")
        head = weights["lm_head.weight"]
        if tuple(head.shape) != (V, C):
            raise HFFormatError(f"lm_head.weight has shape {tuple(head.shape)}, expected {(V, C)}")
        sd["unembed.weight"] = head.float().contiguous()
    return sd


def read_hf_gpt2(directory: str | Path, name: str | None = None):
    """-> (ModelConfig, state dict, Tokenizer) from a Hugging Face GPT-2 directory."""
    from .tokenizer import Tokenizer

    d = Path(directory)
    if not (d / "config.json").is_file():
        raise HFFormatError(f"{d} is not a Hugging Face model directory: it has no config.json")
    try:
        raw = json.loads((d / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise HFFormatError(f"{d / 'config.json'} cannot be read as JSON ({e})") from e
    cfg = config_from_hf(raw, name or d.resolve().name)
    sd = state_dict_from_hf(read_weights(d), cfg)
    eos = raw.get("eos_token_id")
    eos = [] if eos is None else [eos] if isinstance(eos, int) else list(eos)
    try:
        tok = Tokenizer.from_hf_directory(d, extra_eos_ids=eos)
    except ValueError as e:
        raise HFFormatError(str(e)) from e
    if tok.vocab_size != cfg.vocab_size:
        raise HFFormatError(f"the tokenizer has {tok.vocab_size:,} tokens but the model's vocab_size is "
                            f"{cfg.vocab_size:,}; they must be equal (padded vocabularies are not supported)")
    return cfg, sd, tok
