"""What a reader of the Chinese page may see in Latin letters, and a check for everything else.

Names and standard notation stay as they are (the model's name, GPT, MLP, softmax, top-k, ...);
any other Latin word in Chinese mode is an untranslated text.
"""
from __future__ import annotations

import re

ALLOWED = {
    # names and notation
    "glassgpt", "gpt", "gpt-2", "smollm2", "smollm2-135m-instruct", "smollm2-135m-instruct.q4_1", "llama", "transformer", "mlp", "kv", "rope",
    "gqa", "softmax", "logit", "logits", "pca", "swiglu", "silu", "gelu", "bpe", "utf-8", "utf", "top-k", "top-p",
    "id", "ids", "rmsnorm", "layernorm", "norm", "kl", "cos", "gguf", "q4_1", "q4", "float32", "float16",
    "bfloat16", "cpu", "cuda", "gpu", "json", "png", "api", "eos", "bos", "pc1", "pc2", "pc3", "ms", "mb", "gb",
    "kb", "mib", "gpt-3", "d_head", "d_model", "d_mlp", "johnson", "lindenstrauss", "x·w_gate", "x·w_up", "x·sigmoid", "attn_out", "mlp_out", "bits", "bit", "dim", "max", "min", "log", "exp", "argmax", "sink", "last", "q·k", "ln", "gate", "up",
    "down", "lm_head", "wte", "wpe", "l2", "qkv",
    # single letters are notation (Q, K, V, z, T, p, k, d, x, ...)
}


def stray_latin(text: str, extra_allowed=()) -> list[str]:
    """Latin words in `text` (two letters or more) that are not names or notation."""
    allowed = ALLOWED | {w.lower() for w in extra_allowed}
    text = re.sub(r"<[^>]*>|&[#\w]+;|%\{[^}]*\}", " ", str(text))      # markup and Plotly's %{...} slots
    found = []
    for word in re.findall(r"[A-Za-z][A-Za-z0-9_\-·.]*[A-Za-z0-9]|[A-Za-z]{2,}", text):
        w = word.lower().strip(".-")
        # single letters with digits are notation, hook names are names, e-04 is a number's exponent
        if len(w) < 2 or w in allowed or re.fullmatch(r"[a-z]\d*|hook_\w+|e[-+]?\d+", w):
            continue
        found.append(word)
    return found


def figure_texts(fig) -> list[str]:
    """Every text of a figure a person reads besides tick labels (tokens, numbers): the title,
    axis, colour-bar and legend titles, trace names, hover templates and annotations."""
    d = fig if isinstance(fig, dict) else fig.to_plotly_json()
    layout = d.get("layout", {})
    out = []

    def title_of(obj):
        t = (obj or {}).get("title")
        if isinstance(t, dict):
            out.append(t.get("text") or "")
            if isinstance(t.get("subtitle"), dict):
                out.append(t["subtitle"].get("text") or "")
        elif isinstance(t, str):
            out.append(t)

    title_of(layout)
    for key, value in layout.items():
        if re.fullmatch(r"[xy]axis\d*|scene|coloraxis\d*", key) and isinstance(value, dict):
            title_of(value)
            title_of(value.get("colorbar"))
            for sub in ("xaxis", "yaxis", "zaxis"):
                title_of(value.get(sub))
    title_of(layout.get("legend"))
    out += [a.get("text") or "" for a in layout.get("annotations", []) or []]
    for trace in d.get("data", []):
        if trace.get("showlegend", True) is not False and trace.get("name"):
            out.append(trace["name"])
        for k in ("hovertemplate",):
            v = trace.get(k)
            out += v if isinstance(v, list) else [v or ""]
        title_of(trace.get("colorbar"))
        title_of((trace.get("marker") or {}).get("colorbar"))
    return [t for t in out if t]


def stray_in_figure(fig, extra_allowed=()) -> dict[str, list[str]]:
    """{text: its stray Latin words} for every figure text that has some."""
    return {t: s for t in figure_texts(fig) if (s := stray_latin(t, extra_allowed))}
