"""What one browser session is looking at. Immutable: every change makes a new View, so the
initial view can be shared by all sessions and a slow request never sees a half-updated one."""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from model import LanguageModel, LogitLens, Trace
from model.lm import Neighbours
from viz.attention import head_statistics

LENS_POSITIONS = 12      # the logit lens grid shows the last positions (cost: 31 x P x 49,152 x 576 per Run)
MAX_LENS_POSITIONS = 24  # the most a reader may choose (twice the default cost)
NEIGHBOURS_K = 8


@dataclass(frozen=True)
class View:
    trace: Trace
    focus: int                 # the focus token position, used by every focus-dependent panel
    lens: LogitLens | None     # None only while a Run is still computing it (first_view)
    neighbours: Neighbours | None
    head_stats: np.ndarray     # (L, H, 4) per-head attention statistics (viz.attention.head_statistics)
    focus_follows_end: bool = True
    lens_choice: tuple[int, ...] = ()   # the positions the reader chose for the logit lens (empty: the default)

    @property
    def T(self) -> int:
        return self.trace.T


def lens_positions(T: int, focus: int, choice: tuple[int, ...] = ()) -> list[int]:
    """The chosen positions and the focus, or by default the last LENS_POSITIONS with the focus."""
    if choice:
        return sorted({p for p in choice if p < T} | {focus})
    shown = list(range(max(0, T - LENS_POSITIONS), T))
    if focus not in shown:
        shown = [focus] + shown[1:]
    return sorted(shown)


def first_view(trace: Trace) -> View:
    """What a Run can show at once: everything but the logit lens and the neighbours."""
    return View(trace, trace.T - 1, None, None, head_statistics(trace))


def make_view(lm: LanguageModel, trace: Trace, focus: int | None = None, previous: View | None = None) -> View:
    """Build a view for a new trace, reusing what did not change (neighbours of the same prompt)."""
    follows = focus is None
    focus = trace.T - 1 if focus is None else focus
    extends = previous is not None and previous.lens is not None and trace.token_ids[:previous.T] == previous.trace.token_ids
    choice = previous.lens_choice if extends else ()
    lens = lm.logit_lens(trace, lens_positions(trace.T, focus, choice), known=previous.lens if extends else None)
    if previous is not None and previous.neighbours is not None and \
            set(trace.token_ids) <= set(int(i) for i in previous.neighbours.query_ids):
        neighbours = previous.neighbours
    else:
        neighbours = lm.neighbours(trace.token_ids, k=NEIGHBOURS_K)
    same = previous is not None and previous.trace is trace
    return View(trace, focus, lens, neighbours, previous.head_stats if same else head_statistics(trace), follows, choice)


def with_focus(lm: LanguageModel, view: View, focus: int) -> View:
    if not 0 <= focus < view.T:
        raise ValueError(f"token position must be in 0..{view.T - 1}, got {focus}")
    lens = view.lens if focus in view.lens.positions else \
        lm.logit_lens(view.trace, lens_positions(view.T, focus, view.lens_choice), known=view.lens)   # only the new position
    return replace(view, focus=focus, lens=lens, focus_follows_end=focus == view.T - 1)


def with_lens_choice(lm: LanguageModel, view: View, choice: list[int]) -> View:
    """The logit lens at the chosen positions (and the focus); empty: the default positions."""
    choice = tuple(choice)
    lens = lm.logit_lens(view.trace, lens_positions(view.T, view.focus, choice), known=view.lens)
    return replace(view, lens=lens, lens_choice=choice)
