"""The one downloader for published files, and `download_dataset`, which knows what each source needs.

`fetch` streams to `<dest>.part` with a progress bar, resumes that partial file with an HTTP Range
request after a dropped connection, retries with exponential backoff, checks the md5, and only then
renames the file into place. A host that cannot be reached at all fails at once with a message that
says how to get the file by hand.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import requests
from tqdm import tqdm

from videogan.data.archive import extract
from videogan.data.config import PACMAN_DRIVE_URL, DataConfig, download_name
from videogan.errors import DownloadError, OfflineError  # noqa: F401  (raised here; also importable from here)

CHUNK = 1 << 16  # what a dropped connection can lose
OFFLINE_ALTERNATIVE = "or use data.dataset=moving_mnist_generated, which needs no network"


class _RetryableStatus(Exception):
    pass


def fetch(
    url: str,
    dest: str | Path,
    md5: str | None,
    *,
    retries: int = 5,
    backoff: float = 1.0,
    timeout: tuple[float, float] = (10.0, 30.0),
    progress: bool = True,
    hint: str = OFFLINE_ALTERNATIVE,
) -> Path:
    """Download `url` to `dest` unless a file with the right md5 is already there; returns `dest`.

    `timeout` is (connect, read) seconds; `hint` ends the offline message (the offline alternative).
    """
    dest = Path(dest)
    if dest.exists() and (md5 is None or file_md5(dest) == md5.lower()):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    error: Exception | None = None
    for attempt in range(retries + 1):
        try:
            _stream(url, part, timeout, progress)
            break
        except requests.ConnectionError as exc:
            if attempt == 0 and not part.exists() and _never_connected(exc):
                raise OfflineError(_offline_message(url, dest, md5, exc, hint)) from None
            error = exc
        except (requests.Timeout, requests.exceptions.ChunkedEncodingError, _RetryableStatus) as exc:
            error = exc
        if attempt == retries:
            kept = f"; the partial file {part} is kept and the next run resumes it" if part.exists() else ""
            raise DownloadError(f"{url}: gave up after {retries + 1} attempts ({error}){kept}") from None
        time.sleep(backoff * 2**attempt)
    _verify_and_place(url, part, dest, md5)
    return dest


def _stream(url: str, part: Path, timeout: tuple[float, float], progress: bool) -> None:
    have = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    with requests.get(url, headers=headers, stream=True, timeout=timeout) as resp:
        if resp.status_code == 416 and have:  # the partial file is already complete
            return
        if resp.status_code >= 500 or resp.status_code == 429:
            raise _RetryableStatus(f"HTTP {resp.status_code}")
        if resp.status_code >= 400:
            raise DownloadError(f"{url}: HTTP {resp.status_code} {resp.reason}; check the URL")
        if resp.status_code != 206:  # the server ignored the Range header: start over
            have = 0
        total = int(resp.headers.get("Content-Length", 0)) + have or None
        with (
            open(part, "ab" if have else "wb") as f,
            tqdm(
                total=total, initial=have, unit="B", unit_scale=True, desc=part.name[:-5], disable=not progress
            ) as bar,
        ):
            for chunk in resp.iter_content(CHUNK):
                f.write(chunk)
                bar.update(len(chunk))


def _verify_and_place(url: str, part: Path, dest: Path, md5: str | None) -> None:
    if md5 is None:
        print(f"warning: no md5 given for {url}; the download is not checked")
    else:
        got = file_md5(part)
        if got != md5.lower():
            part.unlink()
            raise DownloadError(
                f"{url}: md5 of the download is {got}, expected {md5}; the file was "
                "removed. Check the URL and its md5 in params.yaml, then rerun"
            )
    os.replace(part, dest)


def _never_connected(exc: requests.ConnectionError) -> bool:
    """True when no connection was made (DNS failure, refused, unreachable), not a drop mid-transfer."""
    text = repr(exc)
    return any(
        s in text
        for s in (
            "NewConnectionError",
            "NameResolutionError",
            "ConnectTimeout",
            "Failed to establish",
            "Connection refused",
            "No route",
        )
    )


def _offline_message(url: str, dest: Path, md5: str | None, exc: Exception, hint: str) -> str:
    reason = type(getattr(exc.args[0], "reason", exc)).__name__ if exc.args else type(exc).__name__
    check = f" (md5 {md5})" if md5 else ""
    return (
        f"cannot reach {url} ({reason}). Download it by hand and put it at {dest.resolve()}{check}, then rerun; {hint}"
    )


def file_md5(path: str | Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def download_dataset(config: DataConfig, raw_dir: str | Path, progress: bool = True) -> Path | None:
    """Fetch what `config.dataset` needs into `raw_dir`; returns the file or folder, or None if nothing."""
    raw = Path(raw_dir)
    raw.mkdir(parents=True, exist_ok=True)
    if config.dataset == "moving_mnist":
        mm = config.moving_mnist
        return fetch(mm.url, raw / download_name(mm.url), mm.md5, progress=progress)
    if config.dataset == "pacman_folder" and config.pacman_folder.path is None:
        return _fetch_pacman_archive(config, raw, progress)
    return None


def _fetch_pacman_archive(config: DataConfig, raw: Path, progress: bool) -> Path:
    pf = config.pacman_folder
    if pf.url is None:
        raise DownloadError(
            "data.pacman_folder needs either `path` (an unpacked Ms_Pacman folder) or `url` (+ `md5`) of "
            f"an archive of it. The original is at {PACMAN_DRIVE_URL} (download it in a browser); "
            "or use data.dataset=pacman_emulator, which needs no download"
        )
    hint = "or use data.dataset=pacman_emulator, which needs no network"
    archive = fetch(pf.url, raw / download_name(pf.url), pf.md5, progress=progress, hint=hint)
    target, stamp = raw / "pacman_folder", raw / "pacman_folder.source"
    tag = pf.md5 or file_md5(archive)
    if not (target.exists() and stamp.exists() and stamp.read_text() == tag):
        extract(archive, target)
        stamp.write_text(tag)
    return target
