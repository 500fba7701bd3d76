"""GlassGPT's model room: a readable transformer, its loaders, tokenizer, traces and sampling.

    from model import load_model
    lm = load_model()                 # bundled SmolLM2-135M-Instruct
    tr = lm.trace("The capital of France is")
    tr.logits, tr.acts["blocks.0.attn.hook_pattern"]

The package imports lazily: the plain records (model.config, model.trace, model.records,
model.sampling, model.names) load without torch, so the panels (viz/) can name their types for free.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "load_model": "lm", "LanguageModel": "lm", "Generation": "lm", "LogitLens": "records", "Neighbours": "records",
    "Trace": "trace", "ModelConfig": "config", "SamplingParams": "sampling", "ModelFileError": "bundled",
    "act_name": "names",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'model' has no attribute {name!r}")
