"""Inside a search trial's training: at each snapshot, ask the worker for its score, and stop when pruned.

The training stage only asks; the worker that started the trial scores the snapshot (pipeline/search_scoring.py)
and reports it to the study. So the train stage depends on no evaluation code, and a trial scores exactly the
snapshots its own training wrote. A trial the pruner stops, or whose worker is gone, ends as a finished shorter
run (videogan's StopTraining): its checkpoint is kept, and the evaluate stage records it as pruned.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from pipeline.processes import alive
from pipeline.search_study import PRUNED_KEY, SEARCH_KEY, SNAPSHOT_ATTR, TrialLink, make_pruner, open_storage
from videogan.training.callbacks import Callback, StopTraining

SCORING_ERROR_ATTR = "scoring_error"  # set by the worker when it could not score a snapshot


class ScoringFailed(RuntimeError):
    """The worker could not score a snapshot: the trial fails with its reason."""


class TrialReporter(Callback):
    """Hands each snapshot to the worker, waits for its score in the study, then asks the pruner."""

    def __init__(self, link: TrialLink, storage: str, poll_seconds: float = 0.25):
        self.link, self.storage, self.poll_seconds = link, storage, poll_seconds
        self.extra: dict[str, Any] = {}
        self.study: Any = None
        self.trial: Any = None
        self.iterations = 0

    def on_train_start(self, info: dict[str, Any]) -> None:
        import optuna

        self.extra, self.iterations = info["extra"], info["iterations"]
        self.extra.pop(PRUNED_KEY, None)
        self.extra[SEARCH_KEY] = {"study": self.link.study, "trial": self.link.number}
        self.study = optuna.load_study(
            study_name=self.link.study, storage=open_storage(self.storage), pruner=make_pruner(self.link.pruner)
        )
        self.trial = optuna.trial.Trial(self.study, self.link.trial_id)

    def on_log(self, step: int, metrics: dict[str, float]) -> None:
        self.check_worker()

    def check_worker(self) -> None:
        if not alive(self.link.worker_pid):
            raise StopTraining(f"the search worker (PID {self.link.worker_pid}) that started this trial is gone")

    def on_snapshot(self, step: int, path: Path) -> None:
        if step == 0 or step >= self.iterations:  # the last one is for the evaluate stage to judge
            return
        self.trial.set_user_attr(SNAPSHOT_ATTR, {"step": step, "path": str(Path(path).resolve())})
        frozen = self.wait_for_score(step)
        value = frozen.intermediate_values[step]
        print(f"search: trial {self.link.number} step {step}: {self.link.metric} {value:.4g}", flush=True)
        # the pruner reads the trial as the storage has it: its scores were reported by the worker's process
        if self.study.pruner.prune(self.study, frozen):
            self.extra[PRUNED_KEY] = {"step": step, "value": value, "metric": self.link.metric}
            raise StopTraining(f"pruned by the search: {self.link.metric} {value:.4g} at step {step}")

    def wait_for_score(self, step: int):
        """The trial, as stored, once the worker has reported the snapshot's score at `step`."""
        from optuna.trial import TrialState

        storage, trial_id = self.trial.storage, self.link.trial_id
        while True:
            frozen = storage.get_trial(trial_id)
            if step in frozen.intermediate_values:
                return frozen
            if error := frozen.user_attrs.get(SCORING_ERROR_ATTR):
                raise ScoringFailed(f"the search worker could not score the snapshot at step {step}: {error}")
            if frozen.state != TrialState.RUNNING:
                raise StopTraining(f"the study has ended this trial ({frozen.state.name}: its worker stopped beating)")
            self.check_worker()
            time.sleep(self.poll_seconds)
