"""From a View and the page's controls to panel contents, in groups that change together.

Each group lists exactly what a control invalidates, so a slider move recomputes only its own
panels and never runs the model:
  prompt group   (Run, Next token, Generate): tokens, embeddings, all-heads overview, logit lens
  focus group    (a chip click):               chips, neighbours, embeddings, lens (+ the layer group)
  layer group    (view options, a layer the page lacks): attention, heads, detail, MLP for many layers
  sampling group (Run, Next token):             the logits the page computes the distribution from
"""
from __future__ import annotations

from functools import lru_cache

from model import LanguageModel
from model.tokenizer import split_incomplete_utf8
from viz import language_note as note
from viz import attention, big_picture, distribution as dist_viz, embeddings, kv_cache, logit_lens, mlp, model_card, positions, residual_stream, tokens

from . import layer_data
from .controls import Controls
from .state import View


def vocabulary_label(piece) -> str:
    """A token's label out of context (candidates, neighbours, the logit lens): a token that is only
    part of a multi-byte character says where in the character it sits: "<E6 88>…2/3" holds the
    first 2 of 3 bytes, "…<91>" continues a character begun in an earlier token."""
    raw, shown = piece.raw, piece.display
    if piece.is_special or not raw or not (shown.startswith("<") and shown.endswith(">")):
        return shown
    try:
        raw.decode("utf-8")
        return shown
    except UnicodeDecodeError:
        pass
    lead = raw[0]
    if lead >= 0xC0:
        size = 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4
        return f"{shown}…{min(len(raw), size)}/{size}"
    return "…" + shown


def make_labels(lm: LanguageModel):
    """id -> the token's visible label out of context, memoised (the vocabulary never changes)."""
    return lru_cache(maxsize=65536)(lambda i: vocabulary_label(lm.tokenizer.pieces([int(i)])[0]))


def text_so_far(tr) -> str:
    """The prompt and what was generated after it. Bytes of a character whose other bytes have not
    been generated yet are shown as hex until it is complete (never as U+FFFD)."""
    raw = b"".join(p.raw for p in tr.pieces[tr.n_prompt:])
    done, waiting = split_incomplete_utf8(raw)
    text = tr.prompt + done.decode("utf-8", errors="replace")
    return text + ("⟨" + " ".join(f"{b:02X}" for b in waiting) + "⟩" if waiting else "")


def progress_group(view: View, tr, max_tokens: int) -> dict:
    """While generating, between full redraws: the text so far and the token count only."""
    return {"output": text_so_far(tr), "token-count": token_count_text(view, max_tokens, tr)}


def token_count_text(view: View, max_tokens: int, tr=None) -> str:
    """The count line in both languages (HTML; the page shows the one it speaks)."""
    tr = view.trace if tr is None else tr
    generated = tr.T - tr.n_prompt
    en = (f"<b>{tr.n_prompt} prompt token{'s' if tr.n_prompt != 1 else ''}</b>"
          + (f" + {generated} generated" if generated else "") + f" · limit {max_tokens} · focus: position {view.focus}")
    zh = (f"<b>提示词 {tr.n_prompt} 个词元</b>" + (f" + 生成 {generated} 个" if generated else "")
          + f" · 上限 {max_tokens} · 焦点：位置 {view.focus}")
    return f'<span class="gg-en">{en}</span><span class="gg-zh">{zh}</span>'


def refused_count_text(n_tokens: int | None, max_tokens: int, n_chars: int | None = None) -> str:
    """The count line for a prompt that was refused: how long it was, against the limit."""
    if n_tokens is None:
        en = f"<b>not run: {n_chars:,} characters</b> · limit {max_tokens} tokens"
        zh = f"<b>未运行：{n_chars:,} 个字符</b> · 上限 {max_tokens} 个词元"
    else:
        en = f"<b>not run: {n_tokens:,} tokens</b> · limit {max_tokens}"
        zh = f"<b>未运行：{n_tokens:,} 个词元</b> · 上限 {max_tokens}"
    return f'<span class="gg-en gg-refused">{en}</span><span class="gg-zh gg-refused">{zh}</span>'


def prompt_group(lm: LanguageModel, view: View, opts: Controls, labels) -> dict:
    """What a new trace changes and needs neither the logit lens nor the neighbours (drawn first)."""
    tr = view.trace
    return {
        "tokens": tokens.token_chips_html(tr, view.focus),
        "residual-stream": residual_stream.residual_stream_figure(tr, view.focus),
        "attention-all": attention.all_heads_figure(tr, metric=opts.heads_metric, stats=view.head_stats),
        "output": text_so_far(tr),
        "kv-cache": kv_cache.kv_cache_figure(tr),
        "kv-summary": kv_cache.kv_cache_summary_html(tr),
    }


COMPUTING = object()        # a handler's value for a panel whose data is still being computed
LENS_IDS = ("embeddings", "neighbours", "logit-lens", "logit-lens-focus", "big-picture")   # wait for lens and neighbours


def lens_group(lm: LanguageModel, view: View, opts: Controls, labels) -> dict:
    """What needs the logit lens and the embedding neighbours (the costly part of a Run)."""
    tr = view.trace
    extra = {} if lm.cfg.uses_rope else {"positions": positions.position_embedding_figure(tr, lm.position_table())}
    return extra | {
        "embeddings": embeddings.embedding_figure(view.neighbours, tr, view.focus, dims=3 if opts.embed_3d else 2, labels=labels),
        "neighbours": embeddings.neighbour_table_html(view.neighbours, tr, view.focus, labels),
        "logit-lens": logit_lens.logit_lens_figure(view.lens, tr, labels),
        "logit-lens-focus": logit_lens.focus_lens_figure(view.lens, tr, view.focus, labels),
        "big-picture": big_picture.big_picture_html(tr, view.lens, view.focus, labels),
    }


def focus_group(lm: LanguageModel, view: View, opts: Controls, labels) -> dict:
    tr = view.trace
    return {
        "tokens": tokens.token_chips_html(tr, view.focus),
        "residual-stream": residual_stream.residual_stream_figure(tr, view.focus),
        "neighbours": embeddings.neighbour_table_html(view.neighbours, tr, view.focus, labels),
        "embeddings": embeddings.embedding_figure(view.neighbours, tr, view.focus, dims=3 if opts.embed_3d else 2, labels=labels),
        "logit-lens": logit_lens.logit_lens_figure(view.lens, tr, labels),
        "logit-lens-focus": logit_lens.focus_lens_figure(view.lens, tr, view.focus, labels),
        "big-picture": big_picture.big_picture_html(tr, view.lens, view.focus, labels),
    }


def layer_group(view: View, opts: Controls, budget: int = layer_data.BUDGET_BYTES) -> dict:
    """The layer panels for every layer and head the page can hold (server/layer_data.py)."""
    return {"layer-data": layer_data.layer_data(view, opts, budget)}


def sampling_group(view: View, labels) -> dict:
    """The data the page draws the next-token chart from, under any setting (assets/sampling.js)."""
    tr = view.trace
    return {"distribution": dist_viz.distribution_payload(tr.logits[-1], tr.T, labels)}


def md_code(text: str) -> str:
    """Show arbitrary text inside Markdown as inert code: no HTML, no Markdown syntax survives."""
    ticks = "``" if "`" in text else "`"
    return f"{ticks} {text} {ticks}"


STATIC_FIGURE_IDS = ("params-figure", "gqa")


def static_figures(lm: LanguageModel) -> list:
    """The figures that never change but for their language, in the order of STATIC_FIGURE_IDS."""
    return [model_card.parameter_figure(lm.parameter_counts(), lm.cfg), attention.gqa_figure(lm.cfg)]


def static_group(lm: LanguageModel) -> dict:
    counts = lm.parameter_counts()
    return {
        "model-card": model_card.model_card_html(lm.cfg, counts, str(lm.device), lm.dtype),
        "params-figure": model_card.parameter_figure(counts, lm.cfg),
        "position-note": embeddings.position_note(lm.cfg),
        "mlp-flow": mlp.mlp_flow_html(lm.cfg),
        "language-note": language_note(lm),
    }


def language_note(lm: LanguageModel) -> str:
    """What Chinese costs this model, measured on one sentence in both languages (viz/language_note.py)."""
    costs = {lang: note.sentence_cost(lm.trace(text), lang) for lang, text in note.SAMPLES.items()}
    return note.language_note_html(costs["en"], costs["zh"])
