"""Checkpoint files: written atomically, read with weights_only=True, refused with a reason.

Two kinds share one layout (a dict with `kind`, `format`, `config`, `step`):
  full       generator, critic, optimisers, schedulers, counters: resumes exactly (every random draw of
             training is keyed on (seed, counter), so no global RNG state is needed or saved)
  generator  generator weights only (snapshots): enough to sample
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from videogan.errors import CheckpointError  # noqa: F401  (raised here; also importable from here)
from videogan.files import write_atomic

FORMAT = 1


def save_atomic(obj: Any, path: str | Path) -> Path:
    """torch.save into memory, then written atomically (videogan.files): a full disk costs nothing."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return write_atomic(buffer.getbuffer(), path)


def load(path: str | Path, kinds: tuple[str, ...] = ("full", "generator")) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist: train first (`dvc repro train` or `videogan train`)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # truncated zip, bad pickle, foreign file: all the same to a user
        # PyTorch's own message is left out on purpose: it suggests weights_only=False, which runs the file's code.
        raise CheckpointError(
            f"checkpoint {path} is unreadable: truncated or corrupted, or not a checkpoint this project wrote; "
            "point to a models/checkpoint.pt or models/snapshots/step_*.pt that videogan wrote, or delete it and "
            "retrain (`dvc repro train`)"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT or "kind" not in state:
        raise CheckpointError(f"checkpoint {path} is not a videogan checkpoint (format {FORMAT})")
    if state["kind"] not in kinds:
        raise CheckpointError(f"checkpoint {path} is a {state['kind']!r} checkpoint; need one of {kinds}")
    return state


def architecture_diff(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Lines naming each architecture key whose value differs."""
    keys = sorted(set(saved) | set(current))
    return [
        f"{k}: checkpoint {saved.get(k)!r} != config {current.get(k)!r}" for k in keys if saved.get(k) != current.get(k)
    ]
