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


# ---- Chinese -------------------------------------------------------------------------------------------
def chart_words(lang: str) -> dict[str, str]:
    """The chart's texts in one language, from assets/sampling.js's TEXT table: key -> every string
    literal of that entry (the ${...} slots left out), joined."""
    import re
    from pathlib import Path

    js = (Path(__file__).resolve().parents[1] / "assets" / "sampling.js").read_text(encoding="utf-8")
    table = re.search(r"const TEXT = \{\n(.*?)\n  \};", js, re.S).group(1)
    block = re.search(rf"^    {lang}: \{{(.*?)\}},?$", table, re.S | re.M).group(1)
    entries = re.split(r"(?:^|,)\s*(\w+):\s*(?=[\"`(])", block)[1:]
    out = {}
    for key, body in zip(entries[::2], entries[1::2]):
        quoted = re.findall(r'"((?:[^"\\]|\\.)*)"', body)               # also those inside ${...}
        templates = [re.sub(r"\$\{[^}]*\}", " ", t) for t in re.findall(r"`((?:[^`\\]|\\.)*)`", body)]
        out[key] = " ".join(quoted + templates)
    return out


def test_the_distribution_speaks_chinese(tiny_trace, labels):
    """The chart is drawn in the page (assets/sampling.js) from data that has no words of the page:
    the payload and the records are the same in either language, and the chart's own Chinese table
    has every English entry, in Chinese (names and notation aside, tests/zh_text.py)."""
    from zh_text import stray_latin
    from viz.words import speaking

    z = tiny_trace.logits[-1]
    d = distribution(z, SamplingParams(temperature=0.7, top_p=0.9))
    with speaking("zh"):
        zh_payload, zh_records = distribution_payload(z, tiny_trace.T, labels), distribution_records(d, labels, 10)
    assert zh_payload == distribution_payload(z, tiny_trace.T, labels)
    assert zh_records == distribution_records(d, labels, 10)
    en, zh = chart_words("en"), chart_words("zh")
    assert en.keys() == zh.keys() and len(zh) >= 15
    assert {k: s for k, t in zh.items() if (s := stray_latin(t))} == {}
    assert {k for k, t in en.items() if stray_latin(t)} >= {"kept", "axis", "picked", "pickLine"}   # the check sees English
