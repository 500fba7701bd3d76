"""GlassGPT: a real language model running live, with every step of its computation on screen.

    python app.py                     # the bundled SmolLM2-135M-Instruct on http://127.0.0.1:7860
    python app.py --help              # model path, device, host, port, limits

This file is wiring only: the layout first, then one line per event. The handlers are plain
functions in server/handlers.py, the panels pure functions in viz/.
"""
from __future__ import annotations

import argparse
import html
import logging
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402

from server import beyond, handlers, share  # noqa: E402
from server.handlers import Context, Controls, Limits, notice_html  # noqa: E402
from viz.attention import gqa_figure, worked_example  # noqa: E402
from server.i18n import EXPLAINED_PANELS, LANGUAGES, explanation, heading, lang_code  # noqa: E402

log = logging.getLogger("glassgpt")
ASSETS = Path(__file__).resolve().parent / "assets"
EXAMPLES = [
    "The capital of France is",
    "The cat sat on the mat because the cat",
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return",
    "1, 1, 2, 3, 5, 8, 13,",
    "我爱北京天安门，天安门上",
    "When Mary and John went to the store, John gave a drink to",
]
# Element ids a handler may update, in the order Gradio receives them.
OUTPUT_IDS = ["notice", "tokens", "token-count", "embeddings", "neighbours", "positions", "attention", "attention-heads",
              "attention-all", "attention-detail", "mlp", "mlp-top", "logit-lens", "logit-lens-focus",
              "distribution", "pick", "output", "kv-cache", "kv-summary", "session-file", "layer", "head",
              *handlers.WHAT_IF_IDS]
# A click on a head overview (assets/page.js) calls window.ggPickHead(layer, head).
HEAD_PICK_JS = "window.ggPickHead = (layer, head) => trigger('pick_head', {layer: layer, head: head});"
CHIP_CLICK_JS = ("element.addEventListener('click', (e) => { const chip = e.target.closest('button.gg-chip[data-pos]');"
                 " if (chip) trigger('select_token', {pos: Number(chip.dataset.pos)}); });")


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


def controls_from(ctx: Context, raw) -> Controls:
    return Controls.from_page(ctx.lm, *raw)


def respond(ctx: Context, view, result_or_error) -> list:
    """(view, {id: value}) or an exception -> Gradio's output list (state first)."""
    if isinstance(result_or_error, BaseException):
        e = result_or_error
        if isinstance(e, ValueError):
            out = {"notice": notice_html(str(e))}
        else:
            log.exception("handler failed", exc_info=e)
            out = {"notice": notice_html(f"Something went wrong inside the app ({type(e).__name__}); "
                                         f"nothing was changed and the page still works. Please try again.")}
        return [view] + [out.get(i, gr.skip()) for i in OUTPUT_IDS]
    new_view, out = result_or_error
    return [new_view] + [out.get(i, gr.skip()) for i in OUTPUT_IDS]


def build(ctx: Context) -> gr.Blocks:
    """The page: layout first, then the wiring."""
    first = handlers.initial_view(ctx)
    c0 = Controls()
    init = handlers.everything(ctx, first, c0)
    cfg = ctx.lm.cfg
    lang0 = "en"
    explain, heads_md = {}, {}

    def section(panel: str):
        heads_md[panel] = gr.Markdown(heading(panel, lang0), elem_classes=["gg-heading"])

    def explainer(panel: str):
        explain[panel] = gr.Markdown(explanation(panel, lang0), elem_classes=["gg-explain"])

    with gr.Blocks(title="GlassGPT", fill_width=True) as demo:
        state = gr.State(None, time_to_live=ctx.limits.session_idle_minutes * 60)
        with gr.Row(elem_classes=["gg-header"]):
            gr.Markdown(f"## GlassGPT · see a transformer think\n"
                        f"**{html.escape(cfg.name)}** running live on **{ctx.lm.device}**: "
                        f"{cfg.n_layer} layers, {cfg.n_head} query heads sharing {cfg.n_kv_head} key/value heads, "
                        f"width {cfg.d_model}. Every number on this page comes from the model.")
            language = gr.Radio(list(LANGUAGES), value="English", label="Language / 语言", elem_id="language", scale=0)
        notice = gr.HTML("", elem_id="notice")

        # 1. Prompt and tokens
        section("tokens")
        with gr.Row():
            with gr.Column(scale=3):
                prompt = gr.Textbox(value=ctx.default_prompt, label="Prompt", lines=2, max_lines=8, elem_id="prompt",
                                    placeholder="Type a prompt, then press Run")
                gr.Examples(EXAMPLES, inputs=[prompt], label="Examples")
            with gr.Column(scale=1, min_width=200):
                run = gr.Button("Run", variant="primary", elem_id="run")
                chat = gr.Checkbox(False, label="Chat mode (wrap in the chat template)", elem_id="chat",
                                   interactive=ctx.lm.tokenizer.has_chat)
                token_count = gr.Markdown(init["token-count"], elem_id="token-count")
        tokens = gr.HTML(init["tokens"], elem_id="tokens", js_on_load=CHIP_CLICK_JS)
        explainer("tokens")

        # 2. Embeddings
        section("embeddings")
        with gr.Row():
            with gr.Column(scale=3):
                embeddings = gr.Plot(init["embeddings"], elem_id="embeddings", show_label=False)
                embed_3d = gr.Checkbox(False, label="3-D projection", elem_id="embed-3d")
            with gr.Column(scale=2):
                neighbours = gr.HTML(init["neighbours"], elem_id="neighbours")
                gr.Markdown(ctx.static["position-note"], elem_id="position-note")
                explainer("embeddings")
        # Learned position vectors exist only in the GPT-2 family; RoPE models rotate q and k instead.
        position_plot = gr.Plot(init.get("positions"), elem_id="positions", show_label=False, visible=not cfg.uses_rope)

        # 3. The layer stepper every layer-dependent panel follows (sticky while scrolling)
        section("layers")
        with gr.Row(elem_id="stepper", elem_classes=["gg-stepper"]):
            layer_prev = gr.Button("◀ layer", elem_id="layer-prev", scale=0, min_width=90)
            layer = gr.Slider(0, cfg.n_layer - 1, value=0, step=1, label="Layer (← → keys)", elem_id="layer", scale=3)
            layer_next = gr.Button("layer ▶", elem_id="layer-next", scale=0, min_width=90)
            head = gr.Slider(0, cfg.n_head - 1, value=0, step=1, label="Query head", elem_id="head", scale=2)
        explainer("layers")

        # 4. Attention
        section("attention")
        with gr.Row():
            worked = gr.HTML(worked_example(lang0), elem_id="worked-example")
            gr.Plot(gqa_figure(cfg), elem_id="gqa", show_label=False)
        with gr.Row():
            exclude_first = gr.Checkbox(False, label="Hide the attention sink (key position 0)", elem_id="exclude-first")
            log_scale = gr.Checkbox(False, label="Log colour scale", elem_id="log-scale")
            heads_metric = gr.Dropdown([("attention to first token (sink)", "sink"), ("to previous token", "previous"),
                                        ("to itself", "self"), ("entropy", "entropy")], value="sink",
                                       label="All-heads overview colours", elem_id="heads-metric")
        with gr.Row():
            attention = gr.Plot(init["attention"], elem_id="attention", show_label=False)
            attention_heads = gr.Plot(init["attention-heads"], elem_id="attention-heads", show_label=False)
        with gr.Row():
            attention_detail = gr.Plot(init["attention-detail"], elem_id="attention-detail", show_label=False)
            attention_all = gr.Plot(init["attention-all"], elem_id="attention-all", show_label=False)
        head_pick = gr.HTML("", elem_id="head-pick", elem_classes=["gg-hidden"], js_on_load=HEAD_PICK_JS)
        explainer("attention")

        # 5. MLP
        section("mlp")
        mlp_all = gr.Checkbox(False, label="Show all neurons (not only the most active)", elem_id="mlp-all")
        with gr.Row():
            mlp = gr.Plot(init["mlp"], elem_id="mlp", show_label=False)
            mlp_top = gr.Plot(init["mlp-top"], elem_id="mlp-top", show_label=False)
        gr.HTML(ctx.static["mlp-flow"], elem_id="mlp-flow")
        explainer("mlp")

        # 6. Logit lens
        section("logit_lens")
        with gr.Row():
            lens = gr.Plot(init["logit-lens"], elem_id="logit-lens", show_label=False)
            lens_focus = gr.Plot(init["logit-lens-focus"], elem_id="logit-lens-focus", show_label=False)
        explainer("logit_lens")

        # 7. Next token and generation
        section("distribution")
        with gr.Row():
            with gr.Column(scale=3):
                dist = gr.Plot(init["distribution"], elem_id="distribution", show_label=False)
            with gr.Column(scale=2):
                temperature = gr.Slider(0, 2, value=1.0, step=0.05, label="Temperature (0 = greedy)", elem_id="temperature")
                top_k = gr.Slider(0, 200, value=0, step=1, label="Top-k (0 = off)", elem_id="top-k")
                top_p = gr.Slider(0.01, 1, value=1.0, step=0.01, label="Top-p (1 = off)", elem_id="top-p")
                seed = gr.Number(0, precision=0, minimum=0, label="Seed", elem_id="seed")
                pick = gr.Markdown(init["pick"], elem_id="pick")
                with gr.Row():
                    next_token = gr.Button("Next token", variant="primary", elem_id="next-token")
                    n_tokens = gr.Slider(1, ctx.limits.max_new_tokens, value=min(10, ctx.limits.max_new_tokens), step=1,
                                         label="N", elem_id="n-tokens")
                    generate = gr.Button("Generate N", elem_id="generate")
                output = gr.Textbox(init["output"], label="Text so far (prompt + generated)", lines=4,
                                    interactive=False, elem_id="output")
        explainer("distribution")
        section("kv_cache")
        with gr.Row():
            kv_plot = gr.Plot(init["kv-cache"], elem_id="kv-cache", show_label=False, scale=3)
            kv_summary = gr.HTML(init["kv-summary"], elem_id="kv-summary", scale=2)
        explainer("kv_cache")

        # Export and share
        with gr.Row(elem_classes=["gg-export"]):
            export = gr.Button("Download this session (JSON)", elem_id="export", scale=0, min_width=260)
            session_file = gr.File(label="Session file", elem_id="session-file", interactive=False, scale=1, height=90)
            gr.Markdown("Every figure has a camera button (top right) that saves it as PNG. The address bar "
                        "always holds this view (prompt, settings, layer, head, focus token): copy it to share.",
                        elem_id="share-note")

        # 8. Model card
        section("model_card")
        with gr.Row():
            gr.HTML(ctx.static["model-card"], elem_id="model-card")
            gr.Plot(ctx.static["params-figure"], elem_id="params-figure", show_label=False)
        explainer("model_card")

        # 9. Ablation
        section("ablation")
        with gr.Row():
            ablate_heads = gr.Textbox(label="Heads to switch off (layer.head, e.g. 3.4, 10.0 or 24.*)", elem_id="ablate-heads")
            ablate_neurons = gr.Textbox(label="MLP neurons to switch off (layer:neuron, e.g. 5:1297)", elem_id="ablate-neurons")
            ablate = gr.Button("Switch off and compare", elem_id="ablate", scale=0, min_width=200)
        ablation_summary = gr.Markdown("", elem_id="ablation-summary")
        with gr.Row():
            ablation_plot = gr.Plot(None, elem_id="ablation", show_label=False)
            ablation_lens = gr.Plot(None, elem_id="ablation-lens", show_label=False)
        explainer("ablation")

        # 10. Compare two prompts
        section("compare")
        with gr.Row():
            prompt_b = gr.Textbox("The bank raised rates", label="Second prompt (B), compared with the current one (A)",
                                  elem_id="prompt-b")
            compare = gr.Button("Compare", elem_id="compare", scale=0, min_width=160)
        compare_summary = gr.Markdown("", elem_id="compare-summary")
        with gr.Row():
            compare_attention = gr.Plot(None, elem_id="compare-attention", show_label=False)
            compare_cosine = gr.Plot(None, elem_id="compare-cosine", show_label=False)
        with gr.Row():
            compare_mlp = gr.Plot(None, elem_id="compare-mlp", show_label=False)
            compare_prediction = gr.Plot(None, elem_id="compare-prediction", show_label=False)
        explainer("compare")

        # 11. Residual path
        section("residual_path")
        with gr.Row():
            path_positions = gr.Textbox("", label="Token positions (e.g. 1, 3-4, last; empty: focus and last)",
                                        elem_id="path-positions")
            path_first = gr.Checkbox(False, label="Include position 0 (the attention sink)", elem_id="path-include-first")
            path_direction = gr.Checkbox(True, label="Direction only (unit length)", elem_id="path-direction")
            draw_path = gr.Button("Draw paths", elem_id="draw-path", scale=0, min_width=160)
        residual_path = gr.Plot(None, elem_id="residual-path", show_label=False)
        explainer("residual_path")

        # ---- wiring -------------------------------------------------------------------------------
        comps = {"notice": notice, "tokens": tokens, "token-count": token_count, "embeddings": embeddings,
                 "neighbours": neighbours, "positions": position_plot, "attention": attention, "attention-heads": attention_heads,
                 "attention-all": attention_all, "attention-detail": attention_detail, "mlp": mlp, "mlp-top": mlp_top,
                 "logit-lens": lens, "logit-lens-focus": lens_focus, "distribution": dist, "pick": pick,
                 "output": output, "kv-cache": kv_plot, "kv-summary": kv_summary, "session-file": session_file,
                 "layer": layer, "head": head, "ablation": ablation_plot, "ablation-lens": ablation_lens,
                 "ablation-summary": ablation_summary, "compare-attention": compare_attention, "compare-mlp": compare_mlp,
                 "compare-prediction": compare_prediction, "compare-cosine": compare_cosine,
                 "compare-summary": compare_summary, "residual-path": residual_path}
        outputs = [state] + [comps[i] for i in OUTPUT_IDS]
        controls = [layer, head, exclude_first, log_scale, mlp_all, heads_metric, embed_3d, temperature, top_k, top_p, seed]
        n_controls = len(controls)

        # The page load stores the starting view in the session (open_link below), so a view of None
        # later means the session's state is gone; only Run does not need one.
        def bind(trigger, handler, *extra, **kw):
            def fn(view, *args):
                try:
                    c = controls_from(ctx, args[:n_controls])
                    if view is None and handler is not handlers.on_run:
                        return respond(ctx, None, handlers.on_session_lost(ctx, c))
                    return respond(ctx, view, handler(ctx, view, c, *args[n_controls:]))
                except Exception as e:  # noqa: BLE001 - every failure becomes a message in #notice
                    return respond(ctx, view, e)
            return trigger(fn, [state, *controls, *extra], outputs, api_visibility="private", **kw)

        def bind_stream(trigger, handler, *extra, **kw):
            def fn(view, *args):
                try:
                    c = controls_from(ctx, args[:n_controls])
                    if view is None:
                        yield respond(ctx, None, handlers.on_session_lost(ctx, c))
                        return
                    for result in handler(ctx, view, c, *args[n_controls:]):
                        view = result[0]
                        yield respond(ctx, view, result)
                except Exception as e:  # noqa: BLE001
                    yield respond(ctx, view, e)
            return trigger(fn, [state, *controls, *extra], outputs, api_visibility="private", **kw)

        bind(run.click, handlers.on_run, prompt, chat, show_progress="minimal")
        bind(prompt.submit, handlers.on_run, prompt, chat, show_progress="minimal")
        # Events that only re-read the trace skip the queue (tens of ms of waiting and bookkeeping):
        # they never run the model. Everything that runs the model stays queued and limited.
        cheap = dict(queue=False, trigger_mode="always_last")
        bind(layer.input, handlers.on_layer, **cheap)
        bind(head.input, handlers.on_layer, **cheap)
        bind(layer_prev.click, lambda ctx_, v, c: handlers.on_layer_step(ctx_, v, c, -1), **cheap)
        bind(layer_next.click, lambda ctx_, v, c: handlers.on_layer_step(ctx_, v, c, +1), **cheap)
        for box in (exclude_first, log_scale, mlp_all):
            bind(box.input, handlers.on_layer, **cheap)
        bind(heads_metric.input, handlers.on_heads_metric, **cheap)
        bind(embed_3d.input, handlers.on_embed_dims, **cheap)
        for ctl in (temperature, top_k, top_p, seed):
            bind(ctl.input, handlers.on_sampling, show_progress="hidden", **cheap)
        bind(next_token.click, handlers.on_next_token, show_progress="minimal")
        bind_stream(generate.click, handlers.on_generate, n_tokens, show_progress="minimal")
        bind(export.click, share.export_session)
        bind(ablate.click, beyond.on_ablate, ablate_heads, ablate_neurons, show_progress="minimal")
        bind(compare.click, beyond.on_compare, prompt_b, show_progress="minimal")
        bind(prompt_b.submit, beyond.on_compare, prompt_b, show_progress="minimal")
        bind(draw_path.click, beyond.on_residual_path, path_positions, path_first, path_direction, show_progress="minimal")

        # Opening a shared link replays its prompt and settings.
        url_controls = [prompt, chat, temperature, top_k, top_p, seed]

        def open_link(view, request: gr.Request):
            params = dict(request.query_params) if request is not None else {}
            view = view or handlers.initial_view(ctx)
            if not any(k in params for k in share.URL_KEYS):
                return [view] + [gr.skip()] * (len(outputs) - 1 + len(url_controls))
            try:
                view, out, page_values = share.on_open_link(ctx, view, params)
            except Exception as e:  # noqa: BLE001 - a bad link must not break the page
                return respond(ctx, view, e) + [gr.skip()] * len(url_controls)
            return respond(ctx, view, (view, out)) + [page_values[k] for k in ("prompt", "chat", "t", "k", "p", "seed")]
        demo.load(open_link, [state], outputs + url_controls, api_visibility="private")

        # Chip clicks arrive as a custom event carrying the chip's position.
        # Chip clicks and head picks arrive as custom events whose data Gradio hands over as EventData
        # (it injects EventData only into functions that name it, hence the explicit parameters).
        def custom_event(handler, data_of):
            def fn(view, layer_, head_, exclude_first_, log_scale_, mlp_all_, heads_metric_, embed_3d_,
                   temperature_, top_k_, top_p_, seed_, evt: gr.EventData):
                try:
                    c = controls_from(ctx, (layer_, head_, exclude_first_, log_scale_, mlp_all_, heads_metric_,
                                            embed_3d_, temperature_, top_k_, top_p_, seed_))
                    if view is None:
                        return respond(ctx, None, handlers.on_session_lost(ctx, c))
                    return respond(ctx, view, handler(ctx, view, c, *data_of(evt._data or {})))
                except Exception as e:  # noqa: BLE001
                    return respond(ctx, view, e)
            return fn

        tokens.select_token(custom_event(handlers.on_focus, lambda d: (d.get("pos"),)),
                            [state, *controls], outputs, api_visibility="private")
        head_pick.pick_head(custom_event(handlers.on_head_pick, lambda d: (d.get("layer"), d.get("head"))),
                            [state, *controls], outputs, api_visibility="private", trigger_mode="always_last")

        panels = list(EXPLAINED_PANELS)
        language.change(lambda lang: [heading(p, lang_code(lang)) for p in panels] +
                        [explanation(p, lang_code(lang)) for p in panels] + [worked_example(lang_code(lang))],
                        language, [heads_md[p] for p in panels] + [explain[p] for p in panels] + [worked],
                        api_visibility="private")

        # The named API for scripts (gradio_client).
        from server.api import make_api
        api_trace, api_distribution, api_generate = make_api(ctx)
        gr.api(api_trace, api_name="trace")
        gr.api(api_distribution, api_name="distribution")
        gr.api(api_generate, api_name="generate")
    return demo


def page_css() -> str:
    return "\n".join((ASSETS / name).read_text(encoding="utf-8") for name in ("app.css", "chips.css")
                     if (ASSETS / name).exists())


def page_head() -> str:
    return f"<script>{(ASSETS / 'page.js').read_text(encoding='utf-8')}</script>"


def warm_up(ctx: Context) -> None:
    """One throwaway pass and step: the first ones pay one-time set-up costs, which would otherwise
    show up as the page's measured prefill and decode times."""
    tr = ctx.lm.trace(ctx.default_prompt)
    ctx.lm.step(tr, tr.token_ids[-1])


def load(args) -> Context:
    from model import ModelFileError, load_model

    print(f"GlassGPT: loading {'the bundled SmolLM2-135M-Instruct' if not args.model else args.model} "
          f"(the first start reads and dequantizes the GGUF file, ~10 s; later starts use a cache)...", flush=True)
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
    ctx = Context(lm, limits)
    print("  computing the first view...", flush=True)
    warm_up(ctx)
    handlers.initial_view(ctx)
    return ctx


def main(argv=None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    args = parse_args(argv)
    ctx = load(args)
    demo = build(ctx)
    demo.queue(max_size=args.queue_size, default_concurrency_limit=args.concurrency)
    print(f"  serving on http://{args.host}:{args.port}", flush=True)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"  WARNING: bound to {args.host}: anyone who can reach this address can use the app"
              f"{'' if args.auth else ' (consider --auth USER:PASSWORD)'}", flush=True)
    demo.launch(server_name=args.host, server_port=args.port, auth=parse_auth(args.auth), **launch_options(demo, ctx))


def launch_options(demo: gr.Blocks, ctx: Context) -> dict:
    """Everything launch() gets besides the address and login; the tests launch with the same."""
    from server.guard import ApiGuard
    from server.sessions import lifespan_forgetting_stateless_sessions

    # The guard checks requests against the endpoints the page really registered (gr.api above).
    api = {f.api_name: f.fn for f in demo.fns.values() if f.api_visibility == "public" and f.api_name}
    return dict(share=False, css=page_css(), head=page_head(), theme=gr.themes.Soft(), footer_links=["api"],
                show_error=False,
                max_file_size="1mb",     # the page uploads nothing; Gradio's upload route stays open regardless
                state_session_capacity=ctx.limits.max_sessions,
                app_kwargs={"middleware": [Middleware(ApiGuard, endpoints=api)],
                            "lifespan": lifespan_forgetting_stateless_sessions(demo)})


if __name__ == "__main__":
    main()
