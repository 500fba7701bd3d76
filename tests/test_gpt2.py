"""GPT-2 from a Hugging Face directory, run by our own Transformer: checked against Hugging Face
`transformers` (eager attention) on a seeded tiny GPT-2 written to a temporary directory.

The tiny model: 2 layers, 4 heads, width 64, 64 positions, and a byte-level BPE vocabulary of ~320
tokens trained here (vocab.json + merges.txt, `<|endoftext|>` last as in GPT-2). Its weights are
randomised beyond transformers' initialisation (LayerNorm gains and all biases too), so that a
swapped or untransposed matrix anywhere changes the logits. `transformers` is a test-only
dependency (requirements-dev.txt).
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")

from model import load_model  # noqa: E402
from model.hf_gpt2 import HFFormatError, read_hf_gpt2  # noqa: E402
from model.tokenizer import Tokenizer  # noqa: E402

N_LAYER, N_HEAD, N_EMBD, N_CTX = 2, 4, 64, 64
CORPUS = [
    "The cat sat on the mat. The dog sat on the log. A bird sang in the tree.",
    "Once upon a time there was a small model that learned to read and write.",
    "Numbers: 1, 2, 3, 10, 42, 2024 and 3.14159; prices like $5.99 or 100%.",
    "Café, naïve, résumé — Straße. 日本語のテキスト. Emoji 🙂 too.",
    "def f(x):\n    return x * 2\n\nprint(f(21))",
    "she said: \"it's fine\", and they'll go; we're done, I'd think, you've seen.",
] * 3
PROMPTS = ["The cat sat on the", "Once upon a time", "Numbers: 1, 2, 3", "Café 🙂 naïve", "x"]


def _write_tokenizer(d) -> int:
    """Train a small byte-level BPE; write GPT-2's vocab.json/merges.txt; return the eos id."""
    from tokenizers import Tokenizer as HFTok
    from tokenizers import models, pre_tokenizers, trainers

    tok = HFTok(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=320, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=["<|endoftext|>"], show_progress=False)
    tok.train_from_iterator(CORPUS, trainer)
    vocab = tok.model.get_vocab() if hasattr(tok.model, "get_vocab") else tok.get_vocab(with_added_tokens=False)
    merges = json.loads(tok.to_str())["model"]["merges"]
    # GPT-2 puts <|endoftext|> last: renumber the others 0..N-2 in their order.
    others = sorted((i, t) for t, i in vocab.items() if t != "<|endoftext|>")
    new_vocab = {t: n for n, (_, t) in enumerate(others)}
    new_vocab["<|endoftext|>"] = len(new_vocab)
    (d / "vocab.json").write_text(json.dumps(new_vocab, ensure_ascii=False), encoding="utf-8")
    lines = [m if isinstance(m, str) else " ".join(m) for m in merges]
    (d / "merges.txt").write_text("#version: 0.2\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return new_vocab["<|endoftext|>"]


def _tiny_gpt2(vocab_size: int, eos: int, tied: bool, seed: int):
    cfg = transformers.GPT2Config(vocab_size=vocab_size, n_positions=N_CTX, n_embd=N_EMBD, n_layer=N_LAYER,
                                  n_head=N_HEAD, bos_token_id=eos, eos_token_id=eos, tie_word_embeddings=tied,
                                  activation_function="gelu_new")
    torch.manual_seed(seed)
    m = transformers.GPT2LMHeadModel(cfg)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if ".ln_" in name or name.startswith("transformer.ln_f"):
                p.copy_((1.0 if name.endswith("weight") else 0.0) + 0.2 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn_like(p))
            else:
                p.copy_(0.15 * torch.randn_like(p))
    return m.eval()


@pytest.fixture(scope="module")
def hf_dirs(tmp_path_factory):
    """Two checkpoints sharing one tokenizer: tied embeddings in model.safetensors, and untied
    (an lm_head of its own) in pytorch_model.bin with tokenizer.json instead of vocab/merges."""
    tied = tmp_path_factory.mktemp("gpt2_tied")
    eos = _write_tokenizer(tied)
    V = len(json.loads((tied / "vocab.json").read_text(encoding="utf-8")))
    _tiny_gpt2(V, eos, tied=True, seed=0).save_pretrained(tied, safe_serialization=True)

    untied = tmp_path_factory.mktemp("gpt2_untied")
    m = _tiny_gpt2(V, eos, tied=False, seed=1)
    m.config.save_pretrained(untied)
    torch.save(m.state_dict(), untied / "pytorch_model.bin")
    ref_tok = transformers.AutoTokenizer.from_pretrained(tied)
    ref_tok.backend_tokenizer.save(str(untied / "tokenizer.json"))
    return {"tied": tied, "untied": untied, "eos": eos, "V": V}


@pytest.fixture(scope="module")
def ref(hf_dirs):
    return {k: transformers.GPT2LMHeadModel.from_pretrained(hf_dirs[k], attn_implementation="eager").eval()
            for k in ("tied", "untied")}


@pytest.fixture(scope="module")
def ref_tok(hf_dirs):
    return transformers.AutoTokenizer.from_pretrained(hf_dirs["tied"])


@pytest.fixture(scope="module")
def lms(hf_dirs):
    return {k: load_model(hf_dirs[k], device="cpu") for k in ("tied", "untied")}


def test_config_is_read_from_config_json(lms, hf_dirs):
    c = lms["tied"].cfg
    assert (c.family, c.n_layer, c.n_head, c.n_kv_head, c.d_model, c.d_mlp, c.vocab_size, c.n_ctx) == \
        ("gpt2", N_LAYER, N_HEAD, N_HEAD, N_EMBD, 4 * N_EMBD, hf_dirs["V"], N_CTX)
    assert c.tied_embeddings and not lms["untied"].cfg.tied_embeddings
    assert not c.uses_rope and c.norm_kind == "layer" and c.mlp_kind == "gelu" and c.has_bias
    assert lms["untied"].net.unembed is not None and lms["tied"].net.unembed is None


def test_parameter_count_matches_transformers(lms, ref):
    for k in ("tied", "untied"):
        assert sum(lms[k].parameter_counts().values()) == ref[k].num_parameters(), k


def test_tokenizer_matches_transformers(lms, ref_tok, hf_dirs):
    texts = PROMPTS + CORPUS[:6] + ["", " leading space", "tabs\tand\nnewlines\n\n", "don't WE'LL 123456",
                                    "  two spaces", "中文 and ascii"]
    for k in ("tied", "untied"):            # vocab.json + merges.txt, and tokenizer.json
        tok = lms[k].tokenizer
        assert tok.vocab_size == hf_dirs["V"]
        for t in texts:
            ids = ref_tok(t, add_special_tokens=False)["input_ids"]
            assert tok.encode(t) == ids, (k, t)
            assert tok.decode(ids) == ref_tok.decode(ids) == t
    tok = lms["tied"].tokenizer
    assert tok.eos_ids == {hf_dirs["eos"]} and tok.special_ids == {hf_dirs["eos"]}
    assert tok.encode("a<|endoftext|>b", parse_special=True)[1] == hf_dirs["eos"]
    assert hf_dirs["eos"] not in tok.encode("a<|endoftext|>b")       # typed text stays text
    assert tok.pieces([hf_dirs["eos"]])[0].is_special


def test_tokenizer_has_no_chat_template_and_survives_json(lms):
    tok = lms["tied"].tokenizer
    assert not tok.has_chat and tok.default_system is None
    for call in (tok.encode_chat, tok.chat_prompt):
        with pytest.raises(ValueError, match="this model has no chat template"):
            call("hello")
    again = Tokenizer.from_json(tok.to_json())
    assert not again.has_chat and again.eos_ids == tok.eos_ids and again.special_ids == tok.special_ids
    assert again.encode(CORPUS[3]) == tok.encode(CORPUS[3])


@pytest.mark.parametrize("kind", ["tied", "untied"])
def test_logits_and_hidden_states_match_transformers(lms, ref, kind):
    lm, m = lms[kind], ref[kind]
    worst = 0.0
    for prompt in PROMPTS:
        tr = lm.trace(prompt)
        with torch.no_grad():
            out = m(torch.tensor([list(tr.token_ids)]), output_hidden_states=True, output_attentions=True)
        logits = out.logits[0].numpy()
        np.testing.assert_allclose(tr.logits, logits, atol=1e-4, rtol=0)
        worst = max(worst, float(np.abs(tr.logits - logits).max()))
        np.testing.assert_allclose(lm.forward(tr.token_ids), logits, atol=1e-4, rtol=0)
        hs = [h[0].numpy() for h in out.hidden_states]          # embed+pos, after block 0, ..., after ln_f
        np.testing.assert_allclose(tr.act("hook_resid_pre", 0), hs[0], atol=1e-5)
        for l in range(N_LAYER - 1):
            np.testing.assert_allclose(tr.act("hook_resid_post", l), hs[l + 1], atol=1e-4)
        np.testing.assert_allclose(tr.act("ln_final.hook_normalized"), hs[-1], atol=1e-4)
        for l in range(N_LAYER):                                  # per head: the q/k/v split is right
            np.testing.assert_allclose(tr.act("attn.hook_pattern", l).astype(np.float32),
                                       out.attentions[l][0].numpy(), atol=2e-3)
    assert worst < 1e-4


@pytest.mark.parametrize("kind", ["tied", "untied"])
def test_greedy_generation_matches_transformers(lms, ref, kind):
    lm, m = lms[kind], ref[kind]
    for prompt in PROMPTS[:3]:
        ids = lm.tokenize(prompt)
        ours = lm.generate(prompt, max_new_tokens=24, temperature=0.0)
        with torch.no_grad():
            theirs = m.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                max_new_tokens=24, do_sample=False, pad_token_id=m.config.eos_token_id)
        assert ours.new_ids == theirs[0, len(ids):].tolist(), prompt


@pytest.mark.parametrize("kind", ["tied", "untied"])
def test_trace_validates_with_position_vectors(lms, kind):
    """Every documented activation with its shape, hook_pos_embed (T, C) included. It fails while
    Transformer.forward adds the batch axis after the position tap instead of before it."""
    tr = lms[kind].trace(PROMPTS[0])
    assert tr.act("hook_pos_embed").shape == (tr.T, N_EMBD)
    tr.validate()


def test_position_vectors_are_the_learned_table(lms, ref):
    lm, m = lms["tied"], ref["tied"]
    tr = lm.trace(PROMPTS[0])
    wpe = m.transformer.wpe.weight.detach().numpy()
    np.testing.assert_array_equal(tr.act("hook_pos_embed"), wpe[:tr.T])
    np.testing.assert_array_equal(lm.net.pos_embed.weight.detach().numpy(), wpe)
    np.testing.assert_allclose(tr.act("hook_resid_pre", 0), tr.act("hook_embed") + tr.act("hook_pos_embed"), atol=1e-6)


@pytest.mark.parametrize("kind", ["tied", "untied"])
def test_kv_cache_step_equals_full_forward(lms, kind):
    lm = lms[kind]
    tr = lm.trace(PROMPTS[1])
    extra = lm.tokenize(" there was")
    cache = lm.cache_from_trace(tr, extra=len(extra))
    for t in extra:
        tr = lm.step(tr, t, cache)
    full = lm.trace(list(tr.token_ids))
    tr.validate()
    assert tr.act("hook_pos_embed").shape == (tr.T, N_EMBD)
    for name in full.acts.stored:
        a = full.acts[name]
        tol = 2e-3 if a.dtype == np.float16 else 2e-4        # float16 hooks: one rounding step apart at most
        np.testing.assert_allclose(tr.acts[name].astype(np.float32), a.astype(np.float32), atol=tol, rtol=tol,
                                   err_msg=name)
    np.testing.assert_allclose(tr.logits, full.logits, atol=1e-5)


def test_invariants_hold(lms):
    lm = lms["untied"]
    tr = lm.trace(CORPUS[0])
    T = tr.T
    upper = np.triu(np.ones((T, T), dtype=bool), 1)
    for l in range(N_LAYER):
        p = tr.act("attn.hook_pattern", l).astype(np.float32)
        np.testing.assert_allclose(p.sum(-1), 1.0, atol=2e-3)
        assert (p[:, upper] == 0).all()
        pre, mid, post = (tr.act(h, l) for h in ("hook_resid_pre", "hook_resid_mid", "hook_resid_post"))
        np.testing.assert_allclose(mid, pre + tr.act("hook_attn_out", l), atol=1e-5)
        np.testing.assert_allclose(post, mid + tr.act("hook_mlp_out", l), atol=1e-5)
    W_U = lm.net.W_U.detach().numpy()
    np.testing.assert_allclose(tr.logits, tr.act("ln_final.hook_normalized") @ W_U.T, atol=1e-4)
    lens = lm.logit_lens(tr, positions=[0, T - 1])
    assert (lens.target_ranks[-1] == 0).all()


def test_command_line_runs_on_the_directory(hf_dirs, capsys):
    from model.__main__ import main

    assert main(["hello", "--model", str(hf_dirs["tied"]), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "top 10 next tokens" in out and hf_dirs["tied"].name in out


def test_model_card_and_position_note_describe_gpt2(lms):
    from viz.embeddings import position_note
    from viz.model_card import count_parameters, model_card_html, shape_of

    lm = lms["untied"]
    counts = lm.parameter_counts()
    assert count_parameters(shape_of(lm.cfg)) == counts
    card = model_card_html(lm.cfg, counts, "cpu", "float32")
    assert "GPT-2 family" in card and "learned position vectors added" in card
    assert "grouped-query" not in card and "standard multi-head attention" in card
    note = position_note(lm.cfg)
    assert "learned position vector" in note and f"{N_CTX:,} in all" in note and "RoPE" not in note


def test_position_embedding_figure(lms):
    from viz.positions import position_embedding_figure

    lm = lms["tied"]
    tr = lm.trace(PROMPTS[0])
    P = tr.act("hook_pos_embed")
    fig = position_embedding_figure(tr)
    vec, cos = fig.data
    np.testing.assert_array_equal(np.asarray(vec.z), P[:, :64])
    assert list(vec.y) == list(range(tr.T)) and len(vec.x) == min(64, N_EMBD)
    Pn = P / np.linalg.norm(P, axis=1, keepdims=True)
    np.testing.assert_allclose(np.asarray(cos.z), Pn @ Pn.T, atol=1e-5)
    np.testing.assert_allclose(np.diag(np.asarray(cos.z)), 1.0, atol=1e-5)

    table = lm.net.pos_embed.weight.detach().numpy()
    fig3 = position_embedding_figure(tr, table)
    assert len(fig3.data) == 3 and np.asarray(fig3.data[2].z).shape == (N_CTX, N_CTX)
    assert fig3.layout.shapes[0].x1 == pytest.approx(tr.T - 0.5)
    with pytest.raises(ValueError, match="does not match"):
        position_embedding_figure(tr, table[::-1].copy())
    with pytest.raises(ValueError, match="position table"):
        position_embedding_figure(tr, table[:, :10])
    fig.to_json()                                          # serialisable for the page


def test_position_figure_explains_rotary_models(lms):
    """A Llama-family model has no position vectors: the figure says positions are rotations."""
    from model.config import ModelConfig
    from model.lm import LanguageModel
    from model.transformer import Transformer
    from viz.positions import position_embedding_figure

    tok = lms["tied"].tokenizer
    cfg = ModelConfig(name="tiny-llama", family="llama", n_layer=1, n_head=4, n_kv_head=2, d_model=32, d_mlp=64,
                      vocab_size=tok.vocab_size, n_ctx=32)
    torch.manual_seed(0)
    tr = LanguageModel(Transformer(cfg), tok, torch.device("cpu"), "random").trace("The cat")
    assert "hook_pos_embed" not in tr.acts
    fig = position_embedding_figure(tr)
    assert not fig.data and "rotations" in fig.layout.annotations[0].text
    with pytest.raises(ValueError, match="RoPE"):
        position_embedding_figure(tr, np.zeros((32, 32), np.float32))


def test_unsupported_checkpoints_are_refused_clearly(hf_dirs, tmp_path):
    import shutil

    d = tmp_path / "m"
    shutil.copytree(hf_dirs["tied"], d)
    raw = json.loads((d / "config.json").read_text())
    (d / "config.json").write_text(json.dumps(dict(raw, activation_function="relu")))
    with pytest.raises(HFFormatError, match="activation_function 'relu'"):
        read_hf_gpt2(d)
    (d / "config.json").write_text(json.dumps(dict(raw, model_type="llama")))
    with pytest.raises(HFFormatError, match="only GPT-2"):
        read_hf_gpt2(d)
    (d / "config.json").write_text(json.dumps(dict(raw, vocab_size=raw["vocab_size"] + 8)))
    with pytest.raises(HFFormatError, match="wte.weight has shape"):
        read_hf_gpt2(d)
    (d / "config.json").write_text(json.dumps(raw))
    (d / "model.safetensors").unlink()
    with pytest.raises(HFFormatError, match="has no weights"):
        read_hf_gpt2(d)
    from model.bundled import ModelFileError
    with pytest.raises(ModelFileError, match="without config.json"):
        load_model(tmp_path, device="cpu")


def test_every_panel_adapts_to_gpt2(lms):
    """The page's handlers on a GPT-2 model: the position view appears, GQA notes disappear."""
    from server import handlers
    from server.handlers import Context, Controls, Limits
    ctx = Context(lms["tied"], Limits(max_prompt_tokens=40, max_new_tokens=4, max_context=60))
    view, out = handlers.on_run(ctx, None, Controls(), "hello world")
    assert out["positions"] is not None and out["notice"] == ""
    assert "grouped" not in ctx.static["model-card"].lower()
    assert "learned" in ctx.static["position-note"].lower()
    view2, out2 = handlers.on_next_token(ctx, view, Controls(temperature=0))
    assert view2.T == view.T + 1 and "positions" in out2
    with pytest.raises(ValueError, match="chat template"):
        handlers.on_run(ctx, None, Controls(), "hi", True)
