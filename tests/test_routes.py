"""Information-flow routes: importances are shares (each sum's terms add to 1), a term equal to the
whole sum takes it all, GQA's shared values are used, and the route is read from the top."""
from __future__ import annotations

import numpy as np
import pytest

from model.routes import Contributions, _proximity, contributions, node_readout, route


@pytest.fixture(scope="module")
def contrib(tiny_lm):
    tr = tiny_lm.trace("The cat sat on the mat because the cat")
    return tiny_lm, tr, contributions(tiny_lm, tr)


def test_each_sums_terms_share_one(contrib):
    lm, tr, c = contrib
    np.testing.assert_allclose(c.attn.sum((2, 3)) + c.resid, 1.0, atol=1e-5)
    np.testing.assert_allclose(c.mid + c.mlp, 1.0, atol=1e-5)
    assert (c.attn >= 0).all() and np.triu(c.attn.sum(2)[0], k=1).max() == 0          # no share from future keys


def test_the_attention_terms_rebuild_the_attention_output(contrib):
    """The terms the importances are measured on are the real ones: A * (v W_O) summed over heads and
    keys is the block's attention output (bias aside), with GQA's shared value heads."""
    lm, tr, _ = contrib
    cfg = lm.cfg
    C, H, D = cfg.d_model, cfg.n_head, cfg.d_head
    for l in range(cfg.n_layer):
        W_O = lm.net.blocks[l].attn.o.weight.detach().float().numpy().reshape(C, H, D)
        v = tr.act("attn.hook_v", l)[[cfg.kv_head_of(h) for h in range(H)]]
        A = tr.act("attn.hook_pattern", l).astype(np.float32)
        rebuilt = np.einsum("hij,hjd,chd->ic", A, v, W_O)
        np.testing.assert_allclose(rebuilt, tr.act("hook_attn_out", l), atol=2e-3)


def test_proximity_of_hand_built_sums():
    y = np.array([1.0, 2.0, 0.0])
    terms = np.array([[1.0, 2.0, 0.0], [0.0, 0.0, 0.0], [-1.0, -2.0, 0.0]])
    assert _proximity(y, terms).tolist() == [3.0, 0.0, 0.0]        # the whole sum, nothing, the opposite


def test_route_reads_down_from_the_prediction():
    L, T, H = 2, 3, 1
    attn = np.zeros((L, T, H, T))
    attn[1, 2, 0, 0] = 0.6            # layer 1: position 2 takes 60% from position 0
    attn[0, 0, 0, 0] = 0.5            # layer 0: position 0 from itself (attention)
    resid = np.full((L, T), 0.4)
    c = Contributions(attn, resid, np.ones((L, T)), np.zeros((L, T)))
    r = route(c, 2, 0.3)
    assert {(l, j, i) for l, j, i, *_ in r.edges} == {(1, 0, 2), (1, 2, 2), (0, 0, 0), (0, 2, 2)}
    assert (2, 2) in r.nodes and (0, 1) not in r.nodes
    with pytest.raises(ValueError):
        route(c, 3, 0.3)


def test_node_readout_at_the_top_is_the_models_prediction(contrib):
    lm, tr, c = contrib
    L = lm.cfg.n_layer
    out = node_readout(lm, tr, [(L, tr.T - 1), (0, 0)])
    assert out[(L, tr.T - 1)][0] == int(np.argmax(tr.logits[-1]))


def test_routes_figure_speaks_chinese(contrib):
    from zh_text import stray_in_figure
    from viz.routes import routes_figure
    from viz.words import speaking
    lm, tr, c = contrib
    r = route(c, tr.T - 1, 0.05)
    with speaking("zh"):
        fig = routes_figure(r, tr, node_readout(lm, tr, r.nodes), lambda i: lm.decode([i]))
    assert stray_in_figure(fig, ["The", "cat", "sat", "on", "the", "mat", "because"]) == {}
