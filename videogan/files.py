"""The one way this package writes a file: to a temp file beside it, flushed, then renamed over it.

A reader sees the old file or the new one, never half of one. A writer killed mid-write leaves a
`.NAME.XXXX.tmp` beside the file; the next write of that name removes it. A disk that fills up is one
`NoSpaceError` naming the file and the space it needs, and the earlier file stays as it was.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path

from videogan.errors import NoSpaceError  # noqa: F401  (raised here; also importable from here)


def write_atomic(data: bytes | memoryview, path: str | Path, private: bool = False) -> Path:
    """`private`: readable by the owner only (0600) from the first byte; else the mode a new file gets under
    the process's umask, as with open()."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # 0600
    try:
        if not private:
            os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if out_of_space(exc):
            kept = f"the earlier {path.name} is intact" if path.exists() else f"nothing was written to {path}"
            raise NoSpaceError(no_space_message(path, len(data), kept)) from None
        raise
    return path


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def out_of_space(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def remove_stale_temps(path: Path) -> None:
    """The temp files of earlier writes of `path` that were killed before their rename."""
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)


def no_space_message(target: Path, needed: int, kept: str) -> str:
    """`target`: the file (or folder) that did not fit; `kept`: what is left as it was."""
    free = shutil.disk_usage(target if target.is_dir() else target.parent).free
    return (
        f"no space left to write {target}: it needs {_mib(needed)} and its disk has {_mib(free)} free; "
        f"free space there and rerun ({kept})"
    )


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB"
