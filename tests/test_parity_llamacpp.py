"""Our PyTorch model against llama.cpp on the same weights.

The reference numbers come from tests/reference/make_llamacpp_reference.py (llama.cpp running an
all-F32 copy of the shipped file's dequantized weights with an F32 KV cache, which is what a
float implementation computes), so CI needs no llama.cpp build. Tolerances are two-sided:
|ours - llama.cpp| <= 1e-3 on every stored logit of every position.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REF = Path(__file__).resolve().parent / "data" / "llamacpp_reference.npz"
ATOL = 1e-3


@pytest.fixture(scope="module")
def ref():
    return np.load(REF, allow_pickle=False)


@pytest.fixture(scope="module")
def ours(lm, ref):
    """Our logits for every reference prompt, run on llama.cpp's own token ids."""
    off = ref["prompt_offsets"]
    return [lm.trace(ref["ids"][off[p]:off[p + 1]].tolist()).logits for p in range(len(off) - 1)]


def test_reference_covers_enough_prompts(ref):
    assert len(ref["prompt_texts"]) >= 20


def test_our_tokenizer_gives_llamacpps_ids(lm, ref):
    off = ref["prompt_offsets"]
    for p, text in enumerate(ref["prompt_texts"]):
        ids = lm.tokenize(str(text), parse_special=bool(ref["prompt_parse_special"][p]))
        assert ids == ref["ids"][off[p]:off[p + 1]].tolist(), text


def test_every_position_logits_within_tolerance(ref, ours):
    off, strided = ref["prompt_offsets"], ref["strided_ids"]
    worst = 0.0
    for p, logits in enumerate(ours):
        rows = slice(off[p], off[p + 1])
        top_ids, top_logits = ref["f32_top64_ids"][rows], ref["f32_top64_logits"][rows]
        diff_top = np.abs(np.take_along_axis(logits, top_ids, axis=1) - top_logits).max()
        diff_strided = np.abs(logits[:, strided] - ref["f32_strided_logits"][rows]).max()
        diff_last = np.abs(logits[-1] - ref["f32_last_logits"][p]).max()
        worst = max(worst, diff_top, diff_strided, diff_last)
        assert max(diff_top, diff_strided, diff_last) <= ATOL, (str(ref["prompt_texts"][p]), diff_top, diff_strided, diff_last)
    assert worst > 0  # a bitwise match would mean we compared llama.cpp with itself


def test_top10_identical_in_order(ref, ours):
    off = ref["prompt_offsets"]
    for p, logits in enumerate(ours):
        want = ref["f32_top10_ids"][off[p]:off[p + 1]]
        got = np.argsort(-logits, axis=1, kind="stable")[:, :10]
        np.testing.assert_array_equal(got, want, err_msg=str(ref["prompt_texts"][p]))


def test_greedy_20_tokens_identical(lm, ref):
    off = ref["prompt_offsets"]
    for p in range(len(off) - 1):
        n = int(ref["f32_greedy_len"][p])
        g = lm.generate(ref["ids"][off[p]:off[p + 1]].tolist(), max_new_tokens=20, temperature=0)
        assert g.new_ids == ref["f32_greedy_ids"][p, :n].tolist(), str(ref["prompt_texts"][p])


def test_top1_agreement_with_the_shipped_q4_file(ref, ours):
    """llama.cpp on the 4-bit file rounds activations to 8 bits, so only the top-1 is compared."""
    ours_top1 = np.concatenate([lg.argmax(-1) for lg in ours])
    agreement = float((ours_top1 == ref["q4_top1_ids"]).mean())
    print(f"top-1 agreement with llama.cpp on the shipped Q4_1 file: {agreement:.1%} of {len(ours_top1)} positions")
    assert agreement >= 0.95
