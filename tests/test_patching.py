"""Activation patching: exact where it must be (agreeing positions change nothing, the only
differing position restores everything at layer 0) and equal to full re-runs with the edited
activation."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from model.names import act_name
from model.patching import KINDS, MAX_TOKENS, activation_patching, patch_steps


@pytest.fixture(scope="module")
def pair(tiny_lm):
    clean = tiny_lm.tokenize("The cat sat on the mat and")
    corrupt = tiny_lm.tokenize("The dog sat on the mat and")
    assert len(clean) == len(corrupt)
    diff = [i for i, (a, b) in enumerate(zip(clean, corrupt)) if a != b]
    assert len(diff) == 1
    answer, foil = tiny_lm.tokenize(" the")[0], tiny_lm.tokenize(" a")[0]
    return tiny_lm, clean, corrupt, diff[0], answer, foil, activation_patching(tiny_lm, clean, corrupt, answer, foil)


def test_clean_and_corrupted_metrics_are_the_models(pair):
    lm, clean, corrupt, _, a, f, r = pair
    for ids, value in ((clean, r.clean), (corrupt, r.corrupted)):
        z = lm.forward(ids)[-1]
        assert value == pytest.approx(float(z[a] - z[f]), abs=1e-4)
    assert r.resid_pre.shape == (lm.cfg.n_layer, len(clean)) and not np.isnan(r.mlp_out).any()


def test_patching_where_the_prompts_agree_changes_nothing(pair):
    lm, clean, _, d, _, _, r = pair
    for p in range(len(clean)):
        if p != d:       # the embedding at an agreeing position is the same in both runs
            assert r.resid_pre[0, p] == pytest.approx(r.corrupted, abs=1e-4)
    for kind in KINDS:   # before the first difference nothing differs at any layer (attention looks back only)
        grid = getattr(r, kind)
        np.testing.assert_allclose(grid[:, :d], r.corrupted, atol=1e-4)


def test_layer_0_at_the_only_differing_position_restores_the_clean_metric(pair):
    _, _, _, d, _, _, r = pair
    assert r.resid_pre[0, d] == pytest.approx(r.clean, abs=1e-4)
    assert r.restored(r.resid_pre)[0, d] == pytest.approx(1.0, abs=1e-4)


def _full_run_with(lm, ids, name, position, value, answer, foil) -> float:
    """The whole corrupted run again, with one activation edited through the tap at `name`."""
    def edit(_, x):
        x = x.clone()
        x[:, position] = torch.from_numpy(value)
        return x
    with lm._lock, torch.inference_mode():
        lm.net.attach(None)
        lm.net.attach_editors({name: edit})
        try:
            z = lm.net(torch.tensor([ids]), 0, None, True)[0, -1]
        finally:
            lm.net.attach_editors(None)
    return float(z[answer] - z[foil])


@pytest.mark.parametrize("kind,layer,position", [("resid_pre", 1, 3), ("attn_out", 0, 1), ("mlp_out", 1, 6),
                                                 ("attn_out", 1, 5), ("resid_pre", 0, 1)])
def test_patched_runs_equal_full_reruns_with_the_edited_activation(pair, kind, layer, position):
    lm, clean, corrupt, _, a, f, r = pair
    value = lm.trace(clean).act(f"hook_{kind}", layer)[position]
    expected = _full_run_with(lm, corrupt, act_name(f"hook_{kind}", layer), position, value, a, f)
    assert getattr(r, kind)[layer, position] == pytest.approx(expected, abs=1e-4)


def test_progress_steps_and_refusals(tiny_lm, pair):
    lm, clean, corrupt, _, a, f, _ = pair
    steps = list(patch_steps(lm, clean, corrupt, a, f, kinds=("resid_pre",)))
    assert [(d, t) for _, d, t in steps] == [(i + 1, lm.cfg.n_layer) for i in range(lm.cfg.n_layer)]
    assert np.isnan(steps[0][0].resid_pre[1:]).all() and not np.isnan(steps[-1][0].resid_pre).any()
    with pytest.raises(ValueError, match="same number of tokens"):
        activation_patching(lm, clean, corrupt[:-1], a, f)
    with pytest.raises(ValueError, match="at most"):
        activation_patching(lm, [5] * (MAX_TOKENS + 1), [6] * (MAX_TOKENS + 1), a, f)


def test_the_eiffel_tower_example_on_the_real_model(lm):
    clean, corrupt = lm.tokenize("The Eiffel Tower is in the city of"), lm.tokenize("The Colosseum is in the city of")
    a, f = lm.tokenize(" Paris")[0], lm.tokenize(" Rome")[0]
    r = activation_patching(lm, clean, corrupt, a, f, kinds=("resid_pre",))
    assert r.clean > 0 > r.corrupted
    restored = r.restored(r.resid_pre)
    assert restored[-1, -1] > 0.5                                      # late on, the last token carries it
    assert restored[:5, 1:4].max() > 0.5                               # early on, the subject's tokens carry it
