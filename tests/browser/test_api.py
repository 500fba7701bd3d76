"""The named API endpoints, called the way users' scripts call them (gradio_client over HTTP)."""
from __future__ import annotations

import math

import pytest
from gradio_client import Client


@pytest.fixture(scope="module")
def client(server):
    return Client(server, verbose=False)


def test_trace_endpoint(client, lm):
    out = client.predict("The capital of France is", api_name="/trace")
    assert out["ids"] == lm.tokenize("The capital of France is")
    assert out["tokens"] == [lm.decode([i]) for i in out["ids"]]
    assert len(out["top"]) == 10 and out["top"][0]["token"] == " Paris"
    probs = [t["probability"] for t in out["top"]]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1


def test_distribution_endpoint_follows_temperature(client):
    cold = client.predict("The capital of France is", 0.3, 0, 1.0, api_name="/distribution")
    hot = client.predict("The capital of France is", 1.5, 0, 1.0, api_name="/distribution")
    assert cold[0]["id"] == hot[0]["id"] and cold[0]["probability"] > hot[0]["probability"]
    cut = client.predict("The capital of France is", 1.0, 3, 1.0, api_name="/distribution")
    assert math.isclose(sum(t["probability"] for t in cut[:3]), 1.0, rel_tol=1e-6)
    assert all(t["probability"] == 0 for t in cut[3:])


def test_generate_endpoint_is_repeatable(client):
    a = client.predict("Once upon a time", 6, 0.8, 40, 0.95, 7, api_name="/generate")
    b = client.predict("Once upon a time", 6, 0.8, 40, 0.95, 7, api_name="/generate")
    assert a == b and 1 <= len(a["ids"]) <= 6 and a["text"] == "".join(a["tokens"])
    greedy = client.predict("The capital of France is", 3, 0, 0, 1.0, 0, api_name="/generate")
    assert greedy["text"].startswith(" Paris")


@pytest.mark.parametrize("args, api", [
    (("",), "/trace"), (("   ",), "/trace"),
    (("hi", -1.0, 0, 1.0), "/distribution"), (("hi", float("nan"), 0, 1.0), "/distribution"),
    (("hi", 1e9, 0, 1.0), "/distribution"), (("hi", 1.0, -5, 1.0), "/distribution"),
    (("hi", 1.0, 10**7, 1.0), "/distribution"), (("hi", 1.0, 0, 0.0), "/distribution"),
    (("hi", 1.0, 0, 1.5), "/distribution"),
    (("hi", -1, 1.0, 0, 1.0, 0), "/generate"), (("hi", 10**6, 1.0, 0, 1.0, 0), "/generate"),
    (("hi", 3, 1.0, 0, 1.0, 1.5), "/generate"),
])
def test_bad_arguments_get_a_clear_error_and_the_next_call_works(client, args, api):
    with pytest.raises(Exception) as info:
        client.predict(*args, api_name=api)
    msg = str(info.value)
    assert "Traceback" not in msg and len(msg) < 400
    assert client.predict("Hello", api_name="/trace")["ids"]


# ---- the embedding lab -------------------------------------------------------------------------------
def test_analogy_endpoint(client, lm):
    out = client.predict(" king", " man", " woman", 5, api_name="/analogy")
    assert out["ids"] == {"a": lm.tokenize(" king")[0], "b": lm.tokenize(" man")[0], "c": lm.tokenize(" woman")[0]}
    assert len(out["results"]) == 5 and out["results"][0]["token"] == " queen"
    cos = [r["cosine"] for r in out["results"]]
    assert cos == sorted(cos, reverse=True) and all(r["id"] not in out["ids"].values() for r in out["results"])
    assert len(client.predict(" king", " man", " woman", api_name="/analogy")["results"]) == 10   # k defaults to 10


def test_direction_endpoint_keeps_words_as_typed(client, lm):
    out = client.predict(" cats", " cat", " dogs, dog", api_name="/direction")
    assert [s["word"] for s in out["scores"]] == [" dogs", " dog"]
    assert [s["id"] for s in out["scores"]] == [lm.tokenize(" dogs")[0], lm.tokenize(" dog")[0]]
    assert out["scores"][0]["projection"] > out["scores"][1]["projection"]


@pytest.mark.parametrize("args, api, says", [
    (("queen", " man", " woman", 5), "/analogy", "' queen'"),      # two tokens: the message offers the spaced one
    ((" king", " man", "", 5), "/analogy", "non-empty"),
    ((" king", " man", " woman", 0), "/analogy", "k"),
    ((" cats", " cat", ""), "/direction", "at least one word"),
    ((" cat", " cat", " dog"), "/direction", "same token"),
])
def test_lab_refusals_name_the_problem(client, args, api, says):
    with pytest.raises(Exception) as info:
        client.predict(*args, api_name=api)
    assert says in str(info.value) and "Traceback" not in str(info.value)


# ---- who wrote the answer ------------------------------------------------------------------------------
def test_attribution_endpoint_adds_up(client, lm):
    out = client.predict("The Eiffel Tower is in the city of", "", -1, api_name="/attribution")
    assert out["target"]["token"] == " Paris" and len(out["heads"]) == lm.cfg.n_layer
    assert all(len(row) == lm.cfg.n_head for row in out["heads"]) and len(out["mlps"]) == lm.cfg.n_layer
    total = out["embed"] + sum(map(sum, out["heads"])) + sum(out["mlps"])
    assert abs(total - out["total"]) < 1e-6 and abs(out["total"] - out["logit"]) <= 1e-3
    other = client.predict("The Eiffel Tower is in the city of", " London", 3, api_name="/attribution")
    assert other["target"]["id"] == lm.tokenize(" London")[0] and abs(other["total"] - other["logit"]) <= 1e-3


def test_patch_endpoint(client, lm):
    out = client.predict("The Eiffel Tower is in the city of", "The Colosseum is in the city of", " Paris", " Rome",
                         api_name="/patch")
    T = len(lm.tokenize("The Eiffel Tower is in the city of"))
    assert len(out["positions"]) == T and len(out["resid_pre"]) == lm.cfg.n_layer and len(out["resid_pre"][0]) == T
    assert out["clean"] > 0 > out["corrupted"]
    assert abs(out["resid_pre"][0][0] - out["corrupted"]) < 1e-3          # "The" is the same in both prompts
    with pytest.raises(Exception) as info:
        client.predict("The Eiffel Tower is in the city of", "Rome is a", " Paris", " Rome", api_name="/patch")
    assert "same number of tokens" in str(info.value)
