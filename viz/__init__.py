"""Panels: pure functions from a Trace (and view options) to Plotly figures or escaped HTML.

numpy and plotly only: nothing here imports torch or gradio.
"""
