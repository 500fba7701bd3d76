"""Activation names, TransformerLens style, built in one place.

The tap modules in transformer.py are named by the module tree (`blocks.3.attn.hook_q`), so the
names below and the module attributes must agree; `tests/test_model_invariants.py` checks that they do.
"""
from __future__ import annotations

# Per-layer activations and where they sit in a block.
LAYER_HOOKS = (
    "hook_resid_pre",
    "attn.hook_q", "attn.hook_k", "attn.hook_v",
    "attn.hook_attn_scores", "attn.hook_pattern", "attn.hook_z",
    "hook_attn_out", "hook_resid_mid",
    "mlp.hook_pre", "mlp.hook_pre_linear", "mlp.hook_post",
    "hook_mlp_out", "hook_resid_post",
)
GLOBAL_HOOKS = ("hook_embed", "hook_pos_embed", "ln_final.hook_normalized", "logits")


def act_name(hook: str, layer: int | None = None) -> str:
    """`act_name("attn.hook_pattern", 3)` -> "blocks.3.attn.hook_pattern"; global names pass through."""
    if layer is None:
        if hook not in GLOBAL_HOOKS:
            raise KeyError(f"{hook!r} is a per-layer activation: give a layer")
        return hook
    if hook not in LAYER_HOOKS:
        raise KeyError(f"unknown per-layer activation {hook!r}; known: {', '.join(LAYER_HOOKS)}")
    return f"blocks.{layer}.{hook}"


def split_name(name: str) -> tuple[int | None, str]:
    """Inverse of act_name: "blocks.3.attn.hook_q" -> (3, "attn.hook_q")."""
    if name.startswith("blocks."):
        _, layer, rest = name.split(".", 2)
        return int(layer), rest
    return None, name
