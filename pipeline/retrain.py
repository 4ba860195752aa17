"""Scheduled retraining: `dvc exp run` with new overrides, judged against a baseline fd_video.

The flow behind the `videogan-retrain` deployment in prefect.yaml (README "Prefect and scheduled retraining"):

1. refuse to start while another DVC process works in the repository (a clear error naming it),
   and read the workspace's reports/metrics.json (the last `dvc repro` there) as it is before the run;
2. `dvc exp run --temp -n <name> -S <override>...`: the experiment runs in a temporary copy
   (`.dvc/tmp/exps/`), so the workspace people work in is never touched; it is saved as a DVC
   experiment (`dvc exp show`, `dvc exp apply <name>`) and its MLflow run is named `<name>`;
3. `dvc metrics diff HEAD <name>`: the experiment's reports/metrics.json against HEAD's;
4. the baseline: HEAD's committed fd_video; when HEAD has none (dvc.lock and reports/metrics.json
   not committed, as on a fresh clone), the workspace's from step 1; when neither has one, the
   flow run fails (NoBaselineError, saying how to give it one) rather than passing unjudged;
5. fail the flow run when `fd_video` is worse than the baseline's by more than the margin.

By default the override is a new `train.seed`: the flow run's scheduled start time in Unix seconds
modulo SEED_RANGE, so every scheduled run trains a new seed and a retry of the same flow run the
same one. Run it once by hand, without a server: `python -m pipeline.retrain`.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections import deque
from pathlib import Path

from prefect import flow, task
from prefect.runtime import flow_run

METRICS_FILE = "reports/metrics.json"
METRIC = "fd_video"
# Seeds stay in a range every tool reads as a plain integer (steps.py keys its draws on any integer seed).
SEED_RANGE = 2**31


class DvcBusyError(RuntimeError):
    """Another DVC process holds the repository's lock."""


class MetricWorsenedError(RuntimeError):
    """The retrained model is worse than the baseline by more than the margin."""


class NoBaselineError(RuntimeError):
    """Neither HEAD nor the workspace has an fd_video to judge the experiment against."""


def dvc_env() -> dict[str, str]:
    """This interpreter's bin first on PATH: DVC's `python -m pipeline.<stage>` finds the packages."""
    bin_dir = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "DVC_NO_ANALYTICS": "true"}


def process_line(pid: int) -> str | None:
    """`PID <n>: <command line>` for a live process, None for a dead one (a stale lock entry)."""
    import psutil

    try:
        return f"PID {pid}: {' '.join(psutil.Process(pid).cmdline()) or '?'}"
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None if not psutil.pid_exists(pid) else f"PID {pid}"


def repo_lock_holder(lock: Path) -> str | None:
    """Who holds `.dvc/tmp/lock` (DVC's repository lock, flock-ed, the holder's PID written in it)."""
    import fcntl

    if not lock.exists():
        return None
    with open(lock, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            text = handle.read().strip()
            return process_line(int(text)) if text.isdigit() else f"an unknown process ({lock})"
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None


def stage_lock_holders(rwlock: Path) -> list[str]:
    """Live processes in `.dvc/tmp/rwlock` (the read/write locks of running stages)."""
    if not rwlock.exists():
        return []
    try:
        table = json.loads(rwlock.read_text() or "{}")
    except json.JSONDecodeError:
        return [f"an unreadable {rwlock}"]
    infos = [
        info
        for mode in ("read", "write")
        for entry in table.get(mode, {}).values()
        for info in (entry if isinstance(entry, list) else [entry])
    ]
    pids = sorted({int(info["pid"]) for info in infos if str(info.get("pid", "")).isdigit()})
    return [line for line in map(process_line, pids) if line]


def busy_message(repo: Path, holders: list[str]) -> str:
    tmp = repo / ".dvc" / "tmp"
    return (
        f"DVC is busy in {repo}; held by:\n  " + "\n  ".join(holders) + "\n"
        "Only one DVC run at a time: wait for it to finish (or stop it), then run the retraining "
        f"again. If no such process is running any more, remove {tmp / 'lock'} and {tmp / 'rwlock'}."
    )


@task(cache_policy=None)
def check_dvc_free(repo: Path) -> None:
    tmp = repo / ".dvc" / "tmp"
    holders = [h for h in [repo_lock_holder(tmp / "lock")] if h] + stage_lock_holders(tmp / "rwlock")
    if holders:
        raise DvcBusyError(busy_message(repo, list(dict.fromkeys(holders))))


@task(cache_policy=None)
def run_experiment(repo: Path, name: str, overrides: list[str]) -> None:
    """`dvc exp run` in a temporary copy; its output goes to the flow run's log as it comes."""
    command = ["dvc", "exp", "run", "--temp", "-n", name] + [a for o in overrides for a in ("-S", o)]
    print("$ " + " ".join(command))
    tail: deque[str] = deque(maxlen=40)
    with subprocess.Popen(
        command, cwd=repo, env=dvc_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    ) as proc:
        for line in proc.stdout:
            tail.append(line.rstrip())
            print(line.rstrip()[-500:])
    text = "\n".join(tail)
    if proc.returncode != 0 and any(s in text for s in ("Unable to acquire lock", "is being blocked by")):
        raise DvcBusyError(busy_message(repo, ["another DVC process; `dvc exp run` said:", *list(tail)[-5:]]))
    if proc.returncode != 0:
        raise RuntimeError(f"`{' '.join(command)}` failed with exit code {proc.returncode}:\n{text}")


@task(cache_policy=None)
def metric_change(repo: Path, name: str) -> tuple[float | None, float | None]:
    """(baseline, experiment) values of fd_video from `dvc metrics diff HEAD <name>`."""
    command = ["dvc", "metrics", "diff", "HEAD", name, "--all", "--json"]
    done = subprocess.run(command, cwd=repo, env=dvc_env(), capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"`{' '.join(command)}` failed:\n{done.stderr or done.stdout}")
    change = json.loads(done.stdout or "{}").get(METRICS_FILE, {}).get(METRIC, {})
    print(f"$ {' '.join(command)}  ->  {METRIC}: {change}")
    return change.get("old"), change.get("new")


def workspace_metric(repo: Path) -> float | None:
    """fd_video in the workspace's reports/metrics.json (a flat name -> number JSON that the last
    `dvc repro` wrote); None when the file is missing or unreadable or has no finite number for it."""
    try:
        data = json.loads((repo / METRICS_FILE).read_text())
    except (OSError, ValueError):
        return None
    value = data.get(METRIC) if isinstance(data, dict) else None
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


def choose_baseline(head: float | None, workspace: float | None) -> tuple[float | None, str | None]:
    """(value, where it comes from): HEAD's committed fd_video, else the workspace's, else (None, None)."""
    if head is not None:
        return head, "HEAD"
    if workspace is not None:
        return workspace, f"the workspace's {METRICS_FILE}"
    return None, None


def no_baseline_message(name: str, new: float) -> str:
    return (
        f"no baseline to judge the experiment against: HEAD has no committed {METRICS_FILE} with "
        f"{METRIC}, and the workspace's {METRICS_FILE} is missing, unreadable or without {METRIC}. "
        f"The experiment {name} ({METRIC} = {new:.4g}) is kept: `dvc exp apply {name}` adopts it. "
        f"To give the gate a baseline, run `dvc repro` in the repository (it writes {METRICS_FILE}), "
        f"or commit dvc.lock and {METRICS_FILE}."
    )


def judge(
    baseline: float | None, new: float | None, margin: float, against: str | None = "HEAD", name: str = "<name>"
) -> str:
    """A verdict line when the experiment is acceptable; MetricWorsenedError when it is not;
    NoBaselineError when there is no baseline. `against` names the baseline's source, `name` the
    experiment. `margin` is relative: 0.10 lets fd_video grow by at most 10% of the baseline's value."""
    if new is None:
        raise MetricWorsenedError(f"the experiment wrote no {METRIC} to {METRICS_FILE}")
    if baseline is None:
        raise NoBaselineError(no_baseline_message(name, new))
    worsening = (new - baseline) / abs(baseline) if baseline else (float("inf") if new > 0 else 0.0)
    line = f"{METRIC} {baseline:.4g} -> {new:.4g} ({worsening:+.1%} vs {against}; the margin allows {margin:+.1%})"
    if worsening > margin:
        raise MetricWorsenedError(f"retrained model is worse than the baseline: {line}")
    return line


def new_seed() -> int:
    """The flow run's scheduled start in Unix seconds (mod SEED_RANGE): new for every scheduled run."""
    return int(flow_run.scheduled_start_time.timestamp()) % SEED_RANGE


@flow(name="retrain", log_prints=True)
def retrain_flow(
    overrides: list[str] | None = None,
    max_fd_video_worsening: float = 0.10,
    repo: str | None = None,
    experiment_name: str | None = None,
) -> dict:
    """Retrain as a DVC experiment and fail when fd_video worsens by more than the margin.

    overrides: `dvc exp run -S` values, e.g. ["train.seed=7", "train.iterations=2000"];
        None = a new train.seed (see new_seed).
    max_fd_video_worsening: the largest accepted relative increase of fd_video over the baseline's
        (HEAD's, else the workspace's reports/metrics.json; none fails the run: NoBaselineError).
    repo: the repository folder; None = the working directory (prefect.yaml's pull step sets it).
    experiment_name: the DVC experiment's (and MLflow run's) name; None = `retrain-<flow run name>`.
    """
    root = Path(repo or os.getcwd()).resolve()
    overrides = [f"train.seed={new_seed()}"] if overrides is None else list(overrides)
    name = experiment_name or f"retrain-{flow_run.name}"
    check_dvc_free(root)
    workspace = workspace_metric(root)  # before the run: the state the experiment starts from
    run_experiment(root, name, overrides)
    head, new = metric_change(root, name)
    baseline, against = choose_baseline(head, workspace)
    verdict = judge(baseline, new, max_fd_video_worsening, against, name)
    print(f"retrain: experiment {name} ({' '.join(overrides)}): {verdict}")
    return {
        "experiment": name,
        "overrides": overrides,
        f"{METRIC}_baseline": baseline,
        f"{METRIC}_baseline_from": against,
        METRIC: new,
    }


if __name__ == "__main__":
    from pipeline.common import set_quiet_defaults

    set_quiet_defaults()
    retrain_flow()
