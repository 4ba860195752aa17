"""The Optuna side of a parameter search, shared by the search workers and the trials' training stages:
where the study is stored, its sampler and pruner, and what a worker tells the trial it starts.

A worker passes its trial to `dvc exp run` in two environment variables: TRIAL_VARIABLE (JSON: study, trial
id and number, the worker's PID, the pruner and the snapshot metric) and STORAGE_VARIABLE (the storage URL,
which may hold a password, so it is never put on a command line or in a file of the experiment).
"""

from __future__ import annotations

import json
import os
import socket
import warnings
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

TRIAL_VARIABLE = "VIDEOGAN_SEARCH_TRIAL"
STORAGE_VARIABLE = "VIDEOGAN_SEARCH_STORAGE"  # also what `. .services/env` sets to the team's PostgreSQL
LOCAL_STORE = ".videogan/search/optuna.db"
SNAPSHOT_ATTR = "snapshot"  # the trial's user attribute by which its training hands a snapshot to the worker
PRUNED_KEY = "search_pruned"  # in a trial's checkpoint extra: {"step", "value", "metric"} when it was pruned
SEARCH_KEY = "search"  # in a trial's checkpoint extra: {"study", "trial"}


@dataclass(frozen=True)
class TrialLink:
    """What the training stage of a trial needs to report to its study."""

    study: str
    trial_id: int
    number: int
    worker_pid: int
    metric: str  # the metric scored at each snapshot
    direction: str
    samples: int
    pruner: dict[str, Any]

    def to_env(self, storage: str) -> dict[str, str]:
        return {TRIAL_VARIABLE: json.dumps(asdict(self)), STORAGE_VARIABLE: storage}


def trial_link() -> tuple[TrialLink, str] | None:
    """The trial this process trains for, and the storage URL; None outside a search."""
    text = os.environ.get(TRIAL_VARIABLE)
    if not text:
        return None
    return TrialLink(**json.loads(text)), os.environ[STORAGE_VARIABLE]


def storage_url(repo: Path, given: str | None = None, in_file: str | None = None) -> str:
    """--storage, else VIDEOGAN_SEARCH_STORAGE, else search.yaml's `storage`, else a SQLite file in the repo."""
    url = given or os.environ.get(STORAGE_VARIABLE) or in_file
    if url:
        return url
    path = repo / LOCAL_STORE
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def shown_url(url: str) -> str:
    """The URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def open_storage(url: str, heartbeat: tuple[int, int] | None = None):
    """An RDB storage; with `heartbeat` (interval, grace period in seconds) a trial whose worker stops beating
    is failed by the next worker that starts a trial, and retried once with the same parameters."""
    import optuna
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if heartbeat is None:
        return RDBStorage(url, engine_kwargs=engine)
    interval, grace = heartbeat
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeats: since Optuna 2.8
        return RDBStorage(
            url,
            engine_kwargs=engine,
            heartbeat_interval=interval,
            grace_period=grace,
            heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1),
        )


def make_pruner(settings: dict[str, Any]):
    import optuna

    kind = settings["kind"]
    if kind == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=settings["startup_trials"], n_warmup_steps=settings["warmup_steps"]
        )
    if kind == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=settings["min_resource"], reduction_factor=settings["reduction_factor"]
        )
    return optuna.pruners.NopPruner()


def worker_seed(seed: int, trials_so_far: int, worker: int) -> int:
    """A sampler seed for one worker: the same for a fresh study on one worker (reproducible), different for
    each worker, each host and each resumption (so no two draw the same random points)."""
    import numpy as np

    host = zlib.crc32(socket.gethostname().encode())
    return int(np.random.SeedSequence([seed, trials_so_far, worker, host]).generate_state(1)[0])


def make_sampler(settings: dict[str, Any], seed: int):
    import optuna

    if settings["kind"] == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=settings["startup_trials"])
