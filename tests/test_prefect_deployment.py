"""The scheduled retraining: its verdict and lock checks (fast), and the prefect.yaml deployment run
for real (a loopback `prefect server`, a process work pool, `prefect deploy`, a worker)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
from pipeline_support import VENV_BIN, env_for

from pipeline import retrain

POOL, DEPLOYMENT = "videogan-process", "retrain/videogan-retrain"


# ---- the verdict ---------------------------------------------------------------------------------

def test_a_worsening_within_the_margin_passes():
    assert "+5.0%" in retrain.judge(100.0, 105.0, 0.10)
    assert "-20.0%" in retrain.judge(100.0, 80.0, 0.10)


def test_a_worsening_beyond_the_margin_fails_with_the_numbers():
    with pytest.raises(retrain.MetricWorsenedError, match=r"100 -> 111 \(\+11\.0% .*\+10\.0%"):
        retrain.judge(100.0, 111.0, 0.10)


def test_a_baseline_without_metrics_passes_with_a_note():
    assert "no fd_video to compare with" in retrain.judge(None, 5.0, 0.10)


def test_an_experiment_without_metrics_fails():
    with pytest.raises(retrain.MetricWorsenedError, match="wrote no fd_video"):
        retrain.judge(100.0, None, 0.10)


# ---- the DVC lock --------------------------------------------------------------------------------

@contextmanager
def holding(code: str, *args: str):
    """A live process (that prints `ready` once it holds what `code` takes)."""
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        yield proc
    finally:
        proc.kill()
        proc.wait()


def dvc_tmp(repo: Path) -> Path:
    tmp = repo / ".dvc" / "tmp"
    tmp.mkdir(parents=True)
    return tmp


def test_a_free_repository_passes(tmp_path):
    dvc_tmp(tmp_path).joinpath("lock").write_text(" 999999\n")  # left behind, but nobody holds it
    retrain.check_dvc_free.fn(tmp_path)


def test_a_held_repo_lock_names_the_holder_and_what_to_do(tmp_path):
    lock = dvc_tmp(tmp_path) / "lock"
    code = "import sys, time, zc.lockfile; l = zc.lockfile.LockFile(sys.argv[1]); print('ready', flush=True); time.sleep(60)"
    with holding(code, str(lock)) as proc:  # zc.lockfile: what DVC itself uses for .dvc/tmp/lock
        with pytest.raises(retrain.DvcBusyError) as caught:
            retrain.check_dvc_free.fn(tmp_path)
    message = str(caught.value)
    assert f"PID {proc.pid}: " in message and "zc.lockfile" in message
    assert "Only one DVC run at a time" in message and str(lock) in message


def test_a_running_stage_in_the_rwlock_is_named_and_a_dead_one_ignored(tmp_path):
    rwlock = dvc_tmp(tmp_path) / "rwlock"
    with holding("import time; print('ready', flush=True); time.sleep(60)") as proc:
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True).stdout.strip()
        rwlock.write_text(json.dumps({"read": {"data/processed": [{"pid": int(dead), "cmd": "dvc repro"}]},
                                      "write": {}}))
        retrain.check_dvc_free.fn(tmp_path)  # a stale entry: DVC removes it itself
        rwlock.write_text(json.dumps({"read": {}, "write": {"models/checkpoint.pt": {"pid": proc.pid,
                                                                                      "cmd": "dvc repro"}}}))
        with pytest.raises(retrain.DvcBusyError, match=rf"PID {proc.pid}: .*time\.sleep"):
            retrain.check_dvc_free.fn(tmp_path)


def test_dvc_refusing_the_lock_becomes_the_same_clear_error(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "dvc"
    fake.write_text("#!/bin/sh\necho 'ERROR: Unable to acquire lock. Most likely another DVC process is running'\nexit 255\n")
    fake.chmod(0o755)
    monkeypatch.setattr(retrain, "dvc_env", lambda: {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"})
    with pytest.raises(retrain.DvcBusyError, match="DVC is busy"):
        retrain.run_experiment.fn(tmp_path, "retrain-x", ["train.seed=1"])


# ---- the deployment, for real --------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def api_get(url: str):
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


@contextmanager
def background(args: list[str], cwd: Path, env: dict, log: Path):
    """A process in its own group, always stopped with everything it started."""
    with open(log, "w") as out:
        proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        yield proc
    finally:
        for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
            try:
                os.killpg(proc.pid, sig)
                proc.wait(wait)
                break
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                continue


@pytest.fixture
def prefect_server(tmp_path):
    """`prefect server start` on 127.0.0.1 with its own home; yields the client environment's additions."""
    port, home = free_port(), tmp_path / "prefect-home"
    home.mkdir()
    env = {**env_for(tmp_path), "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    api = f"http://127.0.0.1:{port}/api"
    log = tmp_path / "server.log"
    with background([str(VENV_BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port),
                     "--no-ui", "--analytics-off"], tmp_path, env, log) as proc:
        deadline = time.monotonic() + 120
        while True:
            try:
                api_get(f"{api}/health")
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.5)
        yield {"PREFECT_HOME": str(home), "PREFECT_API_URL": api, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


def prefect(repo: Path, env: dict, *args: str) -> str:
    done = subprocess.run([str(VENV_BIN / "prefect"), *args], cwd=repo, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, f"prefect {' '.join(args)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.mark.e2e
@pytest.mark.slow
def test_the_scheduled_deployment_runs_a_retraining_on_a_worker(pipeline_repo, prefect_server, tmp_path):
    repo, api = pipeline_repo, prefect_server["PREFECT_API_URL"]
    env = {**env_for(repo), **prefect_server}
    prefect(repo, env, "work-pool", "create", POOL, "--type", "process")
    prefect(repo, env, "--no-prompt", "deploy", "--prefect-file", "prefect.yaml", "-n", "videogan-retrain")
    deployment = api_get(f"{api}/deployments/name/{DEPLOYMENT}")
    assert deployment["global_concurrency_limit"]["limit"] == 1 and deployment["schedules"][0]["active"]
    pulled = deployment["pull_steps"][0]["prefect.deployments.steps.set_working_directory"]["directory"]
    assert Path(pulled).resolve() == repo.resolve()

    # the default overrides (a new train.seed); a wide margin, as a tiny model's fd_video is noise
    out = prefect(repo, env, "deployment", "run", DEPLOYMENT, "-p", "max_fd_video_worsening=1000")
    run_id = re.search(r"UUID: ([0-9a-f-]{36})", out).group(1)
    log = tmp_path / "worker.log"
    with background([str(VENV_BIN / "prefect"), "worker", "start", "--pool", POOL, "--run-once",
                     "--install-policy", "never"], tmp_path, env, log) as worker:
        worker.wait(timeout=480)
    run = api_get(f"{api}/flow_runs/{run_id}")
    assert run["state_type"] == "COMPLETED", log.read_text()[-6000:]

    name = f"retrain-{run['name']}"
    listed = subprocess.run(["dvc", "exp", "list", "--name-only"], cwd=repo, env=env_for(repo),
                            capture_output=True, text=True).stdout.split()
    assert name in listed
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{repo / 'mlflow.db'}")
    experiments = [e.experiment_id for e in client.search_experiments()]
    [recorded] = client.search_runs(experiments, filter_string=f"attributes.run_name = '{name}'")
    assert recorded.data.tags["dvc_experiment"] == name
    assert "eval/fd_video" in recorded.data.metrics and recorded.data.params["train.seed"] != "0"
