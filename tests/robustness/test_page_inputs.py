"""The hostile-input corpus through the real page in Chromium: pasted (or typed) into #prompt, Run.

Each case is answered with a clear message in #notice or with the model's tokens; no dialog opens,
no element is injected, no request leaves 127.0.0.1 (PageGuard), and the text is shown as text
everywhere it appears: chip labels and hover titles, Plotly tick labels and figure data, the
neighbour list and the output box. Cases are batched, many per page, to keep the run short.
"""
from __future__ import annotations

import html
import time
from collections import Counter

import pytest

from viz.common import piece_label

from .helpers import CASES, MAX_MESSAGE

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PAGE_CASES = [c for c in CASES if not c.api_only]
HUGE = [c for c in PAGE_CASES if c.kind == "huge"]
MARKUP_KINDS = {"html", "template", "markdown", "injection", "long-word"}
MARKUP = [c for c in PAGE_CASES if c.kind in MARKUP_KINDS or c.html]
TEXT = [c for c in PAGE_CASES if c not in MARKUP and c not in HUGE]
TYPED = {"html-attr-break-double", "html-img", "cjk"}      # typed key by key; the rest are pasted (fill)

# Everything the page shows about the current prompt, read in one call.
INSPECT_JS = r"""() => {
  const q = (s) => document.querySelector(s);
  const notice = q('#notice .gg-notice');
  const plots = [...document.querySelectorAll('.js-plotly-plot')];
  const suspicious = '[id^="pwn-"], [onerror], [onload], [onmouseover], [onfocus], iframe, a[href^="javascript:"], ' +
                     'img[src="x"], img[src*="evil"], link[href*="evil"], a[href*="evil"], script[src*="evil"]';
  const drop = (k, v) => (Array.isArray(v) && v.length > 64 && typeof v[0] !== 'string') ||
                         (ArrayBuffer.isView(v)) ? undefined : v;
  const raw = [];
  for (const gd of plots) {
    const s = JSON.stringify({data: gd.data, layout: gd.layout}, drop) || '';
    for (const m of ['<img', '<script', '<svg', '<iframe', '<a href', '<link', '<style', '</div>', '<u>u</u>',
                     '<b>pwnbold</b>', '<i>pwnital</i>', '<sup>pwnsup</sup>', '>pwnlink</a>'])
      if (s.includes(m)) raw.push((gd.closest('[id]') || {}).id + ': ' + m);
  }
  const attn = q('#attention .js-plotly-plot');
  return {
    notice: notice ? {text: notice.innerText, cls: notice.className} : null,
    noticeText: notice ? notice.innerText : '',
    chips: [...document.querySelectorAll('#tokens button.gg-chip')].map(b => ({
      label: b.querySelector('.gg-chip-label').textContent,
      labelChildren: b.querySelector('.gg-chip-label').children.length,
      title: b.getAttribute('title'), id: b.querySelector('.gg-chip-id').textContent})),
    ticks: attn ? [...attn.querySelectorAll('.xtick text')].map(t => t.textContent) : [],
    tickMarkup: document.querySelectorAll('.js-plotly-plot .xtick tspan, .js-plotly-plot .ytick tspan, ' +
                                         '.js-plotly-plot .xtick a, .js-plotly-plot .ytick a').length,
    svgLinks: document.querySelectorAll('.js-plotly-plot .main-svg a').length,
    injected: [...document.querySelectorAll(suspicious)].map(e => e.outerHTML.slice(0, 80)),
    rawInFigures: raw,
    caption: (() => { const b = q('#neighbours .gg-nbr-caption b');
                      return b ? {text: b.textContent, children: b.children.length} : null; })(),
    nbrCellChildren: [...document.querySelectorAll('#neighbours td.gg-tok')].reduce((n, td) => n + td.children.length, 0),
    output: q('#output textarea').value,
    prompt: q('#prompt textarea').value,
  };
}"""

# The app's own content only: while a request runs, Gradio puts its progress timer into the outputs.
STATE_JS = ("() => { const n = document.querySelector('#notice .gg-notice'), t = document.querySelector('#tokens .gg-tokens');"
            " return (n ? n.outerHTML : '') + '\\u0001' + (t ? t.innerHTML : ''); }")


def clear_notice(page) -> None:
    """Dismiss the message shown: afterwards a new message is a visible change."""
    if page.locator("#notice .gg-notice").count():
        page.click("#notice .gg-notice-close")
        page.wait_for_function("!document.querySelector('#notice .gg-notice')", timeout=30_000)


def send(page, case, text: str) -> str:
    """Put the text into the prompt the way a person would and press Run; -> the state before."""
    clear_notice(page)
    before = page.evaluate(STATE_JS)
    if case.id in TYPED:
        page.fill("#prompt textarea", "")
        page.type("#prompt textarea", text, delay=0)
    elif len(text) > 50_000:                # a huge paste: set it at once, as a paste does
        page.evaluate("""(t) => { const ta = document.querySelector('#prompt textarea');
                                  ta.value = t; ta.dispatchEvent(new Event('input', {bubbles: true})); }""", text)
    else:
        page.fill("#prompt textarea", text)
    page.click("#run")
    return before


def wait_answer(page, before: str, timeout: int = 60_000) -> None:
    """The page changed, and a Run's second answer (lens and neighbours) has arrived too."""
    page.wait_for_function(f"(before) => ({STATE_JS})() !== before", arg=before, timeout=timeout)
    page.wait_for_function("!document.querySelector('#neighbours .gg-computing')", timeout=timeout)


def submit(page, case, text: str, timeout: int = 60_000) -> None:
    wait_answer(page, send(page, case, text), timeout)


def expected_view(lm, text: str) -> dict:
    ids = lm.tokenize(text)
    pieces = lm.tokenizer.pieces(ids)
    return {"ids": ids, "pieces": pieces, "output": lm.decode(ids)}


def check_case(page, lm, case) -> list[str]:
    """-> what is wrong with the page's answer to this case (empty when all is well)."""
    problems = []
    text_sent = page.input_value("#prompt textarea")
    if case.expect == "result":
        exp = expected_view(lm, text_sent)
        n = len(exp["ids"])
        if n <= 60:   # wait for Plotly to draw the new figure: one x tick per token up to 60 tokens
            page.wait_for_function(f"document.querySelectorAll('#attention .xtick text').length === {n}",
                                   timeout=30_000)
    seen = page.evaluate(INSPECT_JS)
    if seen["injected"]:
        problems.append(f"elements injected: {seen['injected']}")
    if seen["rawInFigures"]:
        problems.append(f"unescaped markup in figure data: {seen['rawInFigures']}")
    if seen["tickMarkup"] or seen["svgLinks"]:
        problems.append(f"markup rendered inside figures: {seen['tickMarkup']} tick tspans/links, {seen['svgLinks']} links")
    if case.expect == "error":
        if not seen["notice"] or "gg-error" not in seen["notice"]["cls"] or not seen["notice"]["text"].strip():
            problems.append(f"no error message in #notice: {seen['notice']!r}")
        elif len(seen["notice"]["text"]) > MAX_MESSAGE or "Traceback" in seen["notice"]["text"]:
            problems.append(f"unclear message: {seen['notice']['text'][:200]!r}")
        return problems
    # A result: the model's own tokens, every one shown as text.
    if seen["notice"] and "gg-error" in seen["notice"]["cls"]:
        return problems + [f"refused: {seen['notice']['text']!r}"]
    chips = seen["chips"]
    if [int(c["id"].split()[0]) for c in chips] != exp["ids"]:
        return problems + [f"chips {[c['id'] for c in chips][:8]}... are not the ids {exp['ids'][:8]}..."]
    for chip, piece in zip(chips, exp["pieces"]):
        if chip["label"] != piece.label or chip["labelChildren"]:
            problems.append(f"chip label {chip['label']!r} is not the text {piece.label!r}")
        if f"id {piece.id}" not in chip["title"] or (not piece.is_partial and f"text: {piece.text!r}" not in chip["title"]):
            problems.append(f"hover title {chip['title']!r} does not show {piece.text!r}")
    if len(exp["ids"]) <= 60:
        want = Counter(html.unescape(piece_label(p)) for p in exp["pieces"])
        if Counter(seen["ticks"]) != want:
            problems.append(f"attention ticks {seen['ticks'][:10]} are not the labels {list(want)[:10]}")
    last = exp["pieces"][-1]
    if not seen["caption"] or seen["caption"]["text"] != last.label or seen["caption"]["children"]:
        problems.append(f"neighbour caption {seen['caption']!r} is not the last token {last.label!r}")
    if seen["nbrCellChildren"]:
        problems.append("elements inside the neighbour list's token cells")
    if seen["output"] != exp["output"]:
        problems.append(f"output box {seen['output'][:60]!r} is not the prompt {exp['output'][:60]!r}")
    if case.shows and case.shows not in "".join(c["label"] for c in chips).replace("·", " ") + seen["noticeText"]:
        problems.append(f"{case.shows!r} is not visible in the chips or the notice")
    return problems


def run_batch(pages, lm, cases) -> None:
    """The cases shared out over several pages and run in step: while the server answers one page,
    the browser draws another's figures. Every case is checked; all failures are reported."""
    failures, timings = {}, {}
    queues = [list(cases[i::len(pages)]) for i in range(len(pages))]
    pending: list = [None] * len(pages)

    def record(case, problems, t0):
        timings[case.id] = time.perf_counter() - t0
        if problems:
            failures[case.id] = problems

    while any(queues) or any(pending):
        for i, page in enumerate(pages):
            if pending[i] is None and queues[i]:
                case, t0 = queues[i].pop(0), time.perf_counter()
                try:
                    pending[i] = (case, send(page, case, case.text), t0)
                except Exception as e:  # noqa: BLE001 - report every case, not only the first
                    record(case, [f"{type(e).__name__}: {str(e)[:300]}"], t0)
        for i, page in enumerate(pages):
            if pending[i] is not None:
                case, before, t0 = pending[i]
                pending[i] = None
                try:
                    wait_answer(page, before)
                    record(case, check_case(page, lm, case), t0)
                except Exception as e:  # noqa: BLE001
                    record(case, [f"{type(e).__name__}: {str(e)[:300]}"], t0)
    print("seconds per case:", {k: round(v, 1) for k, v in timings.items()})
    # Then a normal Run works on every page.
    normal = "The cat sat on the mat"
    for page in pages:
        page.fill("#prompt textarea", normal)
        page.click("#run")
    for page in pages:
        page.wait_for_function(f"document.querySelectorAll('#tokens button.gg-chip').length === {len(lm.tokenize(normal))}"
                               " && !document.querySelector('#notice .gg-error')", timeout=60_000)
        assert page.input_value("#output textarea") == normal
        page.guard.check()
    assert not failures, "\n".join(f"{k}: {v}" for k, v in failures.items())


def test_page_is_clean_before_the_corpus(new_page):
    """The checks below look for elements and markup that a clean page must not have either."""
    page = new_page()
    page.wait_for_selector("#attention .xtick text", timeout=30_000)
    seen = page.evaluate(INSPECT_JS)
    assert not seen["injected"] and not seen["rawInFigures"] and not seen["tickMarkup"] and not seen["svgLinks"]
    assert seen["ticks"] and seen["caption"] and seen["output"] == seen["prompt"]


def test_text_cases_in_the_page(new_page, lm):
    """Empty, whitespace, limits, control characters, bidi, emoji, CJK, control-token text."""
    run_batch([new_page(), new_page()], lm, TEXT)


def test_markup_cases_in_the_page(new_page, lm):
    """HTML, script, attribute breakers, Plotly markup, templates, entities, Markdown, long words."""
    run_batch([new_page(), new_page()], lm, MARKUP)


def test_megabyte_paste_is_answered_fast_with_a_message(new_page, lm):
    page = new_page()
    for case in HUGE:
        t0 = time.perf_counter()
        try:
            submit(page, case, case.text, timeout=20_000)
        except Exception:  # noqa: BLE001
            pytest.fail(f"{case.id}: no answer within 20 s; address bar is {len(page.url):,} characters long")
        elapsed = time.perf_counter() - t0
        notice = page.inner_text("#notice .gg-notice")
        assert "1,048,576 characters" in notice and "20,000" in notice, notice[:300]
        assert elapsed < 15, f"{case.id}: answered after {elapsed:.1f} s"
        assert len(page.locator("#tokens button.gg-chip").all()) == len(lm.tokenize("The capital of France is"))
        # Every request the page makes carries the address bar's query: it must stay far below what
        # the server accepts in a request line (uvicorn/h11 refuse ~64 KB) and browsers' 2 MB limit.
        page.wait_for_timeout(1000)
        assert len(page.url) < 16_384, f"the address bar holds {len(page.url):,} characters"
    page.fill("#prompt textarea", "Hello world")
    page.click("#run")
    page.wait_for_function(f"document.querySelectorAll('#tokens button.gg-chip').length === {len(lm.tokenize('Hello world'))}",
                           timeout=60_000)
    page.wait_for_timeout(1500)       # let the address-bar sync run with the huge prompt gone
    page.guard.check()
