"""GlassGPT's model room: a readable transformer, its loaders, tokenizer, traces and sampling.

    from model import load_model
    lm = load_model()                 # bundled SmolLM2-135M-Instruct
    tr = lm.trace("The capital of France is")
    tr.logits, tr.acts["blocks.0.attn.hook_pattern"]
"""
from .bundled import ModelFileError
from .config import ModelConfig
from .lm import Generation, LanguageModel, LogitLens, load_model
from .names import act_name
from .sampling import SamplingParams
from .trace import Trace

__all__ = ["load_model", "LanguageModel", "Trace", "ModelConfig", "SamplingParams", "LogitLens",
           "Generation", "ModelFileError", "act_name"]
