"""The clip store: `{train,val,test}.npy` uint8 (N, T, H, W, C), optional `{split}_labels.npz`, `meta.json`.

A store is valid only while meta.json exists and agrees with the arrays. `write_store` removes the old
meta.json first, moves the new files into place, and writes meta.json last, so a store interrupted
half-way is refused rather than read.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from videogan.errors import NoSpaceError, StoreError  # noqa: F401  (raised here; also importable from here)
from videogan.files import current_umask, no_space_message, out_of_space

SPLITS = ("train", "val", "test")
FORMAT = 1
REBUILD = "rebuild it with `videogan preprocess` (or `dvc repro preprocess`)"


def write_store(
    out_dir: str | Path, splits: dict[str, np.ndarray], labels: dict[str, dict[str, np.ndarray]] | None, meta: dict
) -> dict:
    """Write the splits (and labels) atomically; returns meta with shapes, sizes and digest added."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    labels = labels or {}
    _check_arrays(splits, labels)
    for stale in out.glob(".tmp-*"):  # left by a writer that was killed
        stale.unlink()
    meta = {
        **meta,
        "format": FORMAT,
        "dtype": "uint8",
        "shapes": {s: list(a.shape) for s, a in splits.items()},
        "sizes": {s: int(len(a)) for s, a in splits.items()},
        "labels": {s: sorted(lab) for s, lab in labels.items()},
        "digest": content_digest(splits, labels),
    }
    writers = {f"{s}.npy": (lambda f, a=a: np.save(_WritesOnly(f), a)) for s, a in splits.items()}
    writers.update({f"{s}_labels.npz": (lambda f, lab=lab: np.savez(f, **lab)) for s, lab in labels.items()})
    staged: dict[str, str] = {}
    try:
        for name, write in writers.items():
            staged[name] = _stage(out, write)
        meta["files"] = {name: file_digest(tmp) for name, tmp in staged.items()}  # what verify_store checks
        staged["meta.json"] = _stage(out, lambda f: f.write(json.dumps(meta, indent=2).encode()))
        _swap_in(out, staged)
    except OSError as exc:
        if not out_of_space(exc):
            raise
        needed = sum(a.nbytes for a in splits.values()) + sum(v.nbytes for lab in labels.values() for v in lab.values())
        raise NoSpaceError(no_space_message(out, needed, "the store there is as it was")) from None
    finally:
        for tmp in staged.values():
            Path(tmp).unlink(missing_ok=True)
    return meta


class _WritesOnly:
    """A file as np.save sees it: `write` only, so it writes in chunks through it and a full disk raises
    ENOSPC (on a real file it calls `tofile`, whose short write is an OSError without an errno)."""

    def __init__(self, file):
        self.write = file.write


def _swap_in(out: Path, staged: dict[str, str]) -> None:
    """Invalidate the old store, move the new files into place, meta.json last."""
    (out / "meta.json").unlink(missing_ok=True)
    for old in [f"{s}.npy" for s in SPLITS] + [f"{s}_labels.npz" for s in SPLITS]:
        if old not in staged:
            (out / old).unlink(missing_ok=True)
    for name in sorted(staged, key=lambda n: n == "meta.json"):
        os.replace(staged[name], out / name)


def _check_arrays(splits: dict[str, np.ndarray], labels: dict[str, dict[str, np.ndarray]]) -> None:
    unknown = set(splits) - set(SPLITS) or set(labels) - set(splits)
    if unknown:
        raise ValueError(f"unknown splits {sorted(unknown)}; splits are {SPLITS}")
    for name, arr in splits.items():
        if arr.dtype != np.uint8 or arr.ndim != 5 or len(arr) == 0:
            raise ValueError(f"split {name}: need uint8 (N, T, H, W, C) with N > 0, got {arr.dtype} {arr.shape}")
        if arr.shape[1:] != next(iter(splits.values())).shape[1:]:
            raise ValueError(f"split {name}: clip shape {arr.shape[1:]} differs from the other splits")
    for name, lab in labels.items():
        for key, value in lab.items():
            if len(value) != len(splits[name]):
                raise ValueError(f"labels {name}.{key}: {len(value)} rows for {len(splits[name])} clips")


def _stage(out: Path, write) -> str:
    """Write through `write(file)` to a temporary file in `out`, flushed to disk; returns its path."""
    fd, tmp = tempfile.mkstemp(dir=out, prefix=".tmp-")
    try:
        os.fchmod(fd, 0o666 & ~current_umask())  # as open() would make it, not mkstemp's 0600
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp


def content_digest(splits: dict[str, np.ndarray], labels: dict[str, dict[str, np.ndarray]] | None) -> str:
    """sha256 over every split's and label's name, dtype, shape and bytes."""
    h = hashlib.sha256()
    items = [(s, splits[s]) for s in sorted(splits)]
    labels = labels or {}
    items += [(f"{s}_labels.{k}", v) for s in sorted(labels) for k, v in sorted(labels[s].items())]
    for name, arr in items:
        h.update(f"{name}|{arr.dtype.str}|{arr.shape}|".encode())
        flat = arr.reshape(len(arr), int(np.prod(arr.shape[1:])))
        for rows in range(0, len(flat), 256):
            h.update(np.ascontiguousarray(flat[rows : rows + 256]).data)
    return h.hexdigest()[:32]


def file_digest(path: str | Path) -> str:
    """sha256 of a file's bytes, streamed."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()[:32]


class _Meta(BaseModel):
    """What readers rely on in meta.json; other keys (source, source_info...) pass through."""

    model_config = ConfigDict(extra="allow")
    format: int
    shapes: dict[str, list[int]]
    sizes: dict[str, int]
    digest: str
    labels: dict[str, list[str]] = {}
    files: dict[str, str] | None = None  # file name -> file_digest; absent in stores written before it


def read_meta(store_dir: str | Path) -> dict:
    path = Path(store_dir) / "meta.json"
    if not path.exists():
        raise StoreError(f"no clip store at {store_dir} ({path.name} is missing): {REBUILD}")
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise StoreError(f"{path} is not valid JSON ({exc}): {REBUILD}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise StoreError(f"{path} is not a clip store's meta.json (format {FORMAT}): {REBUILD}")
    try:
        _Meta.model_validate(meta)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        raise StoreError(f"{path} is malformed at `{where}` ({error['msg'].lower()}): {REBUILD}") from None
    unknown = set(meta["shapes"]) - set(SPLITS)
    if unknown or set(meta["sizes"]) != set(meta["shapes"]):
        raise StoreError(
            f"{path} is malformed: its splits {sorted(meta['shapes'])} and sizes {sorted(meta['sizes'])} "
            f"must be among {list(SPLITS)} and agree: {REBUILD}"
        )
    return meta


def open_split(store_dir: str | Path, split: str) -> np.ndarray:
    """The split as a read-only memory map, after checking it against meta.json."""
    meta = read_meta(store_dir)
    if split not in meta["shapes"]:
        raise StoreError(f"the store at {store_dir} has no split {split!r} (it has {sorted(meta['shapes'])})")
    path = Path(store_dir) / f"{split}.npy"
    try:
        arr = np.load(path, mmap_mode="r")
    except FileNotFoundError:
        raise StoreError(f"{path} is missing: {REBUILD}") from None
    except ValueError as exc:
        raise StoreError(f"{path} is truncated or corrupt ({exc}): {REBUILD}") from None
    expected = tuple(meta["shapes"][split])
    if arr.dtype != np.uint8 or arr.shape != expected:
        raise StoreError(f"{path} holds {arr.dtype} {arr.shape} but meta.json says uint8 {expected}: {REBUILD}")
    if arr.offset + arr.nbytes != path.stat().st_size:
        raise StoreError(
            f"{path} has {path.stat().st_size - arr.offset - arr.nbytes} bytes more than its header says: {REBUILD}"
        )
    return arr


def load_labels(store_dir: str | Path, split: str) -> dict[str, np.ndarray] | None:
    """The split's labels, or None when the source has none."""
    meta = read_meta(store_dir)
    keys = meta.get("labels", {}).get(split)
    if not keys:
        return None
    path = Path(store_dir) / f"{split}_labels.npz"
    try:
        with np.load(path) as npz:
            labels = {k: npz[k] for k in keys}
    except (OSError, KeyError, ValueError) as exc:
        raise StoreError(f"{path} is missing or unreadable ({exc}): {REBUILD}") from None
    rows = meta["sizes"][split]
    bad = [k for k, v in labels.items() if len(v) != rows]
    if bad:
        raise StoreError(f"{path}: labels {bad} do not have one row per clip ({rows}): {REBUILD}")
    return labels


def verify_store(store_dir: str | Path) -> dict:
    """Check every file of the store against meta.json (reads everything: about 1 s a GB); returns meta.
    Where training and evaluation open the store, so an edited file is refused, never trained on."""
    meta = read_meta(store_dir)
    splits = {s: open_split(store_dir, s) for s in meta["shapes"]}
    if meta.get("files") is None:  # written before per-file digests: the content digest, naming no file
        labels = {s: lab for s in splits if (lab := load_labels(store_dir, s)) is not None}
        if content_digest(splits, labels) != meta["digest"]:
            raise StoreError(f"the clip store at {store_dir} does not match the digest in meta.json: {REBUILD}")
        return meta
    for name, expected in meta["files"].items():
        path = Path(store_dir) / name
        if not path.exists():
            raise StoreError(f"{path} is missing: {REBUILD}")
        if file_digest(path) != expected:
            raise StoreError(
                f"{path} was changed after the store was written (its sha256 differs from meta.json's): {REBUILD}"
            )
    return meta
