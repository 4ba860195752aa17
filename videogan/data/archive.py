"""Safe extraction of a downloaded .zip / .tar / .tar.gz / .tgz archive.

Every entry is checked before anything is written: entries that would land outside the target
folder, links and device files are refused. Extraction goes to a temporary folder beside the target
that is renamed into place at the end, so a refused or interrupted archive leaves nothing behind.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from videogan.errors import ArchiveError  # noqa: F401  (raised here; also importable from here)


def extract(archive: str | Path, target: str | Path) -> Path:
    """Unpack `archive` into `target` (replaced if it exists); returns `target`."""
    archive, target = Path(archive), Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-"))
    try:
        if zipfile.is_zipfile(archive):
            _extract_zip(archive, tmp)
        elif tarfile.is_tarfile(archive):
            _extract_tar(archive, tmp)
        else:
            raise ArchiveError(f"{archive}: not a zip or tar archive")
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _check_name(archive: Path, name: str) -> None:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise ArchiveError(f"{archive}: refused, entry {name!r} would land outside the target folder")


def _extract_tar(archive: Path, dest: Path) -> None:
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        for m in members:
            _check_name(archive, m.name)
            if not (m.isfile() or m.isdir()):
                kind = "link" if (m.issym() or m.islnk()) else "device or special file"
                raise ArchiveError(f"{archive}: refused, entry {m.name!r} is a {kind}")
        tar.extractall(dest, members=members, filter="data")


def _extract_zip(archive: Path, dest: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        for info in infos:
            _check_name(archive, info.filename)
            mode = info.external_attr >> 16
            if mode and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                kind = "link" if stat.S_ISLNK(mode) else "device or special file"
                raise ArchiveError(f"{archive}: refused, entry {info.filename!r} is a {kind}")
        zf.extractall(dest, members=infos)
