"""The worker's side of pruning: score each snapshot its trial's training hands over, report it to the study.

The intermediate objective is the evaluator's metric (the search's objective; fd_video when that is FVD) on
`pruner.samples` generated videos against as many real ones of the test split, FVD off, with the trial
workspace's own clip store and evaluator. A thread of the worker does it while `dvc exp run` trains.
"""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path
from typing import Any

from pipeline.search_study import SNAPSHOT_ATTR, TrialLink
from pipeline.search_trial import SCORING_ERROR_ATTR


def workspace_of(snapshot: Path) -> Path:
    """The trial's workspace (its temporary copy), from a snapshot's path: <workspace>/models/snapshots/x.pt."""
    return snapshot.parents[2]


class SnapshotScorer:
    """Scores snapshots of one trial's workspace; built at its first snapshot."""

    def __init__(self, link: TrialLink):
        self.link = link
        self.scorer: Any = None
        self.config: Any = None

    def score(self, snapshot: Path) -> float:
        from videogan.config import load_config
        from videogan.devices import resolve_device
        from videogan.metrics.run import build_scorer
        from videogan.sampling import load_generator, sample_clips

        root = workspace_of(snapshot)
        if self.config is None:
            self.config = load_config(
                root / "params.yaml", [f"evaluate.num_samples={self.link.samples}", "evaluate.fvd.enabled=false"]
            )
        evaluate = self.config.evaluate
        generator = load_generator(snapshot, resolve_device(evaluate.device, "evaluate.device"))[0]
        if self.scorer is None:
            store, evaluator = root / "data/processed", root / "models/evaluator.pt"
            self.scorer = build_scorer(self.config, store, evaluator, generator.frames, progress=False)[0]
        clips = sample_clips(generator, evaluate.num_samples, evaluate.seed, evaluate.batch_size)
        value = self.scorer.score(clips)[self.link.metric]
        worst = math.inf if self.link.direction == "minimize" else -math.inf
        return value if math.isfinite(value) else worst


class ScoringThread(threading.Thread):
    """Watches the running trial for a snapshot handed over (SNAPSHOT_ATTR), scores it, reports it."""

    def __init__(self, trial, link: TrialLink, poll_seconds: float = 0.25):
        super().__init__(name=f"score trial {link.number}", daemon=True)
        self.trial, self.link, self.poll_seconds = trial, link, poll_seconds
        self.scorer = SnapshotScorer(link)
        self.finished = threading.Event()

    def run(self) -> None:
        scored: set[int] = set()
        storage = self.trial.storage
        while not self.finished.is_set():
            asked = storage.get_trial(self.trial._trial_id).user_attrs.get(SNAPSHOT_ATTR)
            if asked and asked["step"] not in scored:
                step = asked["step"]
                scored.add(step)
                try:
                    self.trial.report(self.scorer.score(Path(asked["path"])), step)
                except Exception as exc:  # the training waits for an answer: tell it why there is none
                    self.trial.set_user_attr(SCORING_ERROR_ATTR, f"{type(exc).__name__}: {exc}")
                    return
                continue
            time.sleep(self.poll_seconds)

    def stop(self) -> None:
        self.finished.set()
        self.join(timeout=30)
