"""Ablation on the real model: heads and neurons switched off through tap editors, the trace
recording the ablated run, exact restoration, and the panels built from it."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
from zh_text import stray_in_figure, stray_latin

from model.ablation import Ablation, parse_ablation, parse_heads, parse_neurons
from model.sampling import SamplingParams, distribution
from server import beyond
from server.handlers import Context, Controls, Limits
from server.state import make_view
from viz import ablation as ablation_viz
from viz.words import speaking

PROMPT = "The capital of France is"


@pytest.fixture(scope="module")
def plain(lm):
    return lm.trace(PROMPT)


@pytest.fixture(scope="module")
def off(lm):
    """The same prompt with head 12.3 switched off."""
    return lm.trace(PROMPT, ablate=Ablation(heads=frozenset({(12, 3)})))


@pytest.fixture(scope="module")
def view(lm, plain):
    return make_view(lm, plain)


def _same(a, b) -> bool:
    sa, sb = a.acts.stored, b.acts.stored
    return sa.keys() == sb.keys() and all(np.array_equal(sa[k], sb[k]) for k in sa)


def _no_editors(lm) -> bool:
    return all(t.editor is None for t in lm.net.taps.values()) and all(t.recorder is None for t in lm.net.taps.values())


def test_a_head_changes_the_prediction(lm, plain, off):
    assert off.ablation == Ablation(heads=frozenset({(12, 3)})) and _no_editors(lm)
    z0, z1 = plain.act("attn.hook_z", 12), off.act("attn.hook_z", 12)
    assert np.abs(z0[3]).max() > 0                                      # the head was doing something
    assert np.all(z1[3] == 0)                                           # the trace records the edited z
    np.testing.assert_array_equal(z1[np.arange(9) != 3], z0[np.arange(9) != 3])   # the other heads: untouched
    np.testing.assert_array_equal(off.act("hook_resid_pre", 12), plain.act("hook_resid_pre", 12))  # earlier layers too
    assert np.abs(off.logits[-1] - plain.logits[-1]).max() > 1e-3
    p0, p1 = (distribution(t.logits[-1], SamplingParams()).probs for t in (plain, off))
    assert ablation_viz.kl_bits(p0, p1) > 0


def test_an_empty_ablation_after_an_ablated_run_gives_the_plain_trace_bitwise(lm, plain, off):
    empty = lm.trace(PROMPT, ablate=Ablation())        # runs after `off`: nothing of it may linger
    assert _same(plain, empty) and empty.ablation is None and _no_editors(lm)


@pytest.fixture(scope="module")
def layer_and_neuron_off(lm):
    """Every head of layer 5 and MLP neuron 1297 of layer 3 switched off, in one run."""
    return lm.trace(PROMPT, ablate=parse_ablation("5.*", "3:1297", lm.cfg))


def test_all_heads_of_a_layer_make_its_attention_output_exactly_zero(lm, plain, layer_and_neuron_off):
    off = layer_and_neuron_off
    assert len(off.ablation.heads) == lm.cfg.n_head
    assert np.all(off.act("hook_attn_out", 5) == 0)                     # no output bias in this model
    np.testing.assert_array_equal(off.act("hook_resid_mid", 5), off.act("hook_resid_pre", 5))
    assert np.abs(plain.act("hook_attn_out", 5)).max() > 0


def test_a_neuron_is_zeroed_before_the_down_projection(lm, plain, layer_and_neuron_off):
    off = layer_and_neuron_off
    post0, post1 = plain.act("mlp.hook_post", 3), off.act("mlp.hook_post", 3)
    assert np.abs(post0[:, 1297]).max() > 0 and np.all(post1[:, 1297] == 0)
    others = np.arange(lm.cfg.d_mlp) != 1297
    np.testing.assert_array_equal(post1[:, others], post0[:, others])
    np.testing.assert_array_equal(off.act("mlp.hook_pre", 3), plain.act("mlp.hook_pre", 3))  # the input is untouched
    assert not np.array_equal(off.act("hook_mlp_out", 3), plain.act("hook_mlp_out", 3))


def test_a_generated_step_stays_ablated(lm, off):
    longer = lm.step(off, 7042)
    assert longer.ablation == off.ablation and np.all(longer.act("attn.hook_z", 12)[3] == 0)
    assert _no_editors(lm)


def test_editors_are_removed_even_when_the_pass_fails(lm, monkeypatch):
    def boom(name, x):
        raise RuntimeError("editor failed")
    monkeypatch.setattr(Ablation, "editors", lambda self, cfg: {"blocks.1.attn.hook_z": boom})
    with pytest.raises(RuntimeError):
        lm.trace(PROMPT, ablate=Ablation(heads=frozenset({(1, 0)})))
    assert _no_editors(lm)


def test_parsing(lm):
    cfg = lm.cfg
    assert parse_heads("3.4, 10.0", cfg) == {(3, 4), (10, 0)}
    assert parse_heads(" 3.4 ;3.4\n", cfg) == {(3, 4)}
    assert parse_heads("3.*", cfg) == {(3, h) for h in range(9)}
    assert parse_heads("3。4，10．0", cfg) == {(3, 4), (10, 0)}           # full-width punctuation
    assert parse_neurons("5:1297 5：12", cfg) == {(5, 1297), (5, 12)}
    assert len(parse_neurons("29:*", cfg)) == 1536
    assert parse_heads("", cfg) == frozenset() and parse_neurons("  ", cfg) == frozenset()
    assert Ablation(heads={(3, 4)}, neurons=[(5, 1)]).describe(cfg=cfg) == "head 3.4; neuron 5:1"
    assert parse_ablation("3.*, 4.1", "", cfg).describe(cfg=cfg) == "heads 3.*, 4.1"


@pytest.mark.parametrize("heads, neurons, fragment", [
    ("3", "", "layer.head"), ("3.9", "", "head must be in 0..8"), ("30.0", "", "layer must be in 0..29"),
    ("3:4", "", "':' is for neurons"), ("a.b", "", "cannot read head"), ("-1.2", "", "cannot read head"),
    ("", "5:1536", "neuron must be in 0..1535"), ("", "5.3", "'.' is for heads"),
    ("", "30:0", "layer must be in 0..29"),
    ("", "5:x", "cannot read neuron"), ("3.4.5", "", "cannot read head")])
def test_bad_specs_say_what_is_wrong(lm, heads, neurons, fragment):
    with pytest.raises(ValueError, match=fragment):
        parse_ablation(heads, neurons, lm.cfg)


@pytest.mark.parametrize("abl", [Ablation(heads=frozenset({(30, 0)})), Ablation(heads=frozenset({(0, 9)})),
                                 Ablation(neurons=frozenset({(0, 1536)})), Ablation(neurons=frozenset({(-1, 0)}))])
def test_the_model_refuses_heads_and_neurons_it_does_not_have(lm, abl):
    with pytest.raises(ValueError, match="must be in"):
        lm.trace(PROMPT, ablate=abl)


def test_ablation_needs_pairs_of_whole_numbers():
    for bad in ({("a", 1)}, {(1.5, 2)}, {(1,)}, {(True, 2)}):
        with pytest.raises(ValueError, match="pair"):
            Ablation(heads=bad)
    assert Ablation(heads={(np.int64(3), 4)}).heads == {(3, 4)}


def test_on_ablate_builds_the_three_outputs_and_keeps_the_view(ctx, view, off):
    same, out = beyond.on_ablate(ctx, view, Controls(), "12.3", "")
    assert same is view
    assert set(out) == {"ablation", "ablation-lens", "ablation-summary", "notice"}
    after = off                                        # the same tokens, the same head off
    pb = distribution(view.trace.logits[-1], SamplingParams()).probs
    pa = distribution(after.logits[-1], SamplingParams()).probs
    fig = out["ablation"]
    before_bars, after_bars, change = fig.data
    ids = np.array(before_bars.customdata)
    np.testing.assert_allclose(before_bars.x, pb[ids])
    np.testing.assert_allclose(after_bars.x, pa[ids])
    np.testing.assert_allclose(change.x, pa[ids] - pb[ids])
    paris = int(np.argmax(pb))
    assert ids[0] == paris and "Paris" in before_bars.hovertext[0]
    kl = ablation_viz.kl_bits(pb, pa)
    assert kl > 0.01 and f"{kl:.3f} bits" in out["ablation-summary"] and f"{kl:.3f} bits" in fig.layout.title.text
    assert "head 12.3" in out["ablation-summary"] and "1 of 270 attention heads" in out["ablation-summary"]
    lens_fig = out["ablation-lens"]
    p_before, p_after = lens_fig.data[0].y, lens_fig.data[1].y
    assert len(p_before) == 31 and p_before[-1] == pytest.approx(pb[paris], abs=1e-4)
    assert p_after[-1] == pytest.approx(pa[paris], abs=1e-4)
    np.testing.assert_allclose(p_before[:13], p_after[:13], atol=0)   # nothing changes before layer 12


def test_on_ablate_refuses_an_empty_request(ctx, view):
    with pytest.raises(ValueError, match="Nothing to switch off"):
        beyond.on_ablate(ctx, view, Controls(), "", " ")


def test_the_lens_figure_checks_it_follows_the_same_token(lm, plain):
    last = plain.T - 1
    lens = lm.logit_lens(plain, [last])
    other = lm.logit_lens(plain, [last], targets=[int(lens.target_ids[0]) + 1])
    assert other.target_ids[0] == lens.target_ids[0] + 1
    with pytest.raises(ValueError, match="different token"):
        ablation_viz.ablation_lens_figure(lens, other, plain, lambda i: str(i))


def test_hostile_token_text_is_escaped(lm):
    tr = lm.trace('<img src=x onerror="alert(1)"> <b>')
    d = distribution(tr.logits[-1], SamplingParams())
    hostile = lambda i: "<script>alert(1)</script>"                        # noqa: E731
    fig = ablation_viz.ablation_figure(d, d, hostile, what="<b>x</b>")
    lens = lm.logit_lens(tr, [tr.T - 1])
    lens_fig = ablation_viz.ablation_lens_figure(lens, lens, tr, hostile)
    for f in (fig, lens_fig):
        text = json.dumps(f.to_plotly_json(), default=str)
        assert "<script" not in text and "<img" not in text and "<b>x" not in text
    summary = beyond.ablation_summary(Ablation(heads={(0, 0)}), d.probs, d.probs, hostile, lm.cfg)
    assert "`" in summary and "0.000 bits" in summary


# ---- in Chinese (the tiny random model: any model's figures must speak the page's language) ----------
SCIENTIFIC = re.compile(r"\d(?:\.\d+)?e[-+]\d+")           # 1.94e-06 is a number, not a word


def _code_free(md: str) -> str:
    """Markdown without its code spans (token text and what was typed stay as they are)."""
    return re.sub(r"``.*?``|`[^`]*`", " ", md)


def _token_words(*traces) -> set[str]:
    return {w for t in traces for p in t.pieces for w in re.findall(r"[A-Za-z]+", p.label)}


def _texts_of(fig) -> list[str]:
    """Every text trace and annotation sizes a reader sees: value labels, annotations."""
    d = fig.to_plotly_json()
    sizes = [(t.get("textfont") or {}).get("size") for t in d["data"] if t.get("text") is not None]
    sizes += [(a.get("font") or {}).get("size") for a in d["layout"].get("annotations", ())]
    return sizes


def test_the_panels_and_summary_in_chinese(tiny_lm):
    cfg = tiny_lm.cfg
    tr = tiny_lm.trace(PROMPT)
    abl = parse_ablation("0.*, 1.2", "1:5", cfg)
    after = tiny_lm.trace(PROMPT, ablate=abl)
    d0, d1 = (distribution(t.logits[-1], SamplingParams()) for t in (tr, after))
    number = lambda i: f"#{i}"                                             # noqa: E731 (no vocabulary words)
    last = tr.T - 1
    lens0 = tiny_lm.logit_lens(tr, [last])
    lens1 = tiny_lm.logit_lens(after, [last], targets=[int(lens0.target_ids[0])])
    allowed = _token_words(tr)
    with speaking("zh"):
        what = ablation_viz.describe(abl, cfg)
        fig = ablation_viz.ablation_figure(d0, d1, number, what=what)
        lens_fig = ablation_viz.ablation_lens_figure(lens0, lens1, tr, number, ablation=abl)
        summary = beyond.ablation_summary(abl, d0.probs, d1.probs, number, cfg)
        ctx = Context(tiny_lm, Limits(max_prompt_tokens=64, max_new_tokens=8, max_context=80))
        with pytest.raises(ValueError) as refused:
            beyond.on_ablate(ctx, make_view(tiny_lm, tr), Controls(), "", " ")
    assert what == "注意力头 0.*, 1.2；神经元 1:5"
    assert ablation_viz.describe(abl, cfg) == abl.describe(cfg=cfg)         # English: the model's own words
    for f in (fig, lens_fig):
        assert stray_in_figure(f, allowed) == {}
        hovers = [h for t in f.data for h in (t.hovertext or ())]
        assert hovers and all(stray_latin(SCIENTIFIC.sub(" ", h), allowed) == [] for h in hovers)
        assert all(s is not None and s >= 10 for s in _texts_of(f))          # no tiny labels
    assert fig.layout.uniformtext.minsize >= 10 and all(t.constraintext == "none" for t in fig.data)
    assert "嵌入" in lens_fig.layout.xaxis.ticktext[0]
    assert "比特" in fig.layout.title.text and "关掉" in fig.layout.title.text
    assert stray_latin(SCIENTIFIC.sub(" ", _code_free(summary))) == [] and "百分点" in summary and "`" in summary
    assert stray_latin(str(refused.value)) == [] and "注意力头" in str(refused.value)
