"""Whether a process is still there: for the services' PIDs and for a search trial's worker."""

from __future__ import annotations

import os


def alive(pid: int | None) -> bool:
    """A running process (a zombie, dead but not yet reaped by its parent, counts as gone)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
