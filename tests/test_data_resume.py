"""The training loop's kill-and-resume on the clip store, with DataLoader worker processes."""

from __future__ import annotations

import json

import pytest
import torch
from support import every_tensor, tiny_config

from videogan.data.preprocess import prepare
from videogan.training import checkpoint
from videogan.training.api import train_from_store
from videogan.training.callbacks import Callback


class KillAt(Callback):
    def __init__(self, step: int):
        self.step = step

    def on_log(self, step, metrics):
        if step == self.step:
            raise KeyboardInterrupt


def _losses(root):
    rows = [json.loads(line) for line in (root / "reports/train_log.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss_critic"], r["loss_generator"]) for r in rows]


@pytest.mark.slow
def test_killed_run_with_workers_resumes_to_the_unbroken_numbers(tmp_path):
    config = tiny_config(
        data={"bouncing_squares": {"num_videos": 64}, "frames": 10},
        model={"frames": 8},
        train={"loss": "alternative", "iterations": 7},
    )
    store = tmp_path / "store"
    prepare(config, tmp_path / "raw", store, progress=False)
    train_from_store(config, store, tmp_path / "a", tensorboard=False)
    with_workers = tiny_config(
        data={"bouncing_squares": {"num_videos": 64}, "frames": 10},
        model={"frames": 8},
        train={"loss": "alternative", "iterations": 7, "num_workers": 2},
    )
    with pytest.raises(KeyboardInterrupt):
        train_from_store(with_workers, store, tmp_path / "b", tensorboard=False, callbacks=[KillAt(6)])
    result = train_from_store(with_workers, store, tmp_path / "b", tensorboard=False)
    assert result.resumed_from is not None and result.step == 7
    assert _losses(tmp_path / "a") == _losses(tmp_path / "b")
    a, b = (checkpoint.load(root / "models/checkpoint.pt") for root in (tmp_path / "a", tmp_path / "b"))
    a, b = every_tensor(a), every_tensor(b)
    assert a.keys() == b.keys() and [k for k in a if not torch.equal(a[k], b[k])] == []
