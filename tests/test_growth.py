"""Decode steps write into buffers with room to spare (model/growth.py): the newest trace of a line
grows in place, any other extension copies, and no trace ever sees another's positions."""
from __future__ import annotations

import threading

import numpy as np

from model.growth import Room, extend_positions
from model.names import act_name
from model.trace import triangle, unpack_lower

H, C = 2, 3


def stored(T: int, seed: int) -> dict:
    g = np.random.default_rng(seed)
    pattern = g.random((H, triangle(T))).astype(np.float16)      # packed lower triangles (model/trace.py)
    return {"hook_embed": g.random((T, C)), act_name("hook_resid_post", 0): g.random((T, C)),
            act_name("hook_resid_pre", 1): None, act_name("attn.hook_k", 0): g.random((H, T, C)),
            act_name("attn.hook_pattern", 0): pattern}


def aliased(d: dict) -> dict:
    d[act_name("hook_resid_pre", 1)] = d[act_name("hook_resid_post", 0)]
    return d


def step(T: int, seed: int) -> dict:
    """One new position's arrays, as a decode step records them."""
    g = np.random.default_rng(seed)
    row = g.random((H, T + 1)).astype(np.float16)                   # the new position's row, packed
    return aliased({"hook_embed": g.random((1, C)), act_name("hook_resid_post", 0): g.random((1, C)),
                    act_name("attn.hook_k", 0): g.random((H, 1, C)), act_name("attn.hook_pattern", 0): row})


def expected(old: dict, new: dict) -> dict:
    out = {}
    for name, a in old.items():
        b = new[name]
        if "attn.hook_k" in name or "pattern" in name:
            out[name] = np.concatenate([a, b], axis=1)
        else:
            out[name] = np.concatenate([a, b], axis=0)
    return out


def assert_same(got: dict, want: dict):
    assert list(got) == list(want)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)


def test_a_line_of_steps_grows_in_place_and_equals_concatenation():
    arrays, buffers, room = aliased(stored(4, 0)), None, None
    for i in range(5):
        new = step(4 + i, 10 + i)
        want = expected(arrays, new)
        arrays, next_buffers, room = extend_positions(arrays, buffers, room, 4 + i, new, n_layer=2, spare=8)
        assert_same(arrays, want)
        if buffers is not None:
            assert next_buffers is buffers, "the newest trace grows in its own buffers"
        buffers = next_buffers
    assert arrays[act_name("hook_resid_pre", 1)] is arrays[act_name("hook_resid_post", 0)]


def test_a_second_branch_from_an_older_trace_copies_and_leaves_both_intact():
    base, buffers, room = extend_positions(aliased(stored(3, 1)), None, None, 3, step(3, 2), n_layer=2, spare=8)
    a, a_buffers, _ = extend_positions(base, buffers, room, 4, step(4, 3), n_layer=2, spare=8)
    assert a_buffers is buffers                            # the newest trace of the line: in place
    a_before = {k: v.copy() for k, v in a.items()}
    other = step(4, 4)
    b, b_buffers, _ = extend_positions(base, buffers, room, 4, other, n_layer=2, spare=8)
    assert b_buffers is not buffers                        # base's room was taken: a copy
    assert_same(b, expected(base, other))
    assert_same(a, a_before)                               # the first branch did not change
    assert base["hook_embed"].shape[0] == 4


def test_room_is_claimed_once_when_two_threads_race():
    room = Room(10, 20)
    wins = []
    threads = [threading.Thread(target=lambda: wins.append(room.claim(10, 1))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wins.count(True) == 1 and room.length == 11
    assert not room.claim(11, 10)                           # no more than the capacity


def test_real_steps_share_buffers_and_a_branch_leaves_the_first_line_alone(lm):
    tr = lm.trace("Water boils at")
    a1 = lm.step(tr, lm.tokenize(" one")[0])
    a2 = lm.step(a1, lm.tokenize(" hundred")[0])
    assert a2.acts.growth[0] is a1.acts.growth[0]            # in place
    a2_logits = a2.logits.copy()
    b2 = lm.step(a1, lm.tokenize(" two")[0])                # a second continuation of a1
    assert b2.acts.growth[0] is not a1.acts.growth[0]
    np.testing.assert_array_equal(a2.logits, a2_logits)
    full = lm.trace(list(b2.token_ids))
    np.testing.assert_allclose(b2.logits, full.logits, atol=1e-3)
    b2.validate()
    a2.validate()


def test_a_packed_pattern_unpacks_to_its_lower_triangle():
    full = np.tril(np.random.default_rng(5).random((2, 6, 6))).astype(np.float16)
    packed = full[:, np.tri(6, dtype=bool)]
    assert packed.shape == (2, triangle(6))
    np.testing.assert_array_equal(unpack_lower(packed), full)


def test_the_recorded_pattern_is_packed_and_reads_back_whole(lm, trace):
    stored = trace.acts.stored[act_name("attn.hook_pattern", 3)]
    assert stored.shape == (lm.cfg.n_head, triangle(trace.T))
    w = trace.act("attn.hook_pattern", 3)
    assert w.shape == (lm.cfg.n_head, trace.T, trace.T)
    assert not np.triu(w.astype(np.float32), 1).any()
    np.testing.assert_allclose(w.astype(np.float32).sum(-1), 1.0, atol=3e-3)
