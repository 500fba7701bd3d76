"""Handlers for the experiments beyond watching one run: ablation, comparing two prompts, and the
residual stream's path. Same contract as server/handlers.py: plain functions
(ctx, view, controls, inputs) -> (view, {element id: value}); a ValueError carries a message for the
page's notice. None of them replaces the session's view: each is a what-if beside the original run.

Element ids:
  on_ablate         -> "ablation", "ablation-lens", "ablation-summary", "notice"
  on_compare        -> "compare-attention", "compare-mlp", "compare-prediction", "compare-cosine",
                       "compare-summary", "notice"
  on_residual_path  -> "residual-path", "notice"
"""
from __future__ import annotations

import re

import numpy as np

from model.ablation import parse_ablation
from model.sampling import SamplingParams, distribution
from viz import ablation as ablation_viz
from viz import compare as compare_viz
from viz import residual_path as path_viz
from viz.common import pct

from .controls import Controls, whole_number
from .handlers import Context, check_prompt
from .render import md_code
from .state import View

PLAIN = SamplingParams()          # temperature 1, no cuts: the model's own distribution


# ---- ablation ----------------------------------------------------------------------------------
def on_ablate(ctx: Context, view: View, c: Controls, heads_text: str, neurons_text: str) -> tuple[View, dict]:
    """Re-run the view's tokens with the listed heads ("3.4, 10.0"; "3.*" = a whole layer) and MLP
    neurons ("5:1297"; "5:*") switched off, and compare the next-token prediction with the plain run."""
    lm, tr, labels = ctx.lm, view.trace, ctx.labels
    abl = parse_ablation(heads_text, neurons_text, lm.cfg)
    if abl.empty:
        raise ValueError("Nothing to switch off: list heads as layer.head (e.g. 3.4, 10.0, or 3.* for a whole "
                         "layer) and/or MLP neurons as layer:neuron (e.g. 5:1297).")
    after = lm.trace(list(tr.token_ids), ablate=abl)
    last = tr.T - 1
    d_before, d_after = distribution(tr.logits[-1], PLAIN), distribution(after.logits[-1], PLAIN)
    lens_before = view.lens if last in view.lens.positions else lm.logit_lens(tr, [last])
    target = int(lens_before.target_ids[list(lens_before.positions).index(last)])
    lens_after = lm.logit_lens(after, [last], targets=[target])
    what = abl.describe(cfg=lm.cfg)
    return view, {
        "ablation": ablation_viz.ablation_figure(d_before, d_after, labels, n=15, what=what),
        "ablation-lens": ablation_viz.ablation_lens_figure(lens_before, lens_after, tr, labels, ablation=abl),
        "ablation-summary": ablation_summary(abl, d_before.probs, d_after.probs, labels, lm.cfg),
        "notice": "",
    }


def ablation_summary(abl, p_before: np.ndarray, p_after: np.ndarray, labels, cfg) -> str:
    """Markdown: what was switched off, the top token before and after, KL divergence. Token text
    appears only inside inert code spans."""
    n_heads, n_neurons = len(abl.heads), len(abl.neurons)
    parts = []
    if n_heads:
        parts.append(f"{n_heads} of {cfg.n_layer * cfg.n_head:,} attention heads")
    if n_neurons:
        parts.append(f"{n_neurons:,} of {cfg.n_layer * cfg.d_mlp:,} MLP neurons")
    tb, ta = int(np.argmax(p_before)), int(np.argmax(p_after))
    change = p_after[tb] - p_before[tb]
    kl = ablation_viz.kl_bits(p_before, p_after)
    lines = [
        f"**Switched off:** {' and '.join(parts)} — {md_code(abl.describe(cfg=cfg))}. A head's output (its part of "
        f"z, before the output projection) or a neuron's activation (before the down projection) is set to 0 "
        f"at every position, so it adds nothing to the residual stream.",
        f"**Top next token:** {md_code(labels(tb))} {pct(p_before[tb], zero=None)} before → "
        + (f"still {md_code(labels(ta))}, now {pct(p_after[ta], zero=None)}." if ta == tb else
           f"{md_code(labels(ta))} {pct(p_after[ta], zero=None)} after; {md_code(labels(tb))} now has "
           f"{pct(p_after[tb], zero=None)}.")
        + f" Change for {md_code(labels(tb))}: {change * 100:+.1f} percentage points.",
        f"**KL(before ‖ after):** {kl:.3f} bits (0 = the distribution did not change; temperature 1, no cuts).",
    ]
    return "\n\n".join(lines)


# ---- compare two prompts ---------------------------------------------------------------------------
def on_compare(ctx: Context, view: View, c: Controls, prompt_b: str, focus_b=None) -> tuple[View, dict]:
    """Run prompt B and compare it with the view's prompt A at the page's layer and head. A's focus
    token is compared with B's token chosen by viz.compare.match_position (or `focus_b`)."""
    ids_b = check_prompt(ctx, prompt_b)
    chosen = None if focus_b is None or focus_b == "" else whole_number(focus_b, "B's token position", 0, len(ids_b) - 1)
    tb = ctx.lm.trace(ids_b)
    ta = view.trace
    pos_b, why = compare_viz.match_position(ta, view.focus, tb) if chosen is None else (chosen, "chosen")
    cos = compare_viz.cosine_per_layer(ta, view.focus, tb, pos_b)
    la, lb = ta.pieces[view.focus].display, tb.pieces[pos_b].display
    summary = (f"Comparing A's token {md_code(la)} (#{view.focus}) with B's {md_code(lb)} (#{pos_b}): {why}. "
               f"Cosine similarity after the embedding {cos[0]:.2f}, after the last layer {cos[-1]:.2f}.")
    if compare_viz.same_prefix(ta, view.focus, tb, pos_b):
        summary += (" The prompts are identical up to this token, and attention only looks back, so its vector "
                    "is exactly the same in both: pick a later token (click a chip) to see the contexts differ.")
    return view, {
        "compare-attention": compare_viz.compare_attention_figure(ta, tb, c.layer, c.head,
                                                                  exclude_first=c.exclude_first),
        "compare-mlp": compare_viz.compare_mlp_figure(ta, tb, c.layer, exclude_first=c.exclude_first),
        "compare-prediction": compare_viz.compare_prediction_figure(ta, tb, ctx.labels),
        "compare-cosine": compare_viz.compare_cosine_figure(ta, view.focus, tb, pos_b, why),
        "compare-summary": summary,
        "notice": "",
    }


# ---- residual path -------------------------------------------------------------------------------
_POS_SPLIT = re.compile(r"[\s,;，；、]+")


def parse_positions(text, T: int) -> list[int]:
    """"1, 4, 7" / "2-5" / "last" / "#3" -> positions in 0..T-1 (duplicates dropped, order kept)."""
    if text is None:
        return []
    if not isinstance(text, str):
        raise ValueError("token positions must be text such as 1, 4 or 2-5")
    if len(text) > 1000:
        raise ValueError("the list of token positions is too long")
    example = f"write token positions like 1, 4, a range like 2-5, or last (this prompt has 0..{T - 1})"
    out: list[int] = []
    for item in _POS_SPLIT.split(text.replace("－", "-").strip()):
        if not item:
            continue
        s = item.lstrip("#")
        if s.lower() in ("last", "end"):
            out.append(T - 1)
            continue
        m = re.fullmatch(r"(\d{1,6})(?:-(\d{1,6}))?", s)
        if not m:
            raise ValueError(f"cannot read token position {item!r}: {example}")
        a = int(m[1])
        b = int(m[2]) if m[2] else a
        if a > b:
            raise ValueError(f"the range {item!r} runs backwards: {example}")
        bad = [p for p in (a, b) if p >= T]
        if bad:
            raise ValueError(f"token position {bad[0]} is past the end: {example}")
        out.extend(range(a, b + 1))
        if len(out) > 1000:
            break
    out = list(dict.fromkeys(out))
    if len(out) > path_viz.MAX_PATHS:
        raise ValueError(f"{len(out)} positions listed; at most {path_viz.MAX_PATHS} paths fit in one picture")
    return out


def on_residual_path(ctx: Context, view: View, c: Controls, positions_text: str,
                     include_first: bool = False, normalise: bool = False) -> tuple[View, dict]:
    """Draw the residual-stream path of the listed positions (empty: the focus token and the last
    token). Position 0 enters the PCA fit only when it is listed or include_first is ticked;
    `normalise` scales every vector to unit RMS first (direction only, as the final norm sees it)."""
    tr = view.trace
    positions = parse_positions(positions_text, tr.T) or list(dict.fromkeys([view.focus, tr.T - 1]))
    lens = ctx.lm.logit_lens(tr, positions, known=view.lens)
    fig = path_viz.residual_path_figure(tr, lens, positions, ctx.labels, include_first=True if include_first else None,
                                        normalise=bool(normalise))
    return view, {"residual-path": fig, "notice": ""}
