"""Inside a search trial's training: score each snapshot, report it to the study, stop when pruned.

The intermediate objective is the evaluator's metric (the search's objective, fd_video for FVD) on
`pruner.samples` videos of the snapshot against as many real ones, FVD off. A trial the pruner stops, or whose
worker is gone, ends as a finished shorter run (videogan's StopTraining): its checkpoint is kept, and the
evaluate stage records it as pruned instead of scoring it.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from pipeline.search_study import TrialLink, make_pruner, open_storage
from videogan.training.callbacks import Callback, StopTraining

PRUNED_KEY = "search_pruned"  # in the checkpoint's extra: {"step", "value", "metric"}
SEARCH_KEY = "search"  # in the checkpoint's extra: {"study", "trial"}


def worker_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class TrialReporter(Callback):
    """Reports each snapshot's score as the trial's intermediate value and asks the pruner."""

    def __init__(self, link: TrialLink, storage: str, root: Path):
        self.link, self.storage, self.root = link, storage, root
        self.extra: dict[str, Any] = {}
        self.scorer = None
        self.trial = None

    def on_train_start(self, info: dict[str, Any]) -> None:
        import optuna

        self.extra = info["extra"]
        self.extra.pop(PRUNED_KEY, None)
        self.extra[SEARCH_KEY] = {"study": self.link.study, "trial": self.link.number}
        study = optuna.load_study(
            study_name=self.link.study, storage=open_storage(self.storage), pruner=make_pruner(self.link.pruner)
        )
        self.trial = optuna.trial.Trial(study, self.link.trial_id)

    def on_log(self, step: int, metrics: dict[str, float]) -> None:
        if not worker_alive(self.link.worker_pid):
            raise StopTraining(f"the search worker (PID {self.link.worker_pid}) that started this trial is gone")

    def on_snapshot(self, step: int, path: Path) -> None:
        if step == 0:
            return
        value = self.score(path)
        print(f"search: trial {self.link.number} step {step}: {self.link.metric} {value:.4g}", flush=True)
        from optuna.exceptions import UpdateFinishedTrialError

        try:
            self.trial.report(value, step)
        except UpdateFinishedTrialError:
            raise StopTraining("the study has ended this trial (its worker stopped sending heartbeats)") from None
        if self.trial.should_prune():
            self.extra[PRUNED_KEY] = {"step": step, "value": value, "metric": self.link.metric}
            raise StopTraining(f"pruned by the search: {self.link.metric} {value:.4g} at step {step}")

    def score(self, snapshot: Path) -> float:
        from videogan.config import load_config
        from videogan.devices import resolve_device
        from videogan.metrics.run import build_scorer
        from videogan.sampling import load_generator, sample_clips

        config = load_config(
            self.root / "params.yaml", [f"evaluate.num_samples={self.link.samples}", "evaluate.fvd.enabled=false"]
        )
        generator, _, _ = load_generator(snapshot, resolve_device(config.evaluate.device, "evaluate.device"))
        if self.scorer is None:
            store, evaluator = self.root / "data/processed", self.root / "models/evaluator.pt"
            self.scorer = build_scorer(config, store, evaluator, generator.frames, progress=False)[0]
        clips = sample_clips(generator, config.evaluate.num_samples, config.evaluate.seed, config.evaluate.batch_size)
        value = self.scorer.score(clips)[self.link.metric]
        worst = math.inf if self.link.direction == "minimize" else -math.inf
        return value if math.isfinite(value) else worst
