"""Property-based fuzzing of the named API over raw HTTP (so NaN, Infinity and lone surrogates
reach the server as such): whatever the arguments, every call ends in a result of the endpoint's
shape or an error event with a clear message, never an HTTP 500 and never a silent crash; and when
every argument is valid, the call succeeds.

About 560 generated calls per run (GLASSGPT_FUZZ_SCALE=2 doubles them); prompts are short so a
valid call costs one small forward pass.
"""
from __future__ import annotations

import math
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .helpers import CASES, assert_answer_ok, call_raw

pytestmark = pytest.mark.slow

SCALE = float(os.environ.get("GLASSGPT_FUZZ_SCALE", "1"))
EXAMPLES = {"trace": 200, "distribution": 200, "generate": 160, "analogy": 80, "direction": 80}
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# ---- strategies: ("ok", value) for a value the API must accept, ("junk", value) for anything else
ODD = ["Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp", "Mn", "Me", "So", "Sk"]
any_text = st.one_of(
    st.text(max_size=24),                                                     # any code point but surrogates
    st.text(st.characters(categories=ODD), max_size=12),                      # controls, format, surrogates, marks
    st.text(st.characters(min_codepoint=0, max_codepoint=0x7F), max_size=24),
    st.text(st.sampled_from(list("<>\"'&/=;:`${}()[]\\ \n\t\r\u0000\u0004\u0006\u202e\u200d")), max_size=24),
    st.sampled_from([c.text for c in CASES if len(c.text) <= 200]),           # the corpus, short cases
)
junk = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(),                     # floats include nan, +-inf
    st.text(max_size=8), st.sampled_from(["nan", "inf", "-1", "1e9", "0x10", " 1 ", ""]),
    st.lists(st.one_of(st.integers(), st.text(max_size=3)), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def tagged(ok, weight_ok: int = 3):
    return st.one_of(*([ok.map(lambda v: ("ok", v))] * weight_ok), junk.map(lambda v: ("junk", v)))


prompt = st.one_of(any_text.map(lambda v: ("text", v)), any_text.map(lambda v: ("text", v)),
                   junk.map(lambda v: ("junk", v)))
temperature = tagged(st.one_of(st.floats(0, 2), st.just(0), st.floats(0, 100)))
top_k = tagged(st.integers(0, 200))
top_p = tagged(st.floats(0.01, 1.0))
seed = tagged(st.integers(0, 2**53))
max_new = st.one_of(*[st.integers(0, 3).map(lambda v: ("ok", v))] * 3,
                    st.one_of(st.integers(max_value=-1), st.integers(17, 2**70), st.floats(0.1, 0.9), st.none(),
                              st.floats(allow_nan=True).filter(lambda f: not math.isfinite(f)),
                              st.text(max_size=4)).map(lambda v: ("junk", v)))


def prompt_is_valid(lm, tag_value) -> bool:
    tag, p = tag_value
    if tag != "text" or not p.strip() or len(p) > 20_000:
        return False
    try:
        n = len(lm.tokenize(p))
    except ValueError:                     # lone surrogate
        return False
    return 1 <= n <= 256


def check(server, lm, api: str, args: list) -> None:
    values = [v for _, v in args]
    answer = call_raw(server, api, values)
    assert_answer_ok(answer, api)          # a result of the right shape, or a clear error message
    if prompt_is_valid(lm, args[0]) and all(tag == "ok" for tag, _ in args[1:]):
        assert answer.event == "complete", f"valid arguments were refused: {values!r} -> {answer.message!r}"


@settings(max_examples=int(EXAMPLES["trace"] * SCALE), **SETTINGS)
@given(p=prompt)
def test_fuzz_trace(server, lm, p):
    check(server, lm, "trace", [p])


@settings(max_examples=int(EXAMPLES["distribution"] * SCALE), **SETTINGS)
@given(p=prompt, t=temperature, k=top_k, tp=top_p)
def test_fuzz_distribution(server, lm, p, t, k, tp):
    check(server, lm, "distribution", [p, t, k, tp])


@settings(max_examples=int(EXAMPLES["generate"] * SCALE), **SETTINGS)
@given(p=prompt, n=max_new, t=temperature, k=top_k, tp=top_p, s=seed)
def test_fuzz_generate(server, lm, p, n, t, k, tp, s):
    check(server, lm, "generate", [p, n, t, k, tp, s])


# The lab's words: anything at all, or words that are one token (which must be accepted).
word = st.one_of(any_text.map(lambda v: ("junk", v)), junk.map(lambda v: ("junk", v)),
                 st.sampled_from([" king", " man", " woman", " cat", " dogs", " one"]).map(lambda v: ("ok", v)))
k_nearest = tagged(st.integers(1, 100))


@settings(max_examples=int(EXAMPLES["analogy"] * SCALE), **SETTINGS)
@given(a=word, b=word, c=word, k=k_nearest)
def test_fuzz_analogy(server, a, b, c, k):
    args = [a, b, c, k]
    answer = call_raw(server, "analogy", [v for _, v in args])
    assert_answer_ok(answer, "analogy")
    if all(tag == "ok" for tag, _ in args):
        assert answer.event == "complete", f"valid arguments were refused: {args!r} -> {answer.message!r}"


@settings(max_examples=int(EXAMPLES["direction"] * SCALE), **SETTINGS)
@given(a=word, b=word, words=st.one_of(word, st.lists(word, max_size=4).map(lambda ws: ("junk", ",".join(str(v) for _, v in ws)))))
def test_fuzz_direction(server, a, b, words):
    answer = call_raw(server, "direction", [a[1], b[1], words[1]])
    assert_answer_ok(answer, "direction")
    if a[0] == b[0] == words[0] == "ok" and a[1] != b[1]:
        assert answer.event == "complete", f"valid arguments were refused: {(a, b, words)!r} -> {answer.message!r}"


def test_server_still_answers_after_fuzzing(server):
    answer = call_raw(server, "trace", ["The capital of France is"])
    assert answer.event == "complete" and answer.data["top"][0]["token"] == " Paris"
