"""The shape of a decoder-only transformer, as one frozen value.

Two families share one implementation; these switches are the whole difference:

  family   norm       positions           MLP      biases  K/V heads
  llama    RMSNorm    RoPE (rotate half)  SwiGLU   no      may be fewer than Q heads (GQA)
  gpt2     LayerNorm  learned, added      GELU     yes     same as Q heads
"""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class ModelConfig:
    name: str
    family: str            # "llama" or "gpt2"
    n_layer: int
    n_head: int            # query heads
    n_kv_head: int         # key/value heads (== n_head without GQA)
    d_model: int           # residual stream width
    d_mlp: int             # MLP hidden width
    vocab_size: int
    n_ctx: int             # longest context the weights were trained for
    norm_eps: float = 1e-5
    rope_base: float = 10000.0
    tied_embeddings: bool = True

    def __post_init__(self):
        if self.family not in ("llama", "gpt2"):
            raise ValueError(f"unknown model family {self.family!r}")
        if self.d_model % self.n_head or self.n_head % self.n_kv_head:
            raise ValueError("d_model must divide into n_head heads, n_head into n_kv_head groups")

    # The switches, named for what they mean rather than for the family.
    @property
    def uses_rope(self) -> bool:
        return self.family == "llama"

    @property
    def norm_kind(self) -> str:
        return "rms" if self.family == "llama" else "layer"

    @property
    def mlp_kind(self) -> str:
        return "swiglu" if self.family == "llama" else "gelu"

    @property
    def has_bias(self) -> bool:
        return self.family == "gpt2"

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_head

    @property
    def group_size(self) -> int:
        """Query heads that share one key/value head."""
        return self.n_head // self.n_kv_head

    def kv_head_of(self, head: int) -> int:
        return head // self.group_size

    def to_dict(self) -> dict:
        return asdict(self)
