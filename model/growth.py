"""Room to grow: a decode step writes the new position into buffers made with spare capacity,
instead of copying every stored activation into arrays one position longer (which cost O(T) per
token, and O(T^2) for the attention patterns).

Traces are immutable and may be shared (every session starts from the same view), so only the
newest trace of a line may write after its end: `Room.claim` checks that no other trace has
grown from the same one first. Any other extension copies into fresh buffers. An older trace sees
only its own first T positions, which no later step writes to.
"""
from __future__ import annotations

import threading

import numpy as np

from .names import act_name, split_name
from .trace import triangle

HEADS_FIRST = ("attn.hook_q", "attn.hook_k", "attn.hook_v", "attn.hook_z")   # (H, T, D): positions on axis 1
PATTERN = "attn.hook_pattern"            # packed lower triangle (H, T(T+1)/2): position p's row at triangle(p)


class Room:
    """How far a set of buffers is filled, and how far it can be."""

    def __init__(self, length: int, capacity: int):
        self.length, self.capacity = length, capacity
        self._lock = threading.Lock()

    def claim(self, length: int, more: int) -> bool:
        """True (and the room is taken) when `length` is the filled end and `more` positions fit."""
        with self._lock:
            if self.length != length or length + more > self.capacity:
                return False
            self.length = length + more
            return True


def _aliases(n_layer: int) -> dict[str, str]:
    """resid_pre[l] is the same array as resid_post[l-1]: stored once."""
    return {act_name("hook_resid_pre", l): act_name("hook_resid_post", l - 1) for l in range(1, n_layer)}


def _shape_with(a: np.ndarray, hook: str, n: int) -> tuple[int, ...]:
    if hook == PATTERN:
        return (a.shape[0], triangle(n))
    if hook in HEADS_FIRST:
        return (a.shape[0], n) + a.shape[2:]
    return (n,) + a.shape[1:]


def _write(buffer: np.ndarray, hook: str, start: int, part: np.ndarray) -> None:
    """Put positions start.. of `part` into the buffer (for a pattern: its rows, packed)."""
    t = part.shape[1] if hook in HEADS_FIRST else part.shape[0]
    if hook == PATTERN:
        buffer[:, triangle(start):triangle(start) + part.shape[1]] = part
    elif hook in HEADS_FIRST:
        buffer[:, start:start + t] = part
    else:
        buffer[start:start + t] = part


def _view(buffer: np.ndarray, hook: str, n: int) -> np.ndarray:
    if hook == PATTERN:
        return buffer[:, :triangle(n)]
    if hook in HEADS_FIRST:
        return buffer[:, :n]
    return buffer[:n]


def extend_positions(stored: dict[str, np.ndarray], buffers: dict[str, np.ndarray] | None, room: Room | None,
           T: int, new: dict[str, np.ndarray], n_layer: int, spare: int
           ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], Room]:
    """The stored activations of T positions extended by a step's `new` ones (t positions):
    (arrays, buffers, room). Writes in place when this trace owns the end of its buffers, else
    copies into new buffers with `spare` more positions of room."""
    aliases = _aliases(n_layer)
    names = [name for name in stored if name not in aliases]
    if "hook_embed" not in new:
        raise ValueError("a step must record hook_embed")
    t = new["hook_embed"].shape[0]
    n = T + t
    if buffers is None or room is None or not room.claim(T, t):
        room = Room(n, n + max(spare, 0))
        buffers = {}
        for name in names:
            hook = split_name(name)[1]
            buffers[name] = np.zeros(_shape_with(stored[name], hook, room.capacity), dtype=stored[name].dtype)
            _write(buffers[name], hook, 0, stored[name])
    out = {}
    for name in stored:                        # resid_post[l-1] comes before its alias resid_pre[l]
        if name in aliases:
            out[name] = out[aliases[name]]
            continue
        hook = split_name(name)[1]
        _write(buffers[name], hook, T, new[name])
        out[name] = _view(buffers[name], hook, n)
    return out, buffers, room
