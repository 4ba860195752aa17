"""Parameter search: an Optuna study whose every trial is a DVC experiment (README "Parameter search").

    python -m pipeline.search                      # search.yaml's study, one worker, until it has its trials
    python -m pipeline.search --workers 2          # two worker processes drawing trials from the same study
    python -m pipeline.search --best               # the best trial: its overrides and `dvc exp apply <name>`
    python -m pipeline.search --report             # reports/search/<study>/: plots and trials.csv

Each trial is `dvc exp run --temp -n <study>-<number> -S <key=value>...` (a temporary copy: the workspace is
never touched, and several trials run at once); its MLflow run has the same name and the tags search.study
and search.trial; its objective is read from the experiment's reports/metrics.json. While it trains, each
snapshot is scored and reported to the study (pipeline/search_trial.py), and the pruner may stop it.

The study lives in --storage, else VIDEOGAN_SEARCH_STORAGE (`. .services/env` sets it to the team's
PostgreSQL), else search.yaml's `storage`, else .videogan/search/optuna.db. Workers on any number of machines
share one study through it. Running the command again resumes the study; a worker killed mid-trial stops
beating, and the next worker to start a trial marks that one failed and retries its point once.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import math
import os
import signal
import subprocess
import sys
import time
import warnings
from collections import deque
from pathlib import Path
from typing import Any

from prefect import task

from pipeline.common import repo_root
from pipeline.search_scoring import ScoringThread
from pipeline.search_space import Choices, SearchSpace, load_search, overrides
from pipeline.search_study import (
    TrialLink,
    make_pruner,
    make_sampler,
    open_storage,
    shown_url,
    storage_url,
    worker_seed,
)
from pipeline.stage import fail, run_stage, stage_flow
from videogan.errors import ConfigError, UserError

DRAW_LOCK = ".videogan/search/draw.lock"
METRICS_FILE = "reports/metrics.json"
FAILURES_IN_A_ROW = 3  # a worker stops after this many failed trials in a row: the next would fail alike


class TrialFailed(RuntimeError):
    """The trial's experiment did not run to a usable objective; the study records it failed and goes on."""


class SearchError(UserError, RuntimeError):
    """A study that cannot be opened or shown as asked; the message says what to do."""


def finished_states():
    from optuna.trial import TrialState

    return (TrialState.COMPLETE, TrialState.PRUNED)


def open_study(search: SearchSpace, url: str, worker: int = 0, heartbeat: bool = True):
    import optuna

    storage = open_storage(url, (search.heartbeat_interval, search.heartbeat_grace) if heartbeat else None)
    study = optuna.create_study(
        study_name=search.study, storage=storage, direction=search.objective.direction, load_if_exists=True
    )
    if study.direction.name.lower() != search.objective.direction:
        raise SearchError(
            f"study {search.study} in {shown_url(url)} was made to {study.direction.name.lower()}, and search.yaml "
            f"says {search.objective.direction}: give the study a new name, or delete it (optuna delete-study)"
        )
    seed = worker_seed(search.sampler.seed, len(study.trials), worker)
    study.sampler = make_sampler(search.sampler.model_dump(), seed)
    study.pruner = make_pruner(search.pruner.model_dump())
    return study


# ---- one trial ----------------------------------------------------------------------------------------


def suggest(trial, key: str, space) -> Any:
    if isinstance(space, Choices):
        scalar = all(isinstance(c, (str, int, float, bool)) or c is None for c in space.choices)
        if scalar:
            return trial.suggest_categorical(key, space.choices)
        shown = [json.dumps(c) for c in space.choices]  # lists (e.g. critic widths) go through their JSON
        return json.loads(trial.suggest_categorical(key, shown))
    if space.integer:
        return trial.suggest_int(key, space.low, space.high, step=space.step or 1, log=space.log)
    return trial.suggest_float(key, float(space.low), float(space.high), step=space.step, log=space.log)


def dvc_set_params(values: list[str]) -> list[str]:
    """`dvc exp run -S` arguments in DVC's `++key=value` form, which sets a key whether params.yaml spells it out
    or leaves it to the library default (a plain `key=value` can only change a key the file has)."""
    return [arg for value in values for arg in ("-S", f"++{value}")]


def experiment_name(search: SearchSpace, number: int) -> str:
    return f"{search.study}-{number}"


def die_with_parent() -> None:
    """In the child before exec: killed when the worker dies, so a SIGKILLed worker leaves no `dvc` behind."""
    import ctypes

    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


@task(cache_policy=None, task_run_name="trial {name}")
def run_experiment(repo: Path, name: str, values: list[str], env: dict[str, str]) -> None:
    """`dvc exp run --temp -n name -S ...`, its lines prefixed with the name as they come."""
    from pipeline.retrain import dvc_env

    # --wait-for-lock: trials of other workers hold the repository's lock while they stage (DVC waits 3 s by default)
    command = ["dvc", "--wait-for-lock", "exp", "run", "--temp", "-n", name] + dvc_set_params(values)
    print(f"[{name}] $ {' '.join(command)}", flush=True)
    tail: deque[str] = deque(maxlen=30)
    with subprocess.Popen(
        command,
        cwd=repo,
        env={**dvc_env(), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        preexec_fn=die_with_parent if sys.platform == "linux" else None,
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            for part in line.rstrip().split("\r"):  # progress bars redraw with \r
                if part.strip() and "%|" not in part:  # the stages' own lines, not their progress bars
                    tail.append(part)
                    print(f"[{name}] {part[-300:]}", flush=True)
    if proc.returncode != 0:
        raise TrialFailed(f"`dvc exp run` of {name} exited {proc.returncode}:\n" + "\n".join(tail))


def experiment_ref(repo: Path, name: str) -> str | None:
    """The git ref of the DVC experiment `name` (refs/exps/<..>/<baseline>/<name>), None if there is none."""
    refs = subprocess.run(
        ["git", "for-each-ref", "--format=%(refname)", "refs/exps/"], cwd=repo, capture_output=True, text=True
    ).stdout.split()
    found = [ref for ref in refs if ref.rsplit("/", 1)[-1] == name]
    return found[-1] if found else None


def experiment_metrics(repo: Path, name: str) -> dict[str, Any]:
    ref = experiment_ref(repo, name)
    if ref is None:
        raise TrialFailed(f"the experiment {name} is not in this repository (`dvc exp show` does not list it)")
    shown = subprocess.run(["git", "show", f"{ref}:{METRICS_FILE}"], cwd=repo, capture_output=True, text=True)
    if shown.returncode != 0:
        raise TrialFailed(f"the experiment {name} has no {METRICS_FILE}: {shown.stderr.strip()}")
    return json.loads(shown.stdout)


def objective_of(search: SearchSpace, name: str, metrics: dict[str, Any]) -> float:
    import optuna

    if metrics.get("pruned"):
        at = metrics.get("pruned_at_step")
        raise optuna.TrialPruned(f"{name} was pruned at step {at}")
    value = metrics.get(search.objective.metric)
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TrialFailed(f"{name}: {METRICS_FILE} has no finite {search.objective.metric} ({value!r})")
    return float(value)


class DrawLock:
    """Held from counting the study's trials to the new trial's start, so that the workers of one machine never
    start more trials than the study asks for (workers on other machines can add at most one each)."""

    def __init__(self, repo: Path):
        self.path = repo / DRAW_LOCK
        self.handle = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = open(self.path, "a")
        fcntl.flock(self.handle, fcntl.LOCK_EX)

    def release(self) -> None:
        if self.handle is not None:
            self.handle.close()  # closing the file releases its lock
            self.handle = None


class Objective:
    """One trial: suggest its point, run it as a DVC experiment, read its objective. `failure` says why the
    last trial failed (None when it did not)."""

    def __init__(self, search: SearchSpace, url: str, repo: Path, lock: DrawLock):
        self.search, self.url, self.repo, self.lock = search, url, repo, lock
        self.failure: str | None = None

    def __call__(self, trial) -> float:
        self.lock.release()  # the trial exists now: other workers may draw theirs
        self.failure = None
        search = self.search
        values = {key: suggest(trial, key, space) for key, space in search.params.items()}
        name = experiment_name(search, trial.number)
        trial.set_user_attr("experiment", name)
        trial.set_user_attr("overrides", overrides(values))
        link = TrialLink(
            search.study,
            trial._trial_id,
            trial.number,
            os.getpid(),
            search.snapshot_metric,
            search.objective.direction,
            search.pruner.samples,
            search.pruner.model_dump(),
        )
        scoring = ScoringThread(trial, link)  # scores the snapshots the training hands over (pruning)
        scoring.start()
        try:
            run_experiment(self.repo, name, overrides({**search.fixed, **values}), link.to_env(self.url))
            value = objective_of(search, name, experiment_metrics(self.repo, name))
        except TrialFailed as exc:
            self.failure = str(exc).splitlines()[0] + " ... " + str(exc).splitlines()[-1]
            trial.set_user_attr("failure", str(exc)[-2000:])  # kept in the study: trials.csv, the dashboard
            raise
        finally:
            scoring.stop()
        print(f"[{name}] {search.objective.metric} = {value:.6g}", flush=True)
        return value


def check_baseline(repo: Path) -> None:
    """Every trial starts from the workspace's data and evaluator: they must be built, and dvc.lock known to git,
    or each trial would rebuild them in its own copy (the evaluator's fit alone takes minutes)."""
    from pipeline.retrain import dvc_env

    tracked = subprocess.run(["git", "ls-files", "--error-unmatch", "dvc.lock"], cwd=repo, capture_output=True)
    status = subprocess.run(
        ["dvc", "status", "--with-deps", "evaluator", "--json"], cwd=repo, env=dvc_env(), capture_output=True, text=True
    )
    stale = status.returncode != 0 or json.loads(status.stdout or "{}")
    if tracked.returncode != 0 or stale:
        raise SearchError(
            "the trials start from this workspace's data and evaluator, which are not built and committed yet: run "
            "`dvc repro evaluator`, then `git add dvc.lock` and commit, and start the search again"
        )


def count(study, states) -> int:
    return len(study.get_trials(deepcopy=False, states=states))


@stage_flow("search")
def search_flow(search_file: str, storage: str | None = None, worker: int = 0, check: bool = True) -> dict:
    """One worker: draw trials until the study has `trials` finished (complete or pruned); return its counts."""
    import optuna
    from optuna.storages import fail_stale_trials
    from optuna.trial import TrialState

    repo = repo_root()
    search = load_search(repo / search_file, repo / "params.yaml")
    if check:  # the command line checks once, before Prefect starts, for all its workers
        check_baseline(repo)
    url = storage_url(repo, storage, search.storage)
    study = open_study(search, url, worker)
    print(f"search: study {search.study} in {shown_url(url)}, worker {worker}, {len(study.trials)} trials so far")
    lock = DrawLock(repo)
    objective = Objective(search, url, repo, lock)
    failures: list[str] = []
    while len(failures) < FAILURES_IN_A_ROW:
        lock.acquire()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                fail_stale_trials(study)  # a killed worker's trial: failed, and queued again once
            finished, running = count(study, finished_states()), count(study, (TrialState.RUNNING,))
            if finished >= search.trials:
                return summary(study)
            if finished + running < search.trials:
                study.optimize(objective, n_trials=1, catch=(TrialFailed,))
                failures = failures + [objective.failure] if objective.failure else []
                continue
        finally:
            lock.release()
        time.sleep(search.heartbeat_interval)  # the last trials run elsewhere, or their worker died: wait for them
    raise SearchError(f"{FAILURES_IN_A_ROW} trials in a row failed on this worker; the last: {failures[-1]}")


def summary(study) -> dict:
    counts: dict[str, int] = {}
    for trial in study.trials:
        counts[trial.state.name] = counts.get(trial.state.name, 0) + 1
    return counts


# ---- several workers, the best trial, the report ----------------------------------------------------------


def run_workers(args: argparse.Namespace) -> int:
    """`--workers N`: N processes of this command, each one worker; their lines prefixed by worker."""
    base = [sys.executable, "-m", "pipeline.search", "--config", args.config]
    base += ["--storage", args.storage] if args.storage else []
    procs = [subprocess.Popen(base + ["--worker", str(i)]) for i in range(args.workers)]
    try:
        codes = [proc.wait() for proc in procs]
    except KeyboardInterrupt:
        for proc in procs:
            proc.send_signal(signal.SIGINT)
        codes = [proc.wait() for proc in procs]
    return max(codes)


def best_lines(search: SearchSpace, url: str, repo: Path) -> list[str]:
    study = open_study(search, url, heartbeat=False)
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    if not complete:
        raise SearchError(f"study {search.study} in {shown_url(url)} has no complete trial yet: run the search first")
    best = study.best_trial
    name = best.user_attrs.get("experiment", experiment_name(search, best.number))
    lines = [
        f"best: trial {best.number} of {len(study.trials)} ({name}): {search.objective.metric} = {best.value:.6g}",
        "overrides: " + " ".join(f"-S {o}" for o in best.user_attrs.get("overrides", overrides(best.params))),
    ]
    if experiment_ref(repo, name) is None:
        lines.append(f"the experiment {name} is not in this repository: fetch it (`dvc exp pull <remote> {name}`)")
    lines.append(f"apply it: dvc exp apply {name}")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipeline.search", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="search.yaml", help="the search space (default search.yaml)")
    parser.add_argument("--storage", help="an Optuna storage URL (default: VIDEOGAN_SEARCH_STORAGE, then a local file)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes on this machine (default 1)")
    parser.add_argument("--best", action="store_true", help="print the best trial and how to apply it")
    parser.add_argument("--report", action="store_true", help="write reports/search/<study>/ and stop")
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)  # one of --workers N
    args = parser.parse_args(argv)
    from pipeline.common import set_quiet_defaults
    from pipeline.search_report import write_report

    set_quiet_defaults()
    repo = repo_root()
    try:
        search = load_search(repo / args.config, repo / "params.yaml")
        url = storage_url(repo, args.storage, search.storage)
        if args.best:
            print("\n".join(best_lines(search, url, repo)))
            return
        if args.report:
            print(f"search: report in {write_report(open_study(search, url, heartbeat=False), repo, search)}")
            return
        if args.worker is None:  # the command a person ran; its --workers were started after this check
            check_baseline(repo)  # before Prefect starts: a missing evaluator is said in a second
    except (ConfigError, SearchError) as exc:
        fail(str(exc))
    if args.workers < 1:
        fail(f"--workers {args.workers}: give 1 or more")
    if args.workers > 1:
        try:  # the storage's tables and the study, made once before any worker: N workers making them at once race
            open_study(search, url, heartbeat=False)
        except SearchError as exc:
            fail(str(exc))
        code = run_workers(args)
    else:
        from functools import partial

        run_stage(partial(search_flow, args.config, args.storage, args.worker or 0, check=False), tracked=True)
        code = 0
    if args.worker is None:  # the command a person ran (not one of its --workers): the study's state
        study = open_study(search, url, heartbeat=False)
        print(f"search: {summary(study)}; report in {write_report(study, repo, search)}")
        if any(t.state.name == "COMPLETE" for t in study.trials):
            print("\n".join(best_lines(search, url, repo)))
    raise SystemExit(code)


if __name__ == "__main__":
    main()
