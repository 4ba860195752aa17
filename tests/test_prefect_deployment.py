"""The scheduled retraining: its verdict and lock checks. The deployment itself runs for real on two
workers in tests/test_team_stack.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

from pipeline import retrain

# ---- the verdict ---------------------------------------------------------------------------------


def test_a_worsening_within_the_margin_passes():
    assert "+5.0%" in retrain.judge(100.0, 105.0, 0.10)
    assert "-20.0%" in retrain.judge(100.0, 80.0, 0.10)


def test_a_worsening_beyond_the_margin_fails_with_the_numbers():
    with pytest.raises(retrain.MetricWorsenedError, match=r"100 -> 111 \(\+11\.0% .*\+10\.0%"):
        retrain.judge(100.0, 111.0, 0.10)


def test_the_verdict_names_the_baseline_it_used():
    assert "vs HEAD;" in retrain.judge(100.0, 105.0, 0.10)
    workspace = "the workspace's reports/metrics.json"
    assert f"+5.0% vs {workspace};" in retrain.judge(100.0, 105.0, 0.10, workspace, "retrain-x")


def test_a_missing_baseline_is_refused_with_what_to_do():
    with pytest.raises(retrain.NoBaselineError) as caught:
        retrain.judge(None, 5.0, 0.10, None, "retrain-x")
    message = str(caught.value)
    assert message.startswith("no baseline to judge the experiment against")
    assert "The experiment retrain-x (fd_video = 5) is kept: `dvc exp apply retrain-x` adopts it" in message
    assert "run `dvc repro` in the repository" in message
    assert "commit dvc.lock and reports/metrics.json" in message
    assert "passing" not in message


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
    code = (
        "import sys, time, zc.lockfile; l = zc.lockfile.LockFile(sys.argv[1]); print('ready', flush=True); "
        "time.sleep(60)"
    )
    with holding(code, str(lock)) as proc:  # zc.lockfile: what DVC itself uses for .dvc/tmp/lock
        with pytest.raises(retrain.DvcBusyError) as caught:
            retrain.check_dvc_free.fn(tmp_path)
    message = str(caught.value)
    assert f"PID {proc.pid}: " in message and "zc.lockfile" in message
    assert "Only one DVC run at a time" in message and str(lock) in message


def test_a_running_stage_in_the_rwlock_is_named_and_a_dead_one_ignored(tmp_path):
    rwlock = dvc_tmp(tmp_path) / "rwlock"
    with holding("import time; print('ready', flush=True); time.sleep(60)") as proc:
        dead = subprocess.run(
            [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
        ).stdout.strip()
        rwlock.write_text(
            json.dumps({"read": {"data/processed": [{"pid": int(dead), "cmd": "dvc repro"}]}, "write": {}})
        )
        retrain.check_dvc_free.fn(tmp_path)  # a stale entry: DVC removes it itself
        rwlock.write_text(
            json.dumps({"read": {}, "write": {"models/checkpoint.pt": {"pid": proc.pid, "cmd": "dvc repro"}}})
        )
        with pytest.raises(retrain.DvcBusyError, match=rf"PID {proc.pid}: .*time\.sleep"):
            retrain.check_dvc_free.fn(tmp_path)


def test_dvc_refusing_the_lock_becomes_the_same_clear_error(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "dvc"
    fake.write_text(
        "#!/bin/sh\necho 'ERROR: Unable to acquire lock. Most likely another DVC process is running'\nexit 255\n"
    )
    fake.chmod(0o755)
    monkeypatch.setattr(
        retrain, "dvc_env", lambda: {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    )
    with pytest.raises(retrain.DvcBusyError, match="DVC is busy"):
        retrain.run_experiment.fn(tmp_path, "retrain-x", ["train.seed=1"])
