"""Next-token distribution: the payload the page computes the chart from, and the API's records.
The chart drawn from it is checked in Chromium (tests/browser/test_in_page_views.py).

Any logits will do, so they come from the tiny random-weight model (tests/tiny_model.py); its
labels are the default model's (same tokenizer)."""
from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from model.sampling import SamplingParams, distribution
from viz.distribution import distribution_payload, distribution_records


@pytest.fixture(scope="module")
def labels(tiny_lm):
    return lambda i: tiny_lm.tokenizer.pieces([i])[0].display


def ranked(dist, n):
    """Top n by logit, ties by id: an independent (full-sort) reference."""
    return np.lexsort((np.arange(len(dist.logits)), -dist.logits))[:n]


def test_payload_carries_every_logit_exactly(tiny_trace, labels):
    z = tiny_trace.logits[-1]
    payload = json.loads(json.dumps(distribution_payload(z, tiny_trace.T, labels)))     # as the page receives it
    back = np.frombuffer(base64.b64decode(payload["logits"]), dtype="<f4")
    np.testing.assert_array_equal(back, z.astype(np.float32))
    assert payload["position"] == tiny_trace.T
    top = np.argsort(-z, kind="stable")[:64]
    assert [int(k) for k in payload["labels"]] == [int(i) for i in top]
    assert payload["labels"][str(int(top[0]))] == labels(int(top[0]))


def test_payload_refuses_bad_logits(labels):
    with pytest.raises(ValueError, match="finite"):
        distribution_payload(np.array([1.0, np.nan]), 3, labels)
    with pytest.raises(ValueError, match="finite"):
        distribution_payload(np.zeros((2, 2)), 3, labels)


def test_records_are_the_top_tokens(tiny_trace, labels):
    d = distribution(tiny_trace.logits[-1], SamplingParams(temperature=0.9, top_k=3))
    recs = distribution_records(d, labels, 8)
    ids = ranked(d, 8)
    assert [r["id"] for r in recs] == list(ids)
    assert [r["token"] for r in recs] == [labels(int(i)) for i in ids]
    assert [r["probability"] for r in recs] == [float(d.probs[i]) for i in ids]
    assert [r["logit"] for r in recs] == [float(d.logits[i]) for i in ids]
    assert abs(sum(r["probability"] for r in recs) - 1) < 1e-9      # top-k 3: all mass in the first 3


def test_records_refuse_bad_input(tiny_trace, labels):
    d = distribution(tiny_trace.logits[-1], SamplingParams())
    with pytest.raises(ValueError, match="n must"):
        distribution_records(d, labels, 0)
    with pytest.raises(ValueError, match="Distribution"):
        distribution_records(tiny_trace.logits[-1], labels)
