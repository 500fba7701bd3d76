"""Direct logit attribution adds up to the model's logit, and each part's share is exactly what
removing that part's direct path (final-norm scale frozen) changes; both model families."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from model.attribution import direct_logit_attribution as dla


@pytest.fixture(scope="module")
def gpt2_lm(tiny_lm):
    """A 2-layer random GPT-2-family model with non-zero biases everywhere (they must be accounted for)."""
    from model.config import ModelConfig
    from model.lm import LanguageModel
    from model.transformer import Transformer
    cfg = ModelConfig(name="tiny-gpt2", family="gpt2", n_layer=2, n_head=2, n_kv_head=2, d_model=32, d_mlp=64,
                      vocab_size=tiny_lm.tokenizer.vocab_size, n_ctx=128)
    torch.manual_seed(1)
    net = Transformer(cfg)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if "embed" in name or name.endswith("bias"):
                p.normal_(0, 0.3)
    return LanguageModel(net, tiny_lm.tokenizer, torch.device("cpu"), "random")


PROMPTS = ["The cat sat on the mat", "1, 2, 3, 4,", "我爱北京", "<b>x</b> & y", "a"]


@pytest.mark.parametrize("which", ["tiny_lm", "gpt2_lm"])
@pytest.mark.parametrize("prompt", PROMPTS)
def test_contributions_sum_to_the_logit(request, which, prompt):
    lm = request.getfixturevalue(which)
    tr = lm.trace(prompt)
    rng = np.random.default_rng(0)
    for position in {0, tr.T - 1, int(rng.integers(tr.T))}:
        target = int(np.argmax(tr.logits[position]))
        a = dla(lm, tr, position, target)
        assert abs(a.total - a.logit) <= 1e-3 and a.logit == pytest.approx(float(tr.logits[position, target]), abs=1e-6)
        foil = int(rng.integers(lm.cfg.vocab_size))
        d = dla(lm, tr, position, target, foil)
        assert abs(d.total - (tr.logits[position, target] - tr.logits[position, foil])) <= 1e-3
    assert (a.bias != 0) == (which == "gpt2_lm")


def test_the_real_model_adds_up(lm):
    tr = lm.trace("The Eiffel Tower is in the city of")
    target = int(np.argmax(tr.logits[-1]))
    a = dla(lm, tr, tr.T - 1, target)
    assert abs(a.total - a.logit) <= 1e-3 and a.heads.shape == (lm.cfg.n_layer, lm.cfg.n_head)


def _frozen_logit(lm, x: np.ndarray, scale: float, target: int) -> float:
    """The logit of `target` from a final residual x, with the final norm's scale frozen."""
    norm = lm.net.ln_final
    w = norm.weight.detach().double().numpy()
    b = norm.bias.detach().double().numpy() if getattr(norm, "bias", None) is not None else 0.0
    xc = x - x.mean() if lm.cfg.family != "llama" else x
    return float(lm.net.W_U[target].detach().double().numpy() @ (xc * scale * w + b))


@pytest.mark.parametrize("which", ["tiny_lm", "gpt2_lm"])
def test_a_heads_share_is_what_removing_its_direct_path_changes(request, which):
    lm = request.getfixturevalue(which)
    tr = lm.trace("The cat sat on the mat because")
    p, target = tr.T - 1, int(np.argmax(tr.logits[-1]))
    a = dla(lm, tr, p, target)
    x = tr.act("hook_resid_post", lm.cfg.n_layer - 1)[p].astype(np.float64)
    H, D, C = lm.cfg.n_head, lm.cfg.d_head, lm.cfg.d_model
    for l in range(lm.cfg.n_layer):
        for h in range(H):
            W_O = lm.net.blocks[l].attn.o.weight.detach().double().numpy()[:, h * D:(h + 1) * D]   # (C, D)
            head_out = W_O @ tr.act("attn.hook_z", l)[h, p].astype(np.float64)
            removed = _frozen_logit(lm, x - head_out, a.scale, target)
            assert a.logit - removed == pytest.approx(a.heads[l, h], abs=1e-4)
        mlp_out = tr.act("hook_mlp_out", l)[p].astype(np.float64)
        assert a.logit - _frozen_logit(lm, x - mlp_out, a.scale, target) == pytest.approx(a.mlps[l], abs=1e-4)


def test_bad_arguments_are_refused(tiny_lm, tiny_trace):
    with pytest.raises(ValueError):
        dla(tiny_lm, tiny_trace, tiny_trace.T, 0)
    with pytest.raises(ValueError):
        dla(tiny_lm, tiny_trace, 0, tiny_lm.cfg.vocab_size)
