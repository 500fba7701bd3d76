"""The embedding lab against an independent computation: numpy, float64, on the embedding matrix."""
from __future__ import annotations

import re

import numpy as np
import pytest

from model import embedding_lab as lab


@pytest.fixture(scope="module")
def E(lm):
    return lm.net.embed.weight.detach().cpu().numpy().astype(np.float64)


def _id(lm, word):
    ids = lm.tokenize(word)
    assert len(ids) == 1
    return ids[0]


@pytest.mark.parametrize("a,b,c,expected", [(" king", " man", " woman", " queen"),
                                             (" brother", " man", " woman", " sister"),
                                             (" cats", " cat", " dog", " dogs")])
def test_analogy_matches_numpy(lm, E, a, b, c, expected):
    r = lab.analogy(lm, a, b, c, k=10)
    ia, ib, ic = (_id(lm, w) for w in (a, b, c))
    t = E[ia] - E[ib] + E[ic]
    cos = E @ t / (np.linalg.norm(E, axis=1) * np.linalg.norm(t))
    cos[[ia, ib, ic]] = -np.inf
    best = np.argsort(-cos)[:10]
    assert [n.id for n in r.results] == best.tolist()
    np.testing.assert_allclose([n.cosine for n in r.results], cos[best], atol=1e-5)
    assert r.results[0].token == expected and r.ids == {"a": ia, "b": ib, "c": ic}
    assert r.points.shape == (13, E.shape[1])


def test_direction_matches_numpy_and_orders_the_plural_and_the_numbers(lm, E):
    words = " dogs, dog, one, two, three, four, five"
    r = lab.direction(lm, " cats", " cat", words)
    d = E[_id(lm, " cats")] - E[_id(lm, " cat")]
    ids = [_id(lm, w) for w in words.split(",")]
    np.testing.assert_allclose([s.projection for s in r.scores], E[ids] @ d / np.linalg.norm(d), atol=1e-5)
    assert [s.word for s in r.scores] == words.split(",")           # kept as typed, in order
    p = {s.word.strip(): s.projection for s in r.scores}
    assert p["dogs"] > p["dog"]
    assert p["one"] < p["two"] < p["three"] < p["four"] < p["five"]


def test_a_word_of_several_tokens_is_named_with_its_pieces(lm):
    with pytest.raises(lab.NotOneToken) as e:
        lab.analogy(lm, "queen", " man", " woman")
    assert e.value.pieces == [lm.decode([i]) for i in lm.tokenize("queen")] and len(e.value.pieces) > 1
    assert e.value.suggestion == " queen" and "' queen'" in str(e.value)


@pytest.mark.parametrize("call", [
    lambda lm: lab.analogy(lm, "", " man", " woman"),
    lambda lm: lab.analogy(lm, " king", " man", " woman", k=0),
    lambda lm: lab.direction(lm, " cat", " cat", " dog"),
    lambda lm: lab.direction(lm, " cats", " cat", " , ,"),
    lambda lm: lab.direction(lm, " cats", " cat", 7),
])
def test_bad_lab_inputs_are_refused(lm, call):
    with pytest.raises(ValueError):
        call(lm)


def test_split_words_keeps_each_piece_as_typed():
    assert lab.split_words(" cars, car") == [" cars", " car"]
    assert lab.split_words("a,,b, ") == ["a", "b"]


# ---- the pictures and the page's handlers -----------------------------------------------------------
def test_the_parallelogram_is_exact_in_the_plane_of_a_b_c(lm):
    from viz.embedding_lab import plane_coords
    r = lab.analogy(lm, " king", " man", " woman", k=5)
    xy, off = plane_coords(np.vstack([r.points[:3], r.target[None], r.points[3:]]))
    np.testing.assert_allclose(xy[0] - xy[1], xy[3] - xy[2], atol=1e-4)        # a - b == (a - b + c) - c
    np.testing.assert_allclose(off[:4], 0, atol=1e-3)                           # the corners lie in the plane
    assert np.all(off[4:] > 0.1) and np.allclose(xy[1], 0)                      # b is the origin


def test_lab_figures_and_refusals_speak_chinese(lm):
    from zh_text import stray_in_figure, stray_latin
    from server import lab as lab_handlers
    from server.handlers import Context, Controls, Limits
    from viz.words import speaking
    ctx = Context(lm, Limits())
    with speaking("zh"):
        _, a = lab_handlers.on_analogy(ctx, None, Controls(), " king", " man", " woman", 5)
        _, d = lab_handlers.on_direction(ctx, None, Controls(), " cats", " cat", " dogs, dog")
        with pytest.raises(ValueError) as e:
            lab_handlers.on_analogy(ctx, None, Controls(), "queen", " man", " woman", 5)
    tokens = ["king", "man", "woman", "queen", "Queen", "princess", "kings", "cats", "cat", "dogs", "dog"]
    assert stray_in_figure(a["lab-analogy-figure"], tokens) == {}
    assert stray_in_figure(d["lab-direction-figure"], tokens) == {}
    assert "余弦相似度" in a["lab-analogy-table"] and "que" in str(e.value) and "␣queen" in str(e.value)
    assert stray_latin(re.sub(r"“[^”]*”", "", str(e.value))) == []          # words quoted “…” are the tokens
    # The direction's bars are the words in the order given, with their projections.
    bars = d["lab-direction-figure"].data[0]
    assert list(bars.y) == ["·dogs", "·dog"] and bars.x[0] > bars.x[1]


# ---- head roles -----------------------------------------------------------------------------------
def _patterns_attending(T: int, target) -> np.ndarray:
    """(1, 1, T, T) pattern where query q puts all its weight on key target(q)."""
    A = np.zeros((1, 1, T, T))
    for q in range(T):
        A[0, 0, q, target(q)] = 1.0
    return A


def test_head_role_scores_on_hand_built_patterns():
    from model import head_roles as R
    ids = R.repeated_random_ids(5, 100, 200, seed=1)                       # x0..x4 x0..x4
    T = len(ids)
    prev = R.role_scores(_patterns_attending(T, lambda q: max(q - 1, 0)), ids)
    assert prev["previous"][0, 0] == 1.0 and prev["first"][0, 0] == pytest.approx(1 / (T - 1))
    sink = R.role_scores(_patterns_attending(T, lambda q: 0), ids)
    assert sink["first"][0, 0] == 1.0 and sink["previous"][0, 0] == pytest.approx(1 / (T - 1))
    # An induction head: in the second half, attend to the token after the earlier copy (q - 5 + 1).
    ind = R.role_scores(_patterns_attending(T, lambda q: q - 4 if q >= 5 else q), ids)
    assert ind["induction"][0, 0] == 1.0 and ind["duplicate"][0, 0] == 0.0 and ind["self"][0, 0] == pytest.approx(4 / 9)
    dup = R.role_scores(_patterns_attending(T, lambda q: q - 5 if q >= 5 else 0), ids)
    assert dup["duplicate"][0, 0] == 1.0 and dup["induction"][0, 0] == 0.0
    # No repeated token: duplicate and induction are not measurable (NaN), not zero.
    plain = R.role_scores(_patterns_attending(4, lambda q: q), [1, 2, 3, 4])
    assert np.isnan(plain["induction"][0, 0]) and np.isnan(plain["duplicate"][0, 0]) and plain["self"][0, 0] == 1.0
    assert R.top_heads(plain["induction"]) == []


def test_the_model_has_induction_heads_on_a_repeated_sequence(lm):
    from model import head_roles as R
    from server import lab as lab_handlers
    from server.handlers import Context, Limits
    tr = lab_handlers.repeated_trace(Context(lm, Limits()))
    P = np.stack([tr.act("attn.hook_pattern", l) for l in range(lm.cfg.n_layer)])
    scores = R.role_scores(P, tr.token_ids)
    (l, h, s), = R.top_heads(scores["induction"], 1)
    # The best induction head really attends to the token after the earlier copy in the second half.
    T, n = tr.T, lab_handlers.REPEATED_N
    assert s > 0.5 and np.mean([P[l, h, q, q - n + 1] for q in range(n + 1, T)]) > 0.5
    assert scores["induction"][l, h] > scores["previous"][l, h]


def test_a_very_long_word_gets_a_short_message(lm):
    with pytest.raises(lab.NotOneToken) as e:
        lab.analogy(lm, "😀" * 300, " man", " woman")
    assert len(str(e.value)) < 400 and "pieces)" in str(e.value)
