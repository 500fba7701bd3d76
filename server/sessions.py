"""Forget the server-side sessions that hold nothing.

Gradio keeps a SessionState (a copy of every component's config, ~185 KB for this page) for each
session hash it sees, up to `state_session_capacity` of them. An API call without a session hash
(curl, most scripts) gets a fresh hash each time, so a few thousand such calls would hold hundreds
of megabytes, and, once the capacity is reached, push out the oldest *browser* sessions with their
traces. A page session always stores its view in a gr.State; an API call stores nothing. So every
few seconds the sessions with no stored state that have been idle a while are dropped; the browser
sessions stay until their state expires (gr.State time_to_live) or the capacity pushes them out.
"""
from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import datetime
import logging

log = logging.getLogger("glassgpt")

IDLE_SECONDS = 30      # a page whose first event is still on its way keeps its session meanwhile
EVERY_SECONDS = 5


def forget_stateless_sessions(state_holder, idle_seconds: float = IDLE_SECONDS) -> int:
    """Drop the sessions that store no gr.State value and were last used over idle_seconds ago."""
    cutoff = datetime.datetime.now() - datetime.timedelta(seconds=idle_seconds)
    dropped = 0
    for sid in list(state_holder.session_data):
        session = state_holder.session_data.get(sid)
        last = state_holder.time_last_used.get(sid)
        if session is None or session.state_data or (last is not None and last > cutoff):
            continue
        with state_holder.lock:
            state_holder.session_data.pop(sid, None)
            state_holder.time_last_used.pop(sid, None)
        dropped += 1
    return dropped


def _malloc_trim():
    """glibc's malloc_trim, or None elsewhere. Traces of every length come and go from several
    threads; glibc keeps the freed pages in its arenas, so without a trim the RSS creeps up for
    thousands of requests before it levels off."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return lambda: trim(0)


def lifespan_forgetting_stateless_sessions(blocks, idle_seconds: float = IDLE_SECONDS,
                                           every_seconds: float = EVERY_SECONDS):
    """A FastAPI lifespan (for launch(app_kwargs={"lifespan": ...})) running the pruning on the
    server's event loop, beside Gradio's own expired-state sweep."""

    @contextlib.asynccontextmanager
    async def lifespan(app):
        trim = _malloc_trim()

        async def loop():
            while True:
                await asyncio.sleep(every_seconds)
                holder = getattr(blocks, "state_holder", None)
                try:
                    if holder is not None:
                        forget_stateless_sessions(holder, idle_seconds)
                    if trim is not None:
                        trim()        # a few ms; gives freed heap pages back to the system
                except Exception:  # noqa: BLE001 - pruning must never take the server down
                    log.exception("forgetting idle sessions failed")

        task = asyncio.create_task(loop())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    return lifespan
