"""Hostile inputs and bad settings through the named HTTP API (/trace, /distribution, /generate),
against the real app served in-process on 127.0.0.1.

Every call ends in a result or a clear error (a gr.Error message: short, no traceback), never an
HTTP 500, and the next normal request still works. Lone surrogates and NaN/Infinity cannot be
sent by gradio_client (it refuses to encode them), so those go as raw JSON over HTTP.
"""
from __future__ import annotations

import json
import time

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from .helpers import (API_NAMES, CASES, assert_answer_ok, assert_clear_message, call_raw, check_result_shape,
                      example_args, post_raw)

VOCAB = 49152


@pytest.fixture(scope="module")
def client(server):
    return Client(server, verbose=False)


def still_works(client) -> None:
    out = client.predict("Hi", api_name="/trace")
    assert out["tokens"] == ["Hi"]


# ---- the corpus itself ---------------------------------------------------------------------------
def test_corpus_is_well_formed_and_its_expectations_hold(app_ctx):
    """Each case's expected outcome holds for the tests' limits (256 tokens) and the app's (512)."""
    from server.handlers import Context, Limits, check_prompt

    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    kinds = {c.kind for c in CASES}
    assert {"empty", "whitespace", "token-limit", "char-limit", "huge", "control", "surrogate", "bidi", "emoji",
            "cjk", "special-token", "html", "template", "long-word"} <= kinds
    assert all(c.expect in ("result", "error") and c.note for c in CASES)
    assert any(len(c.text) >= 1_048_576 for c in CASES)
    assert {"\u0004", "\u0006", "\u0000"} <= set("".join(c.text for c in CASES if c.kind == "control"))
    def refused(ctx, text) -> bool:
        try:
            return not check_prompt(ctx, text)     # no token left: the model refuses an empty prompt
        except ValueError:
            return True

    default = Context(app_ctx.lm, Limits())
    for case in CASES:
        for ctx in (app_ctx, default):
            assert refused(ctx, case.text) == (case.expect == "error"), (case.id, ctx.limits)


# ---- every case through every endpoint -------------------------------------------------------------
@pytest.mark.parametrize("api", API_NAMES)
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_corpus_case_through_endpoint(client, server, lm, case, api):
    args = example_args(api, case.text)
    t0 = time.perf_counter()
    if case.api_only:                     # lone surrogates: only raw JSON can carry them
        answer = call_raw(server, api, args)
        assert_answer_ok(answer, api)
        assert answer.event == "error" and "surrogate" in answer.message
    elif case.expect == "error":
        with pytest.raises(AppError) as info:
            client.predict(*args, api_name=f"/{api}")
        assert_clear_message(str(info.value))
    else:
        out = client.predict(*args, api_name=f"/{api}")
        check_result_shape(api, out)
        if api == "trace":
            assert out["ids"] == lm.tokenize(case.text)
            assert out["tokens"] == [p.text if not p.is_partial else p.display for p in lm.tokenizer.pieces(out["ids"])]
        if api == "generate":
            assert len(out["ids"]) <= 2
    assert time.perf_counter() - t0 < 30, "a hostile input took too long to answer"
    still_works(client)


def test_a_megabyte_is_refused_quickly_without_echoing_it(client):
    big = next(c for c in CASES if c.id == "paste-1mb-mixed").text
    t0 = time.perf_counter()
    with pytest.raises(AppError) as info:
        client.predict(big, api_name="/trace")
    assert time.perf_counter() - t0 < 10
    assert "1,048,576 characters" in str(info.value) and len(str(info.value)) < 200


def test_control_token_text_is_never_the_control_token(client, lm):
    """Typed '<|endoftext|>' / '<|im_start|>' are plain text, not the special ids."""
    special = set(lm.tokenizer.special_ids)
    for text in ("<|endoftext|>", "<|im_start|>user\nhi<|im_end|>"):
        out = client.predict(text, api_name="/trace")
        assert not special & set(out["ids"]), (text, out["ids"])
    gen = client.predict("<|endoftext|>", 3, 0, 0, 1.0, 0, api_name="/generate")
    assert len(gen["ids"]) >= 1


# ---- settings out of range or of the wrong type ------------------------------------------------------
P = "The capital of France is"
BAD_SETTINGS = [
    # (endpoint, arguments, the word the message must name)
    ("distribution", [P, -1.0, 0, 1.0], "temperature"),
    ("distribution", [P, -1e-9, 0, 1.0], "temperature"),
    ("distribution", [P, float("nan"), 0, 1.0], "temperature"),
    ("distribution", [P, float("inf"), 0, 1.0], "temperature"),
    ("distribution", [P, float("-inf"), 0, 1.0], "temperature"),
    ("distribution", [P, 1e9, 0, 1.0], "temperature"),
    ("distribution", [P, 100.5, 0, 1.0], "temperature"),
    ("distribution", [P, "hot", 0, 1.0], "temperature"),
    ("distribution", [P, None, 0, 1.0], "temperature"),
    ("distribution", [P, [1.0], 0, 1.0], "temperature"),
    ("distribution", [P, {"t": 1}, 0, 1.0], "temperature"),
    ("distribution", [P, 1.0, -1, 1.0], "top-k"),
    ("distribution", [P, 1.0, -(2**40), 1.0], "top-k"),
    ("distribution", [P, 1.0, VOCAB + 1, 1.0], "top-k"),
    ("distribution", [P, 1.0, 10**30, 1.0], "top-k"),
    ("distribution", [P, 1.0, 2.5, 1.0], "top-k"),
    ("distribution", [P, 1.0, float("nan"), 1.0], "top-k"),
    ("distribution", [P, 1.0, "many", 1.0], "top-k"),
    ("distribution", [P, 1.0, 0, 0.0], "top-p"),
    ("distribution", [P, 1.0, 0, -0.5], "top-p"),
    ("distribution", [P, 1.0, 0, 1.0000001], "top-p"),
    ("distribution", [P, 1.0, 0, 1.5], "top-p"),
    ("distribution", [P, 1.0, 0, float("nan")], "top-p"),
    ("distribution", [P, 1.0, 0, float("inf")], "top-p"),
    ("distribution", [P, 1.0, 0, "most"], "top-p"),
    ("generate", [P, -1, 1.0, 0, 1.0, 0], "max_new_tokens"),
    ("generate", [P, 17, 1.0, 0, 1.0, 0], "max_new_tokens"),          # the tests' limit is 16
    ("generate", [P, 10**9, 1.0, 0, 1.0, 0], "max_new_tokens"),
    ("generate", [P, 2.5, 1.0, 0, 1.0, 0], "max_new_tokens"),
    ("generate", [P, float("inf"), 1.0, 0, 1.0, 0], "max_new_tokens"),
    ("generate", [P, "ten", 1.0, 0, 1.0, 0], "max_new_tokens"),
    ("generate", [P, 2, -3.0, 0, 1.0, 0], "temperature"),
    ("generate", [P, 2, float("nan"), 0, 1.0, 0], "temperature"),
    ("generate", [P, 2, 1.0, -2, 1.0, 0], "top-k"),
    ("generate", [P, 2, 1.0, 0, 2.0, 0], "top-p"),
    ("generate", [P, 2, 1.0, 0, 1.0, -1], "seed"),
    ("generate", [P, 2, 1.0, 0, 1.0, 1.5], "seed"),
    ("generate", [P, 2, 1.0, 0, 1.0, 2**63], "seed"),
    ("generate", [P, 2, 1.0, 0, 1.0, 1e300], "seed"),
    ("generate", [P, 2, 1.0, 0, 1.0, "lucky"], "seed"),
    ("generate", [P, 2, 1.0, 0, 1.0, None], "seed"),
    ("generate", [P, 2, 1.0, 0, 1.0, float("nan")], "seed"),
]


def _nonfinite(args) -> bool:
    return any(isinstance(a, float) and not (a == a and abs(a) != float("inf")) for a in args)


@pytest.mark.parametrize("api, args, word", BAD_SETTINGS, ids=[f"{a}-{i}" for i, (a, _, _) in enumerate(BAD_SETTINGS)])
def test_bad_setting_is_refused_with_a_message_naming_it(client, server, api, args, word):
    answer = call_raw(server, api, args)           # raw JSON: NaN and Infinity go through as such
    assert_answer_ok(answer, api)
    message = refusal_message(answer)              # an error event, or a 422 for a JSON object or list
    assert answer.event == "error" or answer.status == 422, answer
    assert word in message or word.replace("-", "_") in message, message
    if not _nonfinite(args):                       # gradio_client cannot encode NaN/inf at all
        with pytest.raises(AppError) as info:
            client.predict(*args, api_name=f"/{api}")
        assert word in str(info.value)
        assert_clear_message(str(info.value))
    still_works(client)


BOUNDARY_SETTINGS = [
    ("distribution", [P, 0, 0, 1.0]),                 # greedy
    ("distribution", [P, 100.0, 0, 1.0]),             # the highest temperature allowed
    ("distribution", [P, 1.0, VOCAB, 1.0]),           # top-k = the whole vocabulary
    ("distribution", [P, 1.0, 1, 1.0]),
    ("distribution", [P, 1.0, 0, 1e-9]),              # tiny top-p keeps the top token
    ("distribution", [P, 1e-6, 0, 1.0]),
    ("generate", [P, 0, 1.0, 0, 1.0, 0]),             # nothing to add
    ("generate", [P, 16, 0, 0, 1.0, 0]),              # exactly the limit
    ("generate", [P, 1, 1.0, 0, 1.0, 2**63 - 1]),     # the largest seed
]


@pytest.mark.parametrize("api, args", BOUNDARY_SETTINGS, ids=[f"{a}-{i}" for i, (a, _) in enumerate(BOUNDARY_SETTINGS)])
def test_boundary_settings_are_accepted(client, api, args):
    out = client.predict(*args, api_name=f"/{api}")
    check_result_shape(api, out)
    if api == "distribution" and (args[2] == 1 or args[3] == 1e-9):
        assert out[0]["probability"] == pytest.approx(1.0) and all(t["probability"] == 0 for t in out[1:])


# ---- the wrong number of arguments -----------------------------------------------------------------
def test_gradio_client_checks_the_number_of_arguments(client):
    with pytest.raises(TypeError):        # refused before anything is sent
        client.predict(api_name="/trace")
    # gradio_client fills the documented defaults for missing optional arguments
    check_result_shape("distribution", client.predict(P, api_name="/distribution"))
    check_result_shape("generate", client.predict(P, 2, api_name="/generate"))
    still_works(client)


@pytest.mark.parametrize("api, data", [("trace", []), ("distribution", []), ("generate", [])])
def test_too_few_arguments_over_http_is_refused_with_the_usage(server, client, api, data):
    answer = call_raw(server, api, data)
    assert answer.status == 422, answer
    message = refusal_message(answer)
    assert_clear_message(message)
    assert f"/{api}(prompt" in message and "needs at least 1 value" in message
    still_works(client)


@pytest.mark.parametrize("api, data", [("distribution", [P]), ("distribution", [P, 0.0]), ("generate", [P]),
                                       ("generate", [P, 2])])
def test_missing_optional_arguments_over_http_take_the_documented_defaults(server, client, api, data):
    """As gradio_client does: values left off the end of `data` are the endpoint's defaults."""
    answer = call_raw(server, api, data)
    assert_answer_ok(answer, api)
    assert answer.event == "complete", answer
    check_result_shape(api, answer.data)
    full = {"distribution": [P, 1.0, 0, 1.0], "generate": [P, None, 1.0, 0, 1.0, 0]}[api]
    assert answer.data == client.predict(*(data + full[len(data):]), api_name=f"/{api}")


def refusal_message(answer):
    """The text a refused call carries: a 4xx body's detail, or the error event's message."""
    if answer.status != 200:
        return json.loads(answer.body).get("detail")
    return answer.message


@pytest.mark.parametrize("api", API_NAMES)
def test_extra_arguments_are_ignored(server, client, api):
    answer = call_raw(server, api, example_args(api, P) + [1, "x", None, float("nan")])
    assert_answer_ok(answer, api)
    assert answer.event == "complete"
    # gradio_client drops extra positional arguments the same way
    check_result_shape(api, client.predict(*(example_args(api, P) + [1, 2]), api_name=f"/{api}"))


# ---- malformed request bodies ---------------------------------------------------------------------------
MALFORMED = {
    "empty": b"",
    "whitespace": b"   ",
    "truncated": b'{"data": ["hi"',
    "not-json": b"not json at all",
    "trailing-garbage": b'{"data": ["hi"]} trailing',
    "binary": b"\xff\xfe\x00\x01garbage",
    "latin1-string": b'{"data": ["caf\xe9"]}',
    "raw-nul-in-string": b'{"data": ["a\x00b"]}',
    "json-null": b"null",
    "json-list": b'["hi"]',
    "json-string": b'"hi"',
    "json-number": b"42",
    "data-missing": b'{"prompt": "hi"}',
    "data-null": b'{"data": null}',
    "data-string": b'{"data": "hi"}',
    "data-object": b'{"data": {"prompt": "hi"}}',
    "data-number": b'{"data": 5}',
    "session-hash-object": b'{"data": ["hi"], "session_hash": {"a": 1}}',
    "deep-nesting": b'{"data": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}",
    "huge-integer": b'{"data": ["hi", ' + b"9" * 5000 + b", 0, 1]}",
    "overflowing-float": b'{"data": ["hi", 1e999999, 0, 1]}',
    "nan-literal": b'{"data": [NaN, NaN, NaN, NaN, NaN, NaN]}',
    "prompt-object": b'{"data": [{"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}}, 1, 0, 1, 0, 0]}',
    "prompt-list": b'{"data": [["a", "b"], 1, 0, 1, 0, 0]}',
    "prompt-bool": b'{"data": [true, 1, 0, 1, 0, 0]}',
    "duplicate-keys": b'{"data": [1], "data": ["hi", 1, 0, 1, 2, 0]}',
    "fn-index-other": b'{"data": ["hi", 1, 0, 1, 2, 0], "fn_index": 1}',
    "utf8-bom": b'\xef\xbb\xbf{"data": ["hi", 1, 0, 1, 2, 0]}',
}


@pytest.mark.parametrize("api", API_NAMES)
@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_body_is_4xx_or_an_error_event(server, client, api, name):
    answer = post_raw(server, api, MALFORMED[name])
    assert answer.status != 500 and answer.status < 500, f"HTTP {answer.status}"
    if answer.status == 200:
        assert answer.event in ("complete", "error")
        assert "Traceback" not in repr(answer.data)
        if answer.event == "complete":
            check_result_shape(api, answer.data)
        else:
            assert_clear_message(answer.message)
    else:
        assert 400 <= answer.status < 500
    still_works(client)


# ---- routes Gradio alone would answer with HTTP 500 (server/guard.py answers them first) -------------
@pytest.mark.parametrize("path", ["call", "call/v2", "run", "api"])
def test_unknown_endpoint_name_is_404_naming_the_api(server, path):
    answer = post_raw(server, "no-such-endpoint", b'{"data": ["hi"]}', path=path)
    assert answer.status == 404
    message = refusal_message(answer)
    assert_clear_message(message)
    assert "'no-such-endpoint'" in message and "/trace(prompt)" in message and "/generate(" in message


def test_v2_route_bad_bodies_are_4xx(server):
    for api, body, word in [("no-such-endpoint", b'{"prompt": "hi"}', "no API endpoint"),
                            ("trace", b'{"data": {"prompt": "hi"}}', "Unknown argument"),
                            ("trace", b'{"promt": "hi"}', "Unknown argument"),
                            ("distribution", b'{"temperature": 0.5}', "Missing argument"),
                            ("trace", b'["hi"]', "JSON object")]:
        answer = post_raw(server, api, body, path="call/v2")
        assert 400 <= answer.status < 500, (api, body, answer)
        assert word in refusal_message(answer), (api, body, answer)


def test_an_oversized_api_body_is_refused_before_parsing(server, client):
    from server.guard import MAX_API_BODY

    answer = post_raw(server, "trace", b'{"data": ["' + b"a" * (MAX_API_BODY + 10) + b'"]}')
    assert answer.status == 413 and "MB" in refusal_message(answer)
    still_works(client)


def test_server_survives_gradio_500s(server, client):
    """Whatever Gradio answers to unknown names and the v2 route, the next normal call works."""
    for path, api, body in [("call", "no-such-endpoint", b'{"data": ["hi"]}'),
                            ("call/v2", "no-such-endpoint", b'{"prompt": "hi"}'),
                            ("call/v2", "trace", b'{"data": {"prompt": "hi"}}'),
                            ("call/v2", "trace", b'{"prompt": 5}')]:
        post_raw(server, api, body, path=path)
    v2 = post_raw(server, "trace", b'{"prompt": "Hi"}', path="call/v2")
    assert v2.status == 200 and v2.event == "complete" and v2.data["tokens"] == ["Hi"]
    still_works(client)


def test_large_whole_numbers_are_kept_exactly():
    """Seeds above 2**53 must not be rounded through float (two seeds would sample alike) and the
    documented largest seed 2**63-1 must be accepted."""
    from server.controls import whole_number

    for seed in (2**53 + 1, 2**62 + 3, 2**63 - 1):
        assert whole_number(seed, "seed", 0, 2**63 - 1) == seed


def test_generate_with_its_documented_defaults_respects_the_servers_limit(client):
    """/generate's default max_new_tokens (20) must not be refused when the server was started with a
    lower --max-new-tokens (the tests' server allows 16): a caller who passes nothing gets an error
    about an argument they never gave."""
    out = client.predict(P, api_name="/generate")
    check_result_shape("generate", out)
    assert 1 <= len(out["ids"]) <= 16
