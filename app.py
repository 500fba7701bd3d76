"""GlassGPT: a real language model running live, with every step of its computation on screen.

    python app.py                     # the bundled SmolLM2-135M-Instruct on http://127.0.0.1:7860
    python app.py --help              # model path, device, host, port, limits

This file is wiring only: the layout first, then one line per event. The handlers are plain
functions in server/handlers.py, the panels pure functions in viz/.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# NumPy's BLAS only handles small matrices here (PCA of a few hundred vectors); with its own
# thread pool beside torch's, a busy machine made one 24 ms SVD take 2.7 s. Set before numpy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import gradio as gr  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402

from server import attribution, beyond, handlers, lab, lessons, recipe, render, share, strings  # noqa: E402
from server.components import figure_value, output_value, template_json  # noqa: E402
from server.controls import CONTROL_IDS, Controls  # noqa: E402
from server.handlers import Context, Limits, notice_html  # noqa: E402
from server.i18n import EXPLAINED_PANELS, explanation, heading, lang_code  # noqa: E402
from server.page import Sections  # noqa: E402
from server.state import View  # noqa: E402
from viz.attention import worked_example  # noqa: E402
from viz.words import speaking  # noqa: E402

log = logging.getLogger("glassgpt")
ASSETS = Path(__file__).resolve().parent / "assets"
# Element ids a handler may update, in the order Gradio receives them.
# The layer panels (attention, attention-heads, attention-detail, mlp, mlp-top) are drawn by the
# page from "layer-data" (server/layer_data.py).
OUTPUT_IDS = ["notice", "lesson-text", "tokens", "token-count", "big-picture", "residual-stream", "embeddings", "neighbours", "positions", "attention-all",
              "logit-lens", "logit-lens-focus", "layer-data", "distribution", "output", "kv-cache", "kv-summary",
              "session-file", "layer", "head", "recipe", *handlers.WHAT_IF_IDS, *handlers.LAB_IDS]
# What a shared link sets: element id -> its key in the link (server/share.py).
URL_CONTROLS = {"prompt": "prompt", "chat": "chat", "temperature": "t", "top-k": "k", "top-p": "p", "seed": "seed"}


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="GlassGPT: see a transformer think, live.")
    ap.add_argument("--model", help="a local Llama-family GGUF file, or a local Hugging Face GPT-2 directory, "
                    "to run instead of the bundled SmolLM2-135M-Instruct")
    ap.add_argument("--device", default="auto", help="auto (CUDA when present, else CPU), cpu, or cuda")
    ap.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                    help="address to bind (default 127.0.0.1, or $GRADIO_SERVER_NAME); other addresses expose the app")
    ap.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
                    help="port (default 7860, or $GRADIO_SERVER_PORT)")
    ap.add_argument("--max-prompt-tokens", type=int, default=512, help="longest prompt accepted (tokens)")
    ap.add_argument("--max-new-tokens", type=int, default=64, help="most tokens one Generate request may add")
    ap.add_argument("--max-context", type=int, default=1024, help="most tokens one session may hold (prompt + generated)")
    ap.add_argument("--concurrency", type=int, default=1, help="requests that run the model at the same time")
    ap.add_argument("--queue-size", type=int, default=64, help="requests that may wait; more are told the app is busy")
    ap.add_argument("--max-sessions", type=int, default=200,
                    help="page sessions held at once (each holds its prompt's trace); the least recently used go first")
    ap.add_argument("--session-idle-minutes", type=float, default=60,
                    help="a page session is forgotten after this long without an event")
    ap.add_argument("--memory-budget-gb", type=float, default=None,
                    help="memory this process may use; --max-sessions is lowered until that many sessions at "
                         "--max-context fit beside the model (default: no budget, the need is printed)")
    ap.add_argument("--threads", type=int, default=None,
                    help="CPU threads for the model (default: all cores; a replica among N takes its share)")
    ap.add_argument("--replica-name", default=None,
                    help="this process's name in the X-GlassGPT-Replica header of every response "
                         "(default: $GLASSGPT_REPLICA, else the host name)")
    ap.add_argument("--auth", default=os.environ.get("GLASSGPT_AUTH"),
                    help="USER:PASSWORD to require a login (for a shared deployment; or $GLASSGPT_AUTH)")
    return ap.parse_args(argv)


def parse_auth(value: str | None) -> tuple[str, str] | None:
    if not value:
        return None
    user, sep, password = value.partition(":")
    if not (user and sep and password):
        raise SystemExit("--auth must look like USER:PASSWORD")
    return user, password


def respond(ctx: Context, view, result_or_error) -> list:
    """(view, {id: value}) or an exception -> Gradio's output list (state first)."""
    if isinstance(result_or_error, BaseException):
        e = result_or_error
        if isinstance(e, ValueError):
            out = {"notice": notice_html(str(e)), **getattr(e, "outputs", {})}
        else:
            log.exception("handler failed", exc_info=e)
            out = {"notice": notice_html(handlers.SAY("failed", kind=type(e).__name__))}
        return [view] + [output_value(i, out[i]) if i in out else gr.skip() for i in OUTPUT_IDS]
    new_view, out = result_or_error
    return [new_view] + [output_value(i, out[i]) if i in out else gr.skip() for i in OUTPUT_IDS]


RECIPE_AT = 1 + OUTPUT_IDS.index("recipe")     # its place in an output list (the state is first)


def with_recipe(out: list, old_view) -> list:
    """A new view also goes to the page as its recipe (server/recipe.py), so that any replica can
    rebuild it; an unchanged view sends nothing more."""
    new = out[0]
    if isinstance(new, View) and new is not old_view:
        out = list(out)
        out[RECIPE_AT] = recipe.recipe_of(new)
    return out


def merge_lost(rebuilt: list, answer: list) -> list:
    """A rebuilt session's panels, overlaid with the event's own answer; the rebuilt notice stays
    unless the answer has a message of its own."""
    skipped = lambda value: value == gr.skip()     # noqa: E731 - Gradio's "leave as it is"
    merged = [r if skipped(a) else a for r, a in zip(rebuilt, answer)]
    notice = 1 + OUTPUT_IDS.index("notice")
    if not answer[notice] or skipped(answer[notice]):
        merged[notice] = rebuilt[notice]
    return merged


def components_by_id(demo: gr.Blocks) -> dict:
    return {b.elem_id: b for b in demo.blocks.values() if getattr(b, "elem_id", None)}


class Binder:
    """One way to wire an event: the session's view, the controls (by element id) and the
    handler's own inputs in; every output element out. A ValueError becomes a message in #notice,
    and a view of None (the server dropped the session) redraws the starting view."""

    def __init__(self, ctx: Context, state: gr.State, comps: dict):
        self.ctx, self.state, self.comps = ctx, state, comps
        self.controls = [comps[i] for i in CONTROL_IDS]
        self.outputs = [state] + [comps[i] for i in OUTPUT_IDS]

    def _args(self, data: dict, extra_ids, evt, data_of):
        by_id = {c.elem_id: v for c, v in data.items() if c is not self.state}
        c = Controls.from_page(self.ctx.lm, by_id)
        extra = [by_id[i] for i in extra_ids]
        if data_of is not None:
            extra += list(data_of(getattr(evt, "_data", None) or {}))
        return c, extra

    def _recover(self, data: dict, c: Controls) -> tuple:
        """The session has no view: another replica held it, it was pushed out, or the page's load
        has not been stored yet. Rebuild it from the recipe the page sent.
        -> (view, its panels with a notice), or (None, None). The starting view's recipe gives the
        starting view and {}: a new page's event that ran before its load was stored; the session
        is not written then (the load, e.g. a link being replayed, stores its own view)."""
        recipe_text = next((v for comp, v in data.items() if getattr(comp, "elem_id", None) == "recipe"), None)
        if recipe_text == self.ctx.initial_recipe:
            return self.ctx.initial, {}
        view = recipe.rebuild(self.ctx, recipe_text)
        return (None, None) if view is None else (view, handlers.on_session_rebuilt(self.ctx, view, c))

    def __call__(self, trigger, handler, extra_ids=(), stream=False, data_of=None, needs_view=True, **kw):
        ctx, state = self.ctx, self.state

        def language_of(data) -> str:
            return lang_code(next((v for comp, v in data.items() if getattr(comp, "elem_id", None) == "language"), None))

        def call(data, evt: gr.EventData):
            view = data[state]
            with speaking(language_of(data)):          # figures, notices and refusals in the page's language
                try:
                    c, extra = self._args(data, extra_ids, evt, data_of)
                    lost = {}
                    if view is None and needs_view:
                        view, lost = self._recover(data, c)
                        if view is None:
                            return with_recipe(respond(ctx, None, handlers.on_session_lost(ctx, c)), None)
                    out = respond(ctx, view, handler(ctx, view, c, *extra))
                    if lost:                           # rebuilt: its panels, then the event's own answer,
                        out = merge_lost(respond(ctx, view, (view, lost)), out)     # and the session stores it
                        return with_recipe([out[0] if isinstance(out[0], View) else view] + out[1:], None)
                    # A handler that kept the view leaves the session alone: an event that ran beside
                    # another (e.g. a prefetch beside a chip click) must not write back an older view.
                    return with_recipe([gr.skip() if out[0] is view else out[0]] + out[1:], view)
                except Exception as e:  # noqa: BLE001 - every failure becomes a message in #notice
                    return respond(ctx, view, e)

        def call_stream(data, evt: gr.EventData):
            # The language is set around each step, never across a yield: Gradio may run the steps
            # of one stream in different threads (each with its own context).
            view, lang = data[state], language_of(data)
            try:
                with speaking(lang):
                    c, extra = self._args(data, extra_ids, evt, data_of)
                    if view is None and needs_view:
                        view, lost = self._recover(data, c)
                        if view is None:
                            out, steps = with_recipe(respond(ctx, None, handlers.on_session_lost(ctx, c)), None), iter(())
                        else:
                            out = with_recipe(respond(ctx, view, (view, lost)), None) if lost else None
                            steps = handler(ctx, view, c, *extra)
                    else:
                        out, steps = None, handler(ctx, view, c, *extra)
                if out is not None:
                    yield out
                while True:
                    with speaking(lang):
                        result = next(steps, None)
                        if result is None:
                            return
                        out = with_recipe(respond(ctx, view, result), view)
                        view = result[0]
                    yield out
            except Exception as e:  # noqa: BLE001
                with speaking(lang):
                    out = respond(ctx, view, e)
                yield out

        inputs = {state, self.comps["recipe"], *self.controls, *(self.comps[i] for i in extra_ids)}
        # Progress shows on the token chips only: a status overlay on all ~30 outputs costs the
        # page a restyle of each of them at the start and the end of every event.
        kw.setdefault("show_progress_on", [self.comps["tokens"]])
        return trigger(call_stream if stream else call, inputs, self.outputs, api_visibility="private", **kw)


def build(ctx: Context) -> gr.Blocks:
    """The page: layout first (server/page.py), then the wiring, one line per event."""
    init = handlers.everything(ctx, handlers.initial_view(ctx), Controls())
    with gr.Blocks(title="GlassGPT", fill_width=True) as demo:
        state = gr.State(None, time_to_live=ctx.limits.session_idle_minutes * 60)
        sections = Sections(ctx, init)
        sections.all()
        comps = components_by_id(demo)
        bind = Binder(ctx, state, comps)
        on = lambda elem_id, event: getattr(comps[elem_id], event)   # noqa: E731

        for trigger in (on("run", "click"), on("prompt", "submit")):
            bind(trigger, handlers.run_in_steps, ["prompt", "chat"], stream=True, needs_view=False, show_progress="minimal")
        # Layer, head, temperature, top-k, top-p and seed have no server event: the page draws them
        # from data it holds (assets/layers.js, assets/sampling.js). Events that only re-read the
        # trace skip the queue; everything that runs the model stays queued and limited.
        cheap = dict(queue=False, trigger_mode="always_last", show_progress="hidden")
        bind(on("layer-data", "need_layer"), handlers.on_need_layer, data_of=lambda d: (d.get("layer"), d.get("head"), d.get("layers")), **cheap)
        for box in ("exclude-first", "log-scale", "mlp-all"):
            bind(on(box, "input"), handlers.on_layer, **cheap)
        bind(on("heads-metric", "input"), handlers.on_heads_metric, **cheap)
        bind(on("embed-3d", "input"), handlers.on_embed_dims, **cheap)
        bind(on("language", "change"), handlers.on_language, **cheap)
        for trigger in (on("lens-show", "click"), on("lens-positions", "submit")):
            bind(trigger, handlers.on_lens_positions, ["lens-positions"], show_progress="minimal")
        bind(on("next-token", "click"), handlers.on_next_token, show_progress="minimal")
        bind(on("generate", "click"), handlers.on_generate, ["n-tokens"], stream=True, show_progress="minimal")
        bind(on("export", "click"), share.export_session)
        bind(on("ablate", "click"), beyond.on_ablate, ["ablate-heads", "ablate-neurons"], show_progress="minimal")
        bind(on("compare", "click"), beyond.on_compare, ["prompt-b"], show_progress="minimal")
        bind(on("prompt-b", "submit"), beyond.on_compare, ["prompt-b"], show_progress="minimal")
        for trigger in (on("lab-analogy-run", "click"), *(on(i, "submit") for i in ("lab-a", "lab-b", "lab-c"))):
            bind(trigger, lab.on_analogy, ["lab-a", "lab-b", "lab-c", "lab-k"], needs_view=False, show_progress="minimal")
        for trigger in (on("lab-direction-run", "click"), *(on(i, "submit") for i in ("dir-a", "dir-b", "dir-words"))):
            bind(trigger, lab.on_direction, ["dir-a", "dir-b", "dir-words"], needs_view=False, show_progress="minimal")
        bind(on("dla-run", "click"), attribution.on_attribute, ["dla-target", "dla-foil"], show_progress="minimal")
        bind(on("routes-run", "click"), attribution.on_routes, ["routes-threshold"], show_progress="minimal")
        patch = bind(on("patch-run", "click"), attribution.on_patch,
                     ["patch-clean", "patch-corrupted", "patch-answer", "patch-foil"], stream=True, needs_view=False,
                     show_progress="minimal")
        on("patch-cancel", "click")(None, None, None, cancels=[patch], api_visibility="private")
        bind(on("temps-run", "click"), lab.on_temperatures, show_progress="minimal")
        bind(on("roles-repeated", "click"), lab.on_roles_repeated, needs_view=False, show_progress="minimal")
        bind(on("roles-prompt", "click"), lab.on_roles_prompt, show_progress="minimal")
        bind(on("draw-path", "click"), beyond.on_residual_path, ["path-positions", "path-include-first", "path-direction"],
             show_progress="minimal")
        # Chip clicks and head picks arrive as custom events whose data Gradio hands over as EventData.
        bind(on("tokens", "select_token"), handlers.on_focus, data_of=lambda d: (d.get("pos"),),
             trigger_mode="always_last", show_progress="hidden")

        # Opening a shared link replays its prompt and settings; the page load also stores the
        # starting view in the session, so a view of None later means the session was dropped.
        url_controls = [comps[i] for i in URL_CONTROLS]

        def open_link(view, request: gr.Request):
            params = dict(request.query_params) if request is not None else {}
            view = view or handlers.initial_view(ctx)
            # lang=zh (the link, or put there by assets/page.js from the browser's choice) switches the
            # language as part of the load: a switch sent while the load is pending could be lost.
            language = ["中文" if params.get("lang") == "zh" else gr.skip()]
            if not any(k in params for k in share.URL_KEYS):
                return [view] + [gr.skip()] * (len(bind.outputs) - 1 + len(url_controls)) + language
            with speaking("zh" if params.get("lang") == "zh" else "en"):
                try:
                    view, out, page_values = share.on_open_link(ctx, view, params)
                except Exception as e:  # noqa: BLE001 - a bad link must not break the page
                    return respond(ctx, view, e) + [gr.skip()] * len(url_controls) + language
                return respond(ctx, view, (view, out)) + [page_values[key] for key in URL_CONTROLS.values()] + language
        demo.load(open_link, [state], bind.outputs + url_controls + [comps["language"]], api_visibility="private")

        panels = list(EXPLAINED_PANELS)
        labelled = [i for i in strings.ids() if i in comps]         # controls whose text follows the language

        def switch_language(language):
            """The page's own texts; the figures follow in handlers.on_language (bound above)."""
            lang = lang_code(language)
            with speaking(lang):
                static_figures = [figure_value(f) for f in render.static_figures(ctx.lm)]
                lesson_menu = gr.update(choices=lessons.choices())
            return ([heading(p, lang) for p in panels] + [explanation(p, lang) for p in panels]
                    + [worked_example(lang), strings.header(ctx.lm.cfg, ctx.lm.device, lang)] + static_figures
                    + strings.updates(lang, set(labelled)) + [lesson_menu])
        comps["language"].change(
            switch_language, comps["language"],
            [sections.headings[p] for p in panels] + [sections.explanations[p] for p in panels] + [sections.worked]
            + [comps["header-text"]] + [comps[i] for i in render.STATIC_FIGURE_IDS] + [comps[i] for i in labelled]
            + [comps["lesson"]],
            api_visibility="private", queue=False)

        # A lesson is a link with words: it sets the prompt and settings as a shared link does.
        def start_lesson(view, key, language):
            with speaking(lang_code(language)):
                try:
                    view, out, page_values = lessons.on_lesson(ctx, view, key)
                except Exception as e:  # noqa: BLE001 - a failure is a message, the page keeps working
                    return respond(ctx, view, e) + [gr.skip()] * len(url_controls)
                return respond(ctx, view, (view, out)) + [page_values[key] for key in URL_CONTROLS.values()]
        comps["lesson-start"].click(start_lesson, [state, comps["lesson"], comps["language"]], bind.outputs + url_controls,
                                    api_visibility="private", show_progress_on=[comps["tokens"]])

        # The named API for scripts (gradio_client).
        from server.api import make_api
        for name, fn in make_api(ctx).items():
            gr.api(fn, api_name=name)
    return demo


def page_css() -> str:
    return "\n".join((ASSETS / name).read_text(encoding="utf-8") for name in ("app.css", "chips.css")
                     if (ASSETS / name).exists())


PLOTLY_JS = Path(__import__("plotly").__file__).parent / "package_data" / "plotly.min.js"
PAGE_SCRIPTS = ("plots.js", "layers.js", "sampling.js", "page.js")


def page_head() -> str:
    """Plotly from the installed package (nothing is fetched from elsewhere), its template once,
    then the page's own scripts."""
    scripts = "\n".join((ASSETS / name).read_text(encoding="utf-8") for name in PAGE_SCRIPTS)
    return (f'<script src="gradio_api/file={PLOTLY_JS}"></script>\n'
            f"<script>window.GG = window.GG || {{}}; GG.template = {template_json()};</script>\n"
            f"<script>{scripts}</script>")


def warm_up(lm) -> None:
    """One throwaway pass and step: the first ones pay one-time set-up costs, which would otherwise
    show up as the page's measured prefill and decode times."""
    tr = lm.trace("Warming up the model")
    lm.step(tr, tr.token_ids[-1])


def load(args) -> Context:
    from model import ModelFileError, load_model

    print(f"GlassGPT: loading {'the bundled SmolLM2-135M-Instruct' if not args.model else args.model} "
          f"(the first start reads and dequantizes the GGUF file, ~10 s; later starts use a cache)...", flush=True)
    if args.threads is not None:
        if args.threads < 1:
            raise SystemExit("GlassGPT cannot start: --threads must be at least 1")
        import torch
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    try:
        lm = load_model(args.model, device=args.device)
    except (ModelFileError, ValueError) as e:
        hint = ("\nTo run the bundled model instead, start without --model:  python app.py  (or: make run)\n"
                "--model takes a Llama-family GGUF file or a Hugging Face GPT-2 directory.") if args.model else ""
        print(f"\nGlassGPT cannot start: {e}{hint}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"  model loaded in {time.perf_counter() - t0:.1f} s on {lm.device}", flush=True)
    try:
        limits = Limits(args.max_prompt_tokens, args.max_new_tokens, args.max_context,
                        max_sessions=args.max_sessions, session_idle_minutes=args.session_idle_minutes)
    except ValueError as e:
        raise SystemExit(f"GlassGPT cannot start: {e}") from None
    print("  computing the first view...", flush=True)
    warm_up(lm)
    from server.replica import replica_name
    ctx = Context(lm, limits, replica=replica_name(args.replica_name))
    return fit_memory(ctx, args)


def fit_memory(ctx: Context, args) -> Context:
    """Lower --max-sessions until that many sessions at the longest context fit the memory budget."""
    import dataclasses

    import psutil

    from server.replica import TraceSize, plan_memory
    budget = None if args.memory_budget_gb is None else int(args.memory_budget_gb * 1e9)
    try:
        plan = plan_memory(psutil.Process().memory_info().rss, TraceSize.measure(ctx.lm), ctx.limits.max_context,
                           ctx.limits.max_sessions, budget, concurrency=args.concurrency)
    except ValueError as e:
        raise SystemExit(f"GlassGPT cannot start: {e}") from None
    print("  " + plan.describe(ctx.limits.max_context), flush=True)
    ctx.limits = dataclasses.replace(ctx.limits, max_sessions=plan.max_sessions)
    return ctx


def main(argv=None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    args = parse_args(argv)
    ctx = load(args)
    demo = build(ctx)
    demo.queue(max_size=args.queue_size, default_concurrency_limit=args.concurrency)
    print(f"  serving on http://{args.host}:{args.port} as replica {ctx.replica}", flush=True)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"  WARNING: bound to {args.host}: anyone who can reach this address can use the app"
              f"{'' if args.auth else ' (consider --auth USER:PASSWORD)'}", flush=True)
    demo.launch(server_name=args.host, server_port=args.port, auth=parse_auth(args.auth), **launch_options(demo, ctx))


def launch_options(demo: gr.Blocks, ctx: Context) -> dict:
    """Everything launch() gets besides the address and login; the tests launch with the same."""
    from server.guard import ApiGuard
    from server.replica import ReplicaMiddleware
    from server.sessions import lifespan_forgetting_stateless_sessions

    # The guard checks requests against the endpoints the page really registered (gr.api above).
    api = {f.api_name: f.fn for f in demo.fns.values() if f.api_visibility == "public" and f.api_name}
    gr.set_static_paths([PLOTLY_JS])     # the one file the page loads from outside the app's own routes
    return dict(share=False, css=page_css(), head=page_head(), theme=gr.themes.Soft(), footer_links=["api"],
                show_error=False,
                max_file_size="1mb",     # the page uploads nothing; Gradio's upload route stays open regardless
                state_session_capacity=ctx.limits.max_sessions,
                app_kwargs={"middleware": [Middleware(ReplicaMiddleware, name=ctx.replica),
                                           Middleware(ApiGuard, endpoints=api)],
                            "lifespan": lifespan_forgetting_stateless_sessions(demo)})


if __name__ == "__main__":
    main()
