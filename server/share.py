"""Export and share: the session as a JSON file, and the page state as URL query parameters.

The URL carries prompt, chat, t (temperature), k (top-k), p (top-p), seed, layer, head, focus and
gen (the generated token ids, dot-separated: a sampled continuation cannot be re-tokenized back);
assets/page.js keeps the address bar in step with the page, and opening such a link replays it.
"""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np

from model.sampling import distribution, records
from viz.words import language, table

from . import handlers, recipe
from .controls import Controls
from .handlers import Context, notice_html
from .state import View

URL_KEYS = ("prompt", "chat", "t", "k", "p", "seed", "layer", "head", "focus", "gen")


SAY = table("server.share", {
    "ignored": ("Some link settings were not valid and were ignored: {problems}", "链接里有些设置无效，已被忽略：{problems}"),
})

def session_record(ctx: Context, view: View, c: Controls) -> dict:
    """Everything the panels showed, as plain JSON-ready data."""
    tr, lm = view.trace, ctx.lm
    dist = distribution(tr.logits[-1], c.sampling)
    pattern = tr.act("attn.hook_pattern", c.layer)[c.head].astype(np.float32)
    post = tr.act("mlp.hook_post", c.layer)[view.focus].astype(np.float32)
    top_neurons = np.argsort(-np.abs(post), kind="stable")[:15]
    focus_row = [int(i) for i in view.neighbours.query_ids].index(tr.token_ids[view.focus])
    lens = view.lens
    return {
        "glassgpt": 1,
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "model": {"name": lm.cfg.name, **lm.cfg.to_dict(), "device": tr.device, "dtype": tr.dtype},
        "prompt": tr.prompt,
        "settings": {"temperature": c.temperature, "top_k": c.top_k, "top_p": c.top_p, "seed": c.seed,
                     "layer": c.layer, "head": c.head, "focus": view.focus},
        "tokens": [{"position": i, "id": p.id, "text": p.text, "bytes_hex": p.raw.hex(), "control": p.is_special,
                    "partial_character": p.is_partial, "generated": i >= tr.n_prompt}
                   for i, p in enumerate(tr.pieces)],
        "next_token": [{"id": r.id, "token": lm.decode([r.id]), "logit": r.logit, "probability_before_cuts": r.prob_t,
                        "kept": r.kept, "probability": r.prob} for r in records(dist, 20)],
        "entropy_bits": dist.entropy_bits,
        "logit_lens": {"positions": list(lens.positions), "layers": list(lens.layer_labels),
                       "top_token": [[lm.decode([int(i)]) for i in row] for row in lens.top_ids[:, :, 0]],
                       "top_probability": np.round(lens.top_probs[:, :, 0], 6).tolist(),
                       "final_token_rank": lens.target_ranks.tolist()},
        "attention": {"layer": c.layer, "head": c.head, "kv_head": lm.cfg.kv_head_of(c.head),
                      "pattern": np.round(pattern, 5).tolist()},
        "mlp_top_neurons": {"layer": c.layer, "position": view.focus,
                            "neurons": [{"neuron": int(n), "activation": float(post[n])} for n in top_neurons]},
        "embedding_neighbours": {"position": view.focus,
                                 "neighbours": [{"id": int(i), "token": lm.decode([int(i)]), "cosine": float(s)}
                                                for i, s in zip(view.neighbours.neighbour_ids[focus_row],
                                                                view.neighbours.cosine[focus_row])]},
    }


def export_session(ctx: Context, view: View, c: Controls) -> tuple[View, dict]:
    folder = Path(tempfile.mkdtemp(prefix="glassgpt-"))
    path = folder / "glassgpt-session.json"
    path.write_text(json.dumps(session_record(ctx, view, c), ensure_ascii=False, indent=1), encoding="utf-8")
    return view, {"session-file": str(path), "notice": ""}


def settings_from_query(params: dict, n_layer: int, n_head: int) -> tuple[dict, list[str]]:
    """Query parameters -> (page settings, problems). Bad values are skipped, each named in a problem."""
    out, problems = {}, []
    casts = {"t": float, "k": int, "p": float, "seed": int, "layer": int, "head": int, "focus": int}
    for key, cast in casts.items():
        if key in params:
            try:
                out[key] = cast(params[key])
            except (TypeError, ValueError):
                problems.append(f"{key}={params[key]!r}")
    if "prompt" in params:
        out["prompt"] = str(params["prompt"])
    out["chat"] = str(params.get("chat", "")).lower() in ("1", "true", "yes")
    for key, hi in (("layer", n_layer - 1), ("head", n_head - 1)):
        if key in out and not 0 <= out[key] <= hi:
            problems.append(f"{key}={out.pop(key)}")
    return out, problems


def generated_ids(value, vocab_size: int, problems: list[str]) -> list[int]:
    """gen=12.345.6 -> [12, 345, 6]; anything unreadable is a problem and gives []."""
    if not value:
        return []
    parts = str(value).split(".")
    if len(parts) > 4096 or not all(p.isdigit() and len(p) <= 7 for p in parts) or \
            not all(int(p) < vocab_size for p in parts):
        problems.append(f"gen={str(value)[:40]!r}")
        return []
    return [int(p) for p in parts]


def on_open_link(ctx: Context, view: View, params: dict) -> tuple[View, dict, dict]:
    """Replay a shared link: run its prompt with its settings. -> (view, outputs, control values)."""
    cfg = ctx.lm.cfg
    settings, problems = settings_from_query(params, cfg.n_layer, cfg.n_head)
    link_ids = {"layer": "layer", "head": "head", "t": "temperature", "k": "top-k", "p": "top-p", "seed": "seed"}
    c = Controls.from_page(ctx.lm, {"language": language()}
                           | {elem_id: settings[key] for key, elem_id in link_ids.items() if key in settings})
    text = settings.get("prompt", ctx.default_prompt)
    generated = generated_ids(params.get("gen"), ctx.lm.cfg.vocab_size, problems)
    rebuilt = None
    if generated:
        ids = handlers.check_prompt(ctx, text, settings["chat"])
        if len(ids) + len(generated) <= min(ctx.limits.max_context, cfg.n_ctx):
            rebuilt = recipe.view_of(ctx, ids + generated, len(ids))
        else:
            problems.append(f"gen: {len(generated)} tokens do not fit the limit of {ctx.limits.max_context}")
    if rebuilt is not None:
        view, out = rebuilt, handlers.everything(ctx, rebuilt, c)
        out.update(dict.fromkeys(handlers.WHAT_IF_IDS))
    else:
        view, out = handlers.on_run(ctx, view, c, text, settings["chat"])
    if "focus" in settings:
        if 0 <= settings["focus"] < view.T:
            view, focus_out = handlers.on_focus(ctx, view, c, settings["focus"])
            out.update(focus_out)
        else:
            problems.append(f"focus={settings['focus']}")
    out.update(layer=c.layer, head=c.head)
    if problems:
        out["notice"] = notice_html(SAY("ignored", problems=", ".join(problems)), "info")
    values = {"prompt": text, "chat": settings["chat"], "t": c.temperature, "k": c.top_k, "p": c.top_p, "seed": c.seed}
    return view, out, values
