"""The plain records and the panels import without torch: viz/ names its input types
(Trace, LogitLens, Neighbours, ModelConfig, Distribution) from torch-free modules."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

TORCH_FREE = ("model", "model.config", "model.trace", "model.records", "model.sampling", "model.names",
              "viz.common", "viz.attention", "viz.attention.pattern", "viz.attention.overview",
              "viz.attention.detail", "viz.attention.toy", "viz.logit_lens", "viz.embeddings", "viz.ablation",
              "viz.compare", "viz.residual_path", "viz.distribution", "viz.kv_cache", "viz.mlp",
              "viz.model_card", "viz.positions", "viz.tokens", "viz.embedding_lab", "viz.language_note", "viz.head_roles", "model.head_roles", "viz.big_picture", "viz.temperatures", "model.temperatures", "viz.attribution", "viz.residual_stream", "viz.routes")


def test_records_and_panels_import_without_torch():
    code = (f"import sys, importlib\nfor m in {TORCH_FREE!r}: importlib.import_module(m)\n"
            "from model import LogitLens, Neighbours, Trace, ModelConfig\n"
            "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if m.startswith('torch'))[:5]\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def test_records_are_the_ones_the_model_returns():
    from model import LogitLens as lazy
    from model.lm import LogitLens, Neighbours
    from model.records import LogitLens as plain, Neighbours as plain_nb
    assert LogitLens is plain is lazy and Neighbours is plain_nb
