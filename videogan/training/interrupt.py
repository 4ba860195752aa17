"""SIGINT and SIGTERM during training: finish the step, save a resume state, say where, exit non-zero.

Schedulers, `dvc queue kill` and `kill` send SIGTERM; Ctrl-C sends SIGINT. Either one only raises a
flag that the loop reads between iterations; a second one of the same signal acts at once as it would
have without this (KeyboardInterrupt, or the default termination).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """The first SIGINT or SIGTERM that arrived while `listening`, if any."""

    def __init__(self) -> None:
        self.signum: int | None = None

    @contextlib.contextmanager
    def listening(self, enabled: bool = True) -> Iterator["StopRequest"]:
        """Handle the signals here (main thread only; elsewhere, or when not enabled, they act as usual)."""
        if not enabled or threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {s: signal.getsignal(s) for s in SIGNALS}

        def note(signum, frame):
            self.signum = signum
            signal.signal(signum, previous[signum])  # a second one acts at once

        for s in SIGNALS:
            signal.signal(s, note)
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
