"""From a View and the page's controls to panel contents, in groups that change together.

Each group lists exactly what a control invalidates, so a slider move recomputes only its own
panels and never runs the model:
  prompt group   (Run, Next token, Generate): tokens, embeddings, all-heads overview, logit lens
  focus group    (a chip click):               chips, neighbours, attention detail, top neurons, focus lens
  layer group    (layer, head, view options):  attention pattern, layer heads, detail, MLP
  sampling group (temperature, top-k/p, seed): distribution, the sampled pick
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from model import LanguageModel
from model.sampling import SamplingParams, distribution, sample
from viz import attention, distribution as dist_viz, embeddings, kv_cache, logit_lens, mlp, model_card, positions, tokens

from .state import View


@dataclass(frozen=True)
class LayerOptions:
    layer: int = 0
    head: int = 0
    exclude_first: bool = False     # hide the attention sink (key position 0)
    log_scale: bool = False
    mlp_all: bool = False
    heads_metric: str = "sink"
    embed_3d: bool = False


def make_labels(lm: LanguageModel):
    """id -> the token's visible label, memoised (the vocabulary never changes)."""
    return lru_cache(maxsize=65536)(lambda i: lm.tokenizer.pieces([int(i)])[0].display)


def token_count_text(view: View, max_tokens: int) -> str:
    tr = view.trace
    generated = tr.T - tr.n_prompt
    extra = f" + {generated} generated" if generated else ""
    return f"**{tr.n_prompt} prompt tokens**{extra} · limit {max_tokens} · focus: position {view.focus}"


@lru_cache(maxsize=4)
def position_table(lm: LanguageModel):
    """The learned position vectors (GPT-2 family), or None for a RoPE model."""
    return None if lm.net.pos_embed is None else lm.net.pos_embed.weight.detach().float().cpu().numpy()


def prompt_group(lm: LanguageModel, view: View, opts: LayerOptions, labels) -> dict:
    tr = view.trace
    extra = {} if lm.cfg.uses_rope else {"positions": positions.position_embedding_figure(tr, position_table(lm))}
    return extra | {
        "tokens": tokens.token_chips_html(tr, view.focus),
        "embeddings": embeddings.embedding_figure(view.neighbours, tr, view.focus, dims=3 if opts.embed_3d else 2, labels=labels),
        "neighbours": embeddings.neighbour_table_html(view.neighbours, tr, view.focus, labels),
        "attention-all": attention.all_heads_figure(tr, metric=opts.heads_metric),
        "logit-lens": logit_lens.logit_lens_figure(view.lens, tr, labels),
        "logit-lens-focus": logit_lens.focus_lens_figure(view.lens, tr, view.focus, labels),
        "output": tr.prompt,
        "kv-cache": kv_cache.kv_cache_figure(tr),
        "kv-summary": kv_cache.kv_cache_summary_html(tr),
    }


def focus_group(lm: LanguageModel, view: View, opts: LayerOptions, labels) -> dict:
    tr = view.trace
    return {
        "tokens": tokens.token_chips_html(tr, view.focus),
        "neighbours": embeddings.neighbour_table_html(view.neighbours, tr, view.focus, labels),
        "embeddings": embeddings.embedding_figure(view.neighbours, tr, view.focus, dims=3 if opts.embed_3d else 2, labels=labels),
        "attention": attention.head_pattern_figure(tr, opts.layer, opts.head, view.focus, exclude_first=opts.exclude_first,
                                                   scale="log" if opts.log_scale else "linear"),
        "attention-detail": attention.attention_detail_figure(tr, opts.layer, opts.head, view.focus),
        "mlp-top": mlp.top_neurons_figure(tr, opts.layer, view.focus),
        "logit-lens": logit_lens.logit_lens_figure(view.lens, tr, labels),
        "logit-lens-focus": logit_lens.focus_lens_figure(view.lens, tr, view.focus, labels),
    }


def layer_group(view: View, opts: LayerOptions) -> dict:
    tr = view.trace
    return {
        "attention": attention.head_pattern_figure(tr, opts.layer, opts.head, view.focus, exclude_first=opts.exclude_first,
                                                   scale="log" if opts.log_scale else "linear"),
        "attention-heads": attention.layer_heads_figure(tr, opts.layer, exclude_first=opts.exclude_first),
        "attention-detail": attention.attention_detail_figure(tr, opts.layer, opts.head, view.focus),
        "mlp": mlp.mlp_figure(tr, opts.layer, sort="all" if opts.mlp_all else "top", exclude_first=opts.exclude_first),
        "mlp-top": mlp.top_neurons_figure(tr, opts.layer, view.focus),
    }


def sampling_group(view: View, params: SamplingParams, labels) -> dict:
    tr = view.trace
    dist = distribution(tr.logits[-1], params)
    picked = sample(dist, position=tr.T)
    mode = "greedy (T = 0)" if params.temperature == 0 else f"seed {params.seed}"
    return {
        "distribution": dist_viz.distribution_figure(dist, labels, picked=picked),
        "pick": f"Sampling would pick **{_md_code(labels(picked))}** (id {picked}, p = {dist.probs[picked]:.3f}, {mode}). "
                f"Entropy {dist.entropy_bits:.2f} bits · {dist.n_kept:,} tokens kept.",
    }


def _md_code(text: str) -> str:
    """Show arbitrary text inside Markdown as inert code: no HTML, no Markdown syntax survives."""
    ticks = "``" if "`" in text else "`"
    return f"{ticks} {text} {ticks}"


def static_group(lm: LanguageModel) -> dict:
    counts = lm.parameter_counts()
    return {
        "model-card": model_card.model_card_html(lm.cfg, counts, str(lm.device), str(next(lm.net.parameters()).dtype).replace("torch.", "")),
        "params-figure": model_card.parameter_figure(counts, lm.cfg),
        "position-note": embeddings.position_note(lm.cfg),
        "mlp-flow": mlp.mlp_flow_html(lm.cfg),
    }
