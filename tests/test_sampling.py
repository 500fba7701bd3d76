"""Sampling is a set of pure functions: check their properties on real and generated logits."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from model.sampling import SamplingParams, distribution, records, sample

logit_vectors = arrays(np.float32, st.integers(2, 64), elements=st.floats(-30, 30, width=32))


@given(logit_vectors, st.floats(0.05, 5))
@settings(max_examples=200, deadline=None)
def test_probabilities_sum_to_one_and_argmax_is_stable(z, T):
    d = distribution(z, SamplingParams(temperature=T))
    assert math.isclose(d.probs.sum(), 1.0, abs_tol=1e-9)
    assert d.probs[np.argmax(z)] == d.probs.max()


@given(logit_vectors, st.floats(0.05, 3), st.floats(0.05, 3))
@settings(max_examples=200, deadline=None)
def test_entropy_does_not_fall_as_temperature_rises(z, t1, t2):
    lo, hi = sorted((t1, t2))
    e_lo = distribution(z, SamplingParams(temperature=lo)).entropy_bits
    e_hi = distribution(z, SamplingParams(temperature=hi)).entropy_bits
    assert e_hi >= e_lo - 1e-9


def test_real_logits_temperature_and_greedy(trace):
    z = trace.logits[-1]
    greedy = distribution(z, SamplingParams(temperature=0))
    assert greedy.probs[np.argmax(z)] == 1.0 and greedy.entropy_bits == 0
    assert sample(greedy, 5) == int(np.argmax(z))
    r = records(distribution(z, SamplingParams(temperature=2.0)), 3)
    assert r[0].id == int(np.argmax(z)) and r[0].scaled_logit == pytest.approx(r[0].logit / 2)


def test_top_k_and_top_p_cut_the_tail(trace):
    z = trace.logits[-1]
    k = distribution(z, SamplingParams(top_k=5))
    assert k.n_kept == 5 and set(np.flatnonzero(k.kept)) == set(k.top(5).tolist())
    p = distribution(z, SamplingParams(top_p=0.5))
    order = p.top(len(z))
    mass = np.cumsum(p.probs_t[order])
    assert p.n_kept == int(np.searchsorted(mass, 0.5) + 1)
    assert math.isclose(p.probs.sum(), 1.0, abs_tol=1e-9)


def test_sampling_is_seeded_by_seed_and_position(trace):
    d = distribution(trace.logits[-1], SamplingParams(temperature=1.5, seed=3))
    assert sample(d, 10) == sample(d, 10)
    picks = {sample(distribution(trace.logits[-1], SamplingParams(temperature=1.5, seed=s)), 10) for s in range(30)}
    assert len(picks) > 1


@pytest.mark.parametrize("kw", [dict(temperature=-1), dict(temperature=float("nan")), dict(temperature=float("inf")),
                                dict(temperature=1e9), dict(top_k=-1), dict(top_k=1.5), dict(top_p=0),
                                dict(top_p=1.5), dict(seed=-1), dict(seed="x"), dict(seed=2.5)])
def test_out_of_range_settings_are_refused(kw):
    with pytest.raises(ValueError):
        SamplingParams(**kw)


def test_top_k_above_vocabulary_is_refused(trace):
    with pytest.raises(ValueError, match="vocabulary"):
        distribution(trace.logits[-1], SamplingParams(top_k=10**6))


@pytest.mark.parametrize("T", [3.98e-308, 1e-30, 5e-324])
def test_tiny_temperatures_behave_like_greedy(trace, T):
    d = distribution(trace.logits[-1], SamplingParams(temperature=T))
    assert np.isfinite(d.probs).all() and d.probs[np.argmax(trace.logits[-1])] == pytest.approx(1.0)
