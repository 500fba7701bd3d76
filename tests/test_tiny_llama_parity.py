"""Our Llama (model/transformer.py, run through model/lm.py) against Hugging Face `transformers`'
LlamaForCausalLM (eager attention, float32) on the same seeded random weights (tests/tiny_model.py:
2 layers, 4 query heads sharing 2 K/V heads, width 64, RoPE base 1e5, the real 49,152 vocabulary).

Checked on a few token sequences, every position: the logits; the residual stream after every
block against `output_hidden_states`; every head's attention pattern against `output_attentions`
(so query head h must read K/V head h // 2, not h % 2); and, through forward hooks on HF's
modules, q/k after RoPE, v, z, attention and MLP outputs and the MLP's hidden activations. The
KV-cache paths (`lm.step`, `lm.generate`) are checked against HF's full forward on the extended
sequence and against HF's greedy `generate`.

How the weights map: our fused attn.qkv rows are [q_proj; k_proj; v_proj] and mlp.up rows are
[gate_proj; up_proj]. Our Rotary rotates halves (x[i], x[i + D/2]), as HF's rotate_half does, so
no row reordering is needed here; the reordering exists only between a GGUF file (llama.cpp's
converter permutes Q/K rows for its adjacent-pair RoPE) and us, and the last tests check that
gguf_loader.unpermute_qk undoes exactly that converter's permutation.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")

from model.gguf_loader import unpermute_qk  # noqa: E402
from model.sampling import SamplingParams  # noqa: E402
from tiny_model import tiny_lm as make_tiny  # noqa: E402

ATOL = 1e-4            # float32 logits / residual stream, ours vs HF
PATTERN_ATOL = 3e-4    # our stored pattern is float16: half a float16 step near 1 is 2.4e-4
TEXTS = ["The cat sat on the mat because the cat was tired",
         "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
         "Hi"]


def sequences(lm) -> list[list[int]]:
    rng = np.random.default_rng(0)
    seqs = [lm.tokenize(TEXTS[0]), lm.tokenize(TEXTS[1], parse_special=True), lm.tokenize(TEXTS[2])]
    seqs.append(rng.integers(0, lm.cfg.vocab_size, 97).tolist())          # longer: RoPE at larger positions
    seqs.append([lm.cfg.vocab_size - 1])                                     # one token, the last id
    return seqs


def to_hf(lm):
    """A LlamaForCausalLM with our config and a copy of our weights."""
    cfg, sd = lm.cfg, lm.net.state_dict()
    H, KV, D, F = cfg.n_head, cfg.n_kv_head, cfg.d_head, cfg.d_mlp
    hf_cfg = transformers.LlamaConfig(
        vocab_size=cfg.vocab_size, hidden_size=cfg.d_model, intermediate_size=F,
        num_hidden_layers=cfg.n_layer, num_attention_heads=H, num_key_value_heads=KV, head_dim=D,
        max_position_embeddings=cfg.n_ctx, rms_norm_eps=cfg.norm_eps, hidden_act="silu",
        rope_parameters={"rope_type": "default", "rope_theta": cfg.rope_base},
        tie_word_embeddings=cfg.tied_embeddings, attention_bias=False, mlp_bias=False,
        bos_token_id=None, eos_token_id=None, pad_token_id=None, attn_implementation="eager")
    torch.manual_seed(1234)     # HF's own init is overwritten below; seeded only to be reproducible
    hf = transformers.LlamaForCausalLM(hf_cfg).to(torch.float32).eval()
    new = {"model.embed_tokens.weight": sd["embed.weight"], "model.norm.weight": sd["ln_final.weight"]}
    if not cfg.tied_embeddings:
        new["lm_head.weight"] = sd["unembed.weight"]
    for l in range(cfg.n_layer):
        o, h = f"blocks.{l}.", f"model.layers.{l}."
        q, k, v = sd[o + "attn.qkv.weight"].split([H * D, KV * D, KV * D])
        gate, up = sd[o + "mlp.up.weight"].split([F, F])
        new.update({h + "self_attn.q_proj.weight": q, h + "self_attn.k_proj.weight": k,
                    h + "self_attn.v_proj.weight": v, h + "self_attn.o_proj.weight": sd[o + "attn.o.weight"],
                    h + "mlp.gate_proj.weight": gate, h + "mlp.up_proj.weight": up,
                    h + "mlp.down_proj.weight": sd[o + "mlp.down.weight"],
                    h + "input_layernorm.weight": sd[o + "ln1.weight"],
                    h + "post_attention_layernorm.weight": sd[o + "ln2.weight"]})
    missing, unexpected = hf.load_state_dict({k: v.clone() for k, v in new.items()}, strict=False)
    assert not unexpected, unexpected
    assert missing == (["lm_head.weight"] if cfg.tied_embeddings else []), missing
    if cfg.tied_embeddings:       # tied: lm_head must be the embedding itself, not HF's random init
        assert hf.lm_head.weight.data_ptr() == hf.model.embed_tokens.weight.data_ptr()
    assert hf.config._attn_implementation == "eager"
    return hf


@torch.inference_mode()
def hf_run(hf, ids: list[int]) -> dict:
    """HF's forward on one sequence, batch dropped: logits, hidden states, attentions, and what
    forward hooks saw inside every layer (q/k after RoPE recomputed with HF's own functions)."""
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

    seen, handles = {}, []

    def keep(name, inputs=False):
        def hook(module, args, out):
            seen[name] = (args[0] if inputs else out)[0].detach().clone()
        return hook

    for l, layer in enumerate(hf.model.layers):
        a, m = layer.self_attn, layer.mlp
        for name, mod, inputs in [("q", a.q_proj, False), ("k", a.k_proj, False), ("v", a.v_proj, False),
                                  ("z", a.o_proj, True), ("attn_out", a.o_proj, False),
                                  ("pre", m.gate_proj, False), ("pre_linear", m.up_proj, False),
                                  ("post", m.down_proj, True), ("mlp_out", m, False), ("resid_post", layer, False)]:
            handles.append(mod.register_forward_hook(keep(f"{l}.{name}", inputs)))
    try:
        x = torch.tensor([ids])
        out = hf(input_ids=x, output_hidden_states=True, output_attentions=True, use_cache=False)
    finally:
        for h in handles:
            h.remove()
    cfg = hf.config
    D = cfg.head_dim
    cos, sin = hf.model.rotary_emb(out.hidden_states[0], torch.arange(len(ids))[None])
    for l in range(cfg.num_hidden_layers):
        q = seen[f"{l}.q"].view(len(ids), -1, D).transpose(0, 1)[None]      # (1, H, T, D)
        k = seen[f"{l}.k"].view(len(ids), -1, D).transpose(0, 1)[None]      # (1, KV, T, D)
        q, k = apply_rotary_pos_emb(q, k, cos, sin)
        seen[f"{l}.q"], seen[f"{l}.k"] = q[0], k[0]
        seen[f"{l}.v"] = seen[f"{l}.v"].view(len(ids), -1, D).transpose(0, 1)
        seen[f"{l}.z"] = seen[f"{l}.z"].view(len(ids), -1, D).transpose(0, 1)
    res = {k: v.numpy() for k, v in seen.items()}
    res["logits"] = out.logits[0].numpy()
    res["hidden_states"] = [h[0].numpy() for h in out.hidden_states]
    res["attentions"] = [a[0].numpy() for a in out.attentions]
    return res


@pytest.fixture(scope="module", params=["tied", "untied"])
def pair(request, tiny_lm):
    lm = tiny_lm if request.param == "tied" else make_tiny(seed=1, tied=False)
    return lm, to_hf(lm)


@pytest.fixture(scope="module")
def runs(pair):
    """(our trace, HF's run) for each sequence."""
    lm, hf = pair
    return [(lm.trace(ids), hf_run(hf, ids)) for ids in sequences(lm)]


def max_diff(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def test_hf_model_is_what_we_think(pair):
    lm, hf = pair
    ours = sum(p.numel() for p in lm.net.parameters())
    assert sum(p.numel() for p in hf.parameters()) == ours      # tied weights counted once by both
    assert hf.model.rotary_emb.inv_freq.shape == (lm.cfg.d_head // 2,)
    np.testing.assert_allclose(hf.model.rotary_emb.inv_freq.numpy(),
                               lm.net.blocks[0].attn.rotary.inv_freq.numpy(), rtol=1e-6)


def test_logits_match_at_every_position(pair, runs):
    lm, _ = pair
    for tr, ref in runs:
        assert max_diff(tr.logits, ref["logits"]) < ATOL, tr.token_ids[:5]
        assert max_diff(lm.forward(list(tr.token_ids)), ref["logits"]) < ATOL     # the plain pass too
        assert (tr.logits.argmax(-1) == ref["logits"].argmax(-1)).all()


def test_residual_stream_matches_hidden_states(pair, runs):
    """HF hidden_states: [embedding, after block 0, ..., after block L-2, final norm of the last
    block's output] (transformers ties the last entry to the normed output)."""
    lm, _ = pair
    L = lm.cfg.n_layer
    for tr, ref in runs:
        hs = ref["hidden_states"]
        assert len(hs) == L + 1
        np.testing.assert_array_equal(tr.act("hook_embed"), hs[0])          # a lookup: exact
        np.testing.assert_array_equal(tr.act("hook_resid_pre", 0), hs[0])
        for l in range(L):
            assert max_diff(tr.act("hook_resid_post", l), ref[f"{l}.resid_post"]) < ATOL, l
            if l + 1 < L:
                assert max_diff(tr.act("hook_resid_pre", l + 1), hs[l + 1]) < ATOL, l
        assert max_diff(tr.act("ln_final.hook_normalized"), hs[L]) < ATOL


def test_attention_patterns_match_for_every_layer_and_head(pair, runs):
    lm, _ = pair
    cfg = lm.cfg
    for tr, ref in runs:
        for l in range(cfg.n_layer):
            theirs = ref["attentions"][l]                                   # (H, T, T), zeros in the future
            ours = tr.act("attn.hook_pattern", l).astype(np.float32)
            assert ours.shape == theirs.shape == (cfg.n_head, tr.T, tr.T)
            for h in range(cfg.n_head):
                assert max_diff(ours[h], theirs[h]) < PATTERN_ATOL, (l, h)


def test_each_query_head_reads_its_groups_kv_head(pair, runs):
    """The GQA mapping, made visible: recomputing head h's pattern from our q and K/V head
    h // group gives HF's pattern; the other mapping (h % n_kv_head) does not."""
    lm, _ = pair
    cfg = lm.cfg
    assert cfg.group_size > 1 and [cfg.kv_head_of(h) for h in range(cfg.n_head)] == [0, 0, 1, 1]
    tr, ref = runs[0]

    def pattern(q, k):
        s = q @ k.T / np.sqrt(cfg.d_head)
        s[np.triu(np.ones_like(s, dtype=bool), 1)] = -np.inf
        e = np.exp(s - s.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    for l in range(cfg.n_layer):
        q, k = tr.act("attn.hook_q", l), tr.act("attn.hook_k", l)
        theirs = ref["attentions"][l]
        for h in range(cfg.n_head):
            assert max_diff(pattern(q[h], k[h // cfg.group_size]), theirs[h]) < 1e-5
            if h // cfg.group_size != h % cfg.n_kv_head:
                assert max_diff(pattern(q[h], k[h % cfg.n_kv_head]), theirs[h]) > 1e-2


def test_inside_each_block_matches(pair, runs):
    """q and k after RoPE element for element (same rotate-half layout as HF), v, z, the
    attention and MLP outputs, and the MLP hidden activations (stored float16: relative 1e-3)."""
    lm, _ = pair
    for tr, ref in runs:
        for l in range(lm.cfg.n_layer):
            for ours, theirs in [("attn.hook_q", "q"), ("attn.hook_k", "k"), ("attn.hook_v", "v"),
                                 ("attn.hook_z", "z"), ("hook_attn_out", "attn_out"), ("hook_mlp_out", "mlp_out")]:
                assert max_diff(tr.act(ours, l), ref[f"{l}.{theirs}"]) < ATOL, (l, ours)
            for ours, theirs in [("mlp.hook_pre", "pre"), ("mlp.hook_pre_linear", "pre_linear"),
                                 ("mlp.hook_post", "post")]:
                np.testing.assert_allclose(tr.act(ours, l).astype(np.float32), ref[f"{l}.{theirs}"],
                                           rtol=1e-3, atol=1e-4, err_msg=f"{l} {ours}")


def test_kv_cache_steps_match_hf_full_forward(pair):
    """lm.step appends one token at a time against cached keys/values: after every step, the new
    position's logits and residual stream equal HF's full forward on the extended sequence."""
    lm, hf = pair
    prompt = lm.tokenize("Water boils at")
    extra = lm.tokenize(" one hundred degrees Celsius") + [17, lm.cfg.vocab_size - 2]
    tr = lm.trace(prompt)
    cache = lm.cache_from_trace(tr, extra=len(extra))
    for tok in extra:
        tr = lm.step(tr, tok, cache)
        ref = hf_run(hf, list(tr.token_ids))
        assert max_diff(tr.logits[-1], ref["logits"][-1]) < ATOL, tr.T
        for l in range(lm.cfg.n_layer):
            assert max_diff(tr.act("hook_resid_post", l)[-1], ref[f"{l}.resid_post"][-1]) < ATOL
            assert max_diff(tr.act("attn.hook_pattern", l)[:, -1].astype(np.float32),
                            ref["attentions"][l][:, -1]) < PATTERN_ATOL
    assert max_diff(tr.logits, ref["logits"]) < ATOL        # the whole grown trace, prefix included
    tr.validate()


@torch.inference_mode()
def test_greedy_generation_matches_hf_generate(pair):
    lm, hf = pair
    ids = lm.tokenize("Once upon a time")
    n = 12
    ours = lm.generate(ids, n, temperature=0)
    out = hf.generate(torch.tensor([ids]), max_new_tokens=n, min_new_tokens=n, do_sample=False,
                      eos_token_id=None, pad_token_id=0)
    theirs = out[0, len(ids):].tolist()
    assert ours.new_ids == theirs[:len(ours.new_ids)]
    assert len(ours.new_ids) == n or ours.stopped_at_eos
    streamed = list(lm.stream(lm.trace(ids), n, SamplingParams(temperature=0)))
    assert list(streamed[-1].token_ids[len(ids):]) == ours.new_ids


# ---- the GGUF row order, on random weights -------------------------------------------------------------
def llamacpp_permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """convert_hf_to_gguf.py's LlamaModel.permute (n_head is already the K/V count for k_proj)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def rope_adjacent(x: np.ndarray, pos: np.ndarray, base: float) -> np.ndarray:
    """llama.cpp's RoPE for Llama (GGML rope mode 0): rotates adjacent pairs (x[2i], x[2i+1])."""
    D = x.shape[-1]
    theta = pos[:, None] * base ** (-np.arange(0, D, 2) / D)                # (T, D/2)
    c, s = np.cos(theta), np.sin(theta)
    out = np.empty_like(x)
    out[..., 0::2] = x[..., 0::2] * c - x[..., 1::2] * s
    out[..., 1::2] = x[..., 0::2] * s + x[..., 1::2] * c
    return out


def rope_half(x: np.ndarray, pos: np.ndarray, base: float) -> np.ndarray:
    """HF's (and our Rotary's) rotate-half RoPE: pairs (x[i], x[i + D/2])."""
    D = x.shape[-1]
    theta = pos[:, None] * base ** (-np.arange(0, D, 2) / D)
    c, s = np.cos(np.concatenate([theta, theta], -1)), np.sin(np.concatenate([theta, theta], -1))
    return x * c + np.concatenate([-x[..., D // 2:], x[..., :D // 2]], -1) * s


@pytest.mark.parametrize("n_head", [4, 2, 9, 3])
def test_unpermute_qk_undoes_the_llamacpp_converter(n_head):
    w = np.random.default_rng(n_head).standard_normal((n_head * 16, 24)).astype(np.float32)
    permuted = llamacpp_permute(w, n_head)
    assert not np.array_equal(permuted, w)
    np.testing.assert_array_equal(unpermute_qk(permuted, n_head), w)


def test_file_order_with_adjacent_rope_equals_hf_order_with_rotate_half():
    """Why the loader reorders: llama.cpp's adjacent-pair RoPE on the file's rows computes the
    same scores as rotate-half RoPE on HF's rows (the orders differ by one permutation per head,
    the same for q and k); rotate-half on the file's rows (no reordering) does not."""
    rng = np.random.default_rng(0)
    H, KV, D, C, T, base = 4, 2, 16, 32, 40, 1e5
    Wq, Wk = rng.standard_normal((H * D, C)), rng.standard_normal((KV * D, C))
    x, pos = rng.standard_normal((T, C)), np.arange(T, dtype=np.float64)

    def scores(Wq, Wk, rope):
        q = rope((x @ Wq.T).reshape(T, H, D).transpose(1, 0, 2), pos, base)
        k = rope((x @ Wk.T).reshape(T, KV, D).transpose(1, 0, 2), pos, base)
        return np.einsum("htd,hsd->hts", q, np.repeat(k, H // KV, axis=0))

    hf = scores(Wq, Wk, rope_half)
    fq, fk = llamacpp_permute(Wq, H), llamacpp_permute(Wk, KV)
    np.testing.assert_allclose(scores(fq, fk, rope_adjacent), hf, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(scores(unpermute_qk(fq, H), unpermute_qk(fk, KV), rope_half), hf,
                               rtol=1e-9, atol=1e-9)
    assert max_diff(scores(fq, fk, rope_half), hf) > 1.0
