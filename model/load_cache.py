"""A cache of what reading a GGUF file produces, so that the second start takes under a second.

Parsing the default file's 49k-token vocabulary with gguf's reader takes ~4 s and dequantizing
its weights ~1.3 s. Both results depend only on the file's bytes, so they are stored once under
the file's sha256 (weights as a torch file read back through mmap, tokenizer and config as JSON).
A changed file has another digest and therefore another entry: a stale cache cannot be used.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

from .config import ModelConfig

FORMAT = 2   # bump when what is stored changes


def cache_root() -> Path:
    if os.environ.get("GLASSGPT_CACHE"):
        return Path(os.environ["GLASSGPT_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "glassgpt"


def entry_dir(digest: str) -> Path:
    return cache_root() / f"{digest}-v{FORMAT}"


def load(digest: str):
    """-> (config, state dict, tokenizer) or None when there is no complete entry."""
    from .tokenizer import Tokenizer

    d = entry_dir(digest)
    try:
        cfg = ModelConfig(**json.loads((d / "config.json").read_text()))
        tok = Tokenizer.from_json((d / "tokenizer.json").read_text())
        sd = torch.load(d / "weights.pt", mmap=True, weights_only=True)
    except (OSError, ValueError, TypeError, RuntimeError, KeyError):
        return None
    return cfg, sd, tok


def store(digest: str, cfg: ModelConfig, sd: dict, tok) -> None:
    """Write atomically (a temporary folder renamed into place); a failure only costs speed."""
    root = cache_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=root, prefix=".tmp-"))
        (tmp / "config.json").write_text(json.dumps(cfg.to_dict()))
        (tmp / "tokenizer.json").write_text(tok.to_json())
        torch.save(sd, tmp / "weights.pt")
        final = entry_dir(digest)
        if final.exists():
            shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
    except OSError:
        shutil.rmtree(locals().get("tmp", root / ".none"), ignore_errors=True)
