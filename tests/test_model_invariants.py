"""Properties every correct forward pass has, checked on the real default model."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from model import act_name
from model.names import LAYER_HOOKS, GLOBAL_HOOKS, split_name
from model.trace import attention_scores

L = 30


def test_config_matches_the_model_file(lm):
    c = lm.cfg
    assert (c.family, c.n_layer, c.n_head, c.n_kv_head, c.d_model, c.d_head, c.d_mlp, c.vocab_size, c.n_ctx) == \
        ("llama", 30, 9, 3, 576, 64, 1536, 49152, 8192)
    assert c.tied_embeddings and c.rope_base == 100000.0
    assert sum(lm.parameter_counts().values()) == 134_515_008


def test_trace_validates_and_has_every_documented_name(trace):
    trace.validate()
    names = set(trace.acts)
    for l in range(L):
        for hook in LAYER_HOOKS:
            assert act_name(hook, l) in names, act_name(hook, l)
    assert {"hook_embed", "ln_final.hook_normalized", "logits"} <= names
    assert "hook_pos_embed" not in names          # RoPE model: no position vectors are added


def test_tap_names_come_from_the_module_tree(lm):
    for name in lm.net.taps:
        layer, hook = split_name(name)
        assert hook in (LAYER_HOOKS if layer is not None else GLOBAL_HOOKS), name


def test_attention_rows_sum_to_one_and_future_is_zero(trace):
    T = trace.T
    upper = np.triu(np.ones((T, T), dtype=bool), 1)
    for l in range(L):
        p = trace.act("attn.hook_pattern", l).astype(np.float32)
        np.testing.assert_allclose(p.sum(-1), 1.0, atol=2e-3)
        assert (p[:, upper] == 0).all()


def test_residual_stream_adds_up(trace):
    for l in range(L):
        pre, mid, post = (trace.act(h, l) for h in ("hook_resid_pre", "hook_resid_mid", "hook_resid_post"))
        np.testing.assert_allclose(mid, pre + trace.act("hook_attn_out", l), rtol=0, atol=1e-3)
        np.testing.assert_allclose(post, mid + trace.act("hook_mlp_out", l), rtol=0, atol=1e-3)
        if l + 1 < L:
            np.testing.assert_array_equal(post, trace.act("hook_resid_pre", l + 1))
    np.testing.assert_array_equal(trace.act("hook_resid_pre", 0), trace.acts["hook_embed"])


def test_derived_scores_reproduce_the_stored_pattern(trace):
    for l in (0, 7, 29):
        scores = trace.act("attn.hook_attn_scores", l)
        assert np.isneginf(scores[:, 0, 1:]).all()
        e = np.exp(scores - scores.max(-1, keepdims=True))
        np.testing.assert_allclose(e / e.sum(-1, keepdims=True),
                                   trace.act("attn.hook_pattern", l).astype(np.float32), atol=1e-3)


def test_manual_attention_equals_sdpa(trace):
    """The hand-written attention and PyTorch's fused kernel agree on the same q, k, v."""
    for l in (0, 15, 29):
        q, k, v = (torch.from_numpy(trace.act(f"attn.hook_{x}", l)) for x in "qkv")
        G = q.shape[0] // k.shape[0]
        ref = F.scaled_dot_product_attention(q[None], k.repeat_interleave(G, 0)[None],
                                             v.repeat_interleave(G, 0)[None], is_causal=True)[0]
        np.testing.assert_allclose(trace.act("attn.hook_z", l), ref.numpy(), atol=2e-4)


def test_trace_logits_equal_plain_forward(lm, trace):
    np.testing.assert_allclose(trace.logits, lm.forward(trace.token_ids), atol=1e-4)


def test_first_token_is_an_attention_sink(trace):
    """The model file's known behaviour: most heads send most attention to position 0."""
    share = np.mean([trace.act("attn.hook_pattern", l)[:, 3:, 0].astype(np.float32).mean() for l in range(2, L)])
    assert share > 0.4


def test_kv_cache_steps_equal_a_full_forward(lm):
    """n decode steps that reuse cached keys/values give the same activations as one full pass
    over the same tokens, to float32 round-off (1e-3 absolute on logits, pattern to float16)."""
    tr = lm.trace("Water boils at")
    for tok in lm.tokenize(" one hundred degrees"):
        tr = lm.step(tr, tok)
    full = lm.trace(list(tr.token_ids))
    tr.validate()
    np.testing.assert_allclose(tr.logits, full.logits, atol=1e-3)
    for name in full.acts.stored:
        np.testing.assert_allclose(tr.acts[name].astype(np.float32), full.acts[name].astype(np.float32),
                                   atol=2e-3, rtol=1e-3, err_msg=name)


def test_generate_fast_path_equals_stream(lm):
    from model import SamplingParams
    params = SamplingParams(temperature=0.8, top_k=40, top_p=0.95, seed=7)
    g = lm.generate("Once upon a time", 8, 0.8, 40, 0.95, 7)
    streamed = list(lm.stream(lm.trace("Once upon a time"), 8, params))
    assert g.new_ids == list(streamed[-1].token_ids[streamed[-1].n_prompt:])


def test_greedy_generation_is_deterministic_and_sensible(lm):
    g = lm.generate("The capital of France is", 5, temperature=0)
    assert g.text.startswith(" Paris")
    assert g == lm.generate("The capital of France is", 5, temperature=0)


def test_logit_lens_last_row_is_the_real_prediction(lm, trace):
    lens = lm.logit_lens(trace, [0, trace.T - 1], k=5)
    assert lens.top_ids.shape == (L + 1, 2, 5)
    np.testing.assert_array_equal(lens.target_ids, trace.logits[[0, trace.T - 1]].argmax(-1))
    np.testing.assert_array_equal(lens.top_ids[-1, :, 0], lens.target_ids)
    assert (lens.target_ranks[-1] == 0).all()
    np.testing.assert_allclose(lens.top_probs.sum(-1) <= 1.0 + 1e-5, True)


@pytest.mark.parametrize("bad", ["", [], [49152], [-1]])
def test_bad_prompts_are_refused_clearly(lm, bad):
    with pytest.raises(ValueError):
        lm.trace(bad)


def test_neighbours_are_semantic(lm):
    n = lm.neighbours(lm.tokenize(" king"), k=5)
    words = [lm.decode([int(i)]).strip().lower() for i in n.neighbour_ids[0]]
    assert "queen" in words or "kings" in words
    assert np.all(np.diff(n.cosine[0]) <= 1e-6)


def test_logit_lens_reuses_known_positions_exactly(lm):
    tr = lm.trace("One two three four")
    before = lm.logit_lens(tr, [1, 2, 3])
    longer = lm.step(tr, lm.tokenize(" five")[0])
    reused = lm.logit_lens(longer, [2, 3, 4], known=before)
    fresh = lm.logit_lens(longer, [2, 3, 4])
    for field in ("top_ids", "target_ids", "target_ranks"):
        np.testing.assert_array_equal(getattr(reused, field), getattr(fresh, field))
    np.testing.assert_allclose(reused.top_probs, fresh.top_probs, atol=1e-5)
    np.testing.assert_allclose(reused.target_probs, fresh.target_probs, atol=1e-5)
