"""Training from the clip store, with the library's own callbacks: the entry point of CLI and pipeline."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from videogan.config import Config
from videogan.data.batches import open_training_batches
from videogan.data.store import verify_store
from videogan.training.callbacks import Callback, JsonlLog, ProgressBar, TensorBoardLog
from videogan.training.loop import OutputPaths, Trainer, TrainResult


def train_from_store(
    config: Config,
    store: str | Path,
    root: str | Path = ".",
    resume_from=None,
    tensorboard: bool = True,
    callbacks: Sequence[Callback] = (),
) -> TrainResult:
    paths = OutputPaths.under(root)
    meta = verify_store(store)  # an edited store is refused, not trained on under its old digest
    batches = open_training_batches(config, store, config.train.batch_size, config.train.seed, config.train.num_workers)
    own: list[Callback] = [JsonlLog(paths.log), ProgressBar()]
    if tensorboard and int(os.environ.get("RANK", "0")) == 0:  # under torchrun only rank 0 writes
        own.append(TensorBoardLog(paths.tensorboard))
    trainer = Trainer(
        config, batches, paths, own + list(callbacks), data_digest=meta["digest"], resume_from=resume_from
    )
    return trainer.fit()
