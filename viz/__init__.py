"""Panels: pure functions from a Trace (and view options) to Plotly figures or escaped HTML.

numpy and plotly only: nothing here imports torch or gradio. Input types (Trace, LogitLens,
Neighbours, Distribution, ModelConfig) come from model's torch-free modules (model.trace,
model.records, model.sampling, model.config); tests/test_torch_free.py checks it.
"""
