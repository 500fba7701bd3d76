"""Two people at once: two browser contexts run different prompts, step layers and generate at
the same time, and each sees only its own prompt, trace and output; a third, fresh page still
opens on the untouched default view."""
from __future__ import annotations

import pytest
from gradio_client import Client

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PROMPT_A = "The cat sat on the mat because the cat"
PROMPT_B = "我爱北京天安门，天安门上"
CHIPS = "document.querySelectorAll('#tokens button.gg-chip').length"


def view_of(page) -> dict:
    # Panels out of view are drawn when idle or scrolled to: look at the attention panel, drawn.
    page.locator("#attention").scroll_into_view_if_needed()
    page.wait_for_function(f"{CHIPS} > 0 && (() => {{ const p = GG.panels.attention; const gd = p.div;"
                           f" return p.shown === p.wanted && !p.drawing && !!gd._fullLayout &&"
                           f" gd.layout.xaxis.ticktext.length === {CHIPS}; }})()", timeout=30_000)
    return page.evaluate("""() => ({
        ids: [...document.querySelectorAll('#tokens button.gg-chip .gg-chip-id')].map(e => parseInt(e.textContent)),
        output: document.querySelector('#output textarea').value,
        layer: document.querySelector('#layer input[type=number]').value,
        notice: document.querySelector('#notice').innerText.trim(),
        ticks: [...document.querySelectorAll('#attention .xtick text')].map(t => t.textContent),
        caption: (document.querySelector('#neighbours .gg-nbr-caption b') || {}).textContent,
    })""")


def step_layer(page, times: int) -> None:
    for _ in range(times):
        now = int(page.input_value("#layer input[type=number]"))
        page.click("#layer-next")
        page.wait_for_function(f"document.querySelector('#layer input[type=number]').value === '{now + 1}'",
                               timeout=30_000)


def test_two_sessions_at_once_see_only_their_own_work(new_page, server, lm):
    a, b = new_page(), new_page()
    ids_a, ids_b = lm.tokenize(PROMPT_A), lm.tokenize(PROMPT_B)

    # Both run at the same moment (the server queues them); each gets its own tokens.
    a.fill("#prompt textarea", PROMPT_A)
    b.fill("#prompt textarea", PROMPT_B)
    a.click("#run")
    b.click("#run")
    a.wait_for_function(f"{CHIPS} === {len(ids_a)}", timeout=60_000)
    b.wait_for_function(f"{CHIPS} === {len(ids_b)}", timeout=60_000)

    # Different layers; a call to the API in between changes neither.
    step_layer(a, 3)
    step_layer(b, 1)
    Client(server, verbose=False).predict("Something else entirely", api_name="/trace")

    # Generate in both at once: Next token in A, Generate N (3 tokens) in B.
    b.fill("#n-tokens input[type=number]", "3")
    b.press("#n-tokens input[type=number]", "Enter")
    a.click("#next-token")
    b.click("#generate")
    # The page samples as lm.generate does (temperature 1, seed 0): the exact tokens are known.
    n_b = int(b.input_value("#n-tokens input[type=number]"))
    assert n_b == 3
    new_a = lm.generate(PROMPT_A, 1, 1.0, 0, 1.0, 0).new_ids
    new_b = lm.generate(PROMPT_B, n_b, 1.0, 0, 1.0, 0).new_ids
    a.wait_for_function(f"{CHIPS} === {len(ids_a) + 1}", timeout=60_000)
    b.wait_for_function(f"{CHIPS} === {len(ids_b) + len(new_b)}", timeout=90_000)

    va, vb = view_of(a), view_of(b)
    assert va["ids"] == ids_a + new_a
    assert vb["ids"] == ids_b + new_b
    assert va["output"].startswith(PROMPT_A) and PROMPT_B not in va["output"]
    assert vb["output"].startswith(PROMPT_B) and PROMPT_A not in vb["output"]
    assert "Something else" not in va["output"] + vb["output"]
    assert va["layer"] == "3" and vb["layer"] == "1"
    assert not va["notice"] and "gg-error" not in b.inner_html("#notice")
    # Figures and neighbours follow each page's own trace.
    pieces_a = lm.tokenizer.pieces(va["ids"])
    assert va["caption"] == pieces_a[-1].label
    assert len(va["ticks"]) == len(va["ids"]) and len(vb["ticks"]) == len(vb["ids"])
    assert not set(va["ticks"]) & {"我", "爱", "北京"}

    # A new visitor gets the default view, untouched by either session.
    c = new_page()
    vc = view_of(c)
    assert vc["ids"] == lm.tokenize("The capital of France is") and vc["output"] == "The capital of France is"
    assert vc["layer"] == "0"
    # And the first two are still as they were.
    assert view_of(a)["ids"] == va["ids"] and view_of(b)["ids"] == vb["ids"]
