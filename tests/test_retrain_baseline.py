"""The retraining gate's baseline: HEAD's committed fd_video, else the workspace's reports/metrics.json
(the last `dvc repro`), else none, and then the flow run fails instead of passing unjudged. The
`dvc metrics diff` here is the real one, in a small git + DVC repository (no `dvc exp run`: the
experiment is a branch holding its reports/metrics.json)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import retrain

WORKSPACE = "the workspace's reports/metrics.json"
DVC_YAML = """stages:
  evaluate:
    cmd: python -c "print('not run here')"
    metrics:
      - reports/metrics.json:
          cache: false
"""


def sh(repo: Path, *command: str) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "DVC_NO_ANALYTICS": "true",
    }
    if command[0] == "dvc":
        command = (str(Path(sys.executable).parent / "dvc"), *command[1:])
    done = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(command)}:\n{done.stdout}\n{done.stderr}"


def write_metrics(repo: Path, value: float) -> None:
    (repo / "reports").mkdir(exist_ok=True)
    (repo / retrain.METRICS_FILE).write_text(json.dumps({"fd_video": value, "is": 1.5}))


def commit_metrics(repo: Path, value: float, message: str) -> None:
    write_metrics(repo, value)
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", message)


@pytest.fixture
def repo(tmp_path) -> Path:
    """A fresh clone's state: HEAD has dvc.yaml but no reports/metrics.json; the experiment
    `retrain-x` (here a branch) has fd_video 5."""
    repo = tmp_path / "repo"
    repo.mkdir()
    sh(repo, "git", "init", "-q", "-b", "main")
    sh(repo, "dvc", "init", "-q")
    (repo / "dvc.yaml").write_text(DVC_YAML)
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "no metrics committed")
    sh(repo, "git", "checkout", "-qb", "retrain-x")
    commit_metrics(repo, 5.0, "the experiment")
    sh(repo, "git", "checkout", "-q", "main")
    assert not (repo / retrain.METRICS_FILE).exists()
    return repo


# ---- the pieces ----------------------------------------------------------------------------------


def test_the_workspace_file_is_read(tmp_path):
    write_metrics(tmp_path, 7.25)
    assert retrain.workspace_metric(tmp_path) == 7.25
    (tmp_path / retrain.METRICS_FILE).write_text('{"fd_video": 7}')
    assert retrain.workspace_metric(tmp_path) == 7.0


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "{not json",
        "[7.0]",
        '{"is": 1.5}',
        '{"fd_video": "7"}',
        '{"fd_video": true}',
        '{"fd_video": NaN}',
        '{"fd_video": null}',
    ],
)
def test_a_missing_or_unusable_workspace_file_is_no_baseline(tmp_path, text):
    if text is not None:
        (tmp_path / "reports").mkdir()
        (tmp_path / retrain.METRICS_FILE).write_text(text)
    assert retrain.workspace_metric(tmp_path) is None


def test_heads_value_comes_first_then_the_workspace_then_none():
    assert retrain.choose_baseline(6.0, 9.0) == (6.0, "HEAD")
    assert retrain.choose_baseline(0.0, 9.0) == (0.0, "HEAD")
    assert retrain.choose_baseline(None, 9.0) == (9.0, WORKSPACE)
    assert retrain.choose_baseline(None, None) == (None, None)


# ---- with the real `dvc metrics diff` ------------------------------------------------------------


def test_without_a_committed_baseline_the_workspace_file_is_used(repo):
    write_metrics(repo, 7.0)  # the user's last `dvc repro`, not committed
    head, new = retrain.metric_change.fn(repo, "retrain-x")
    assert (head, new) == (None, 5.0)
    baseline, against = retrain.choose_baseline(head, retrain.workspace_metric(repo))
    assert (baseline, against) == (7.0, WORKSPACE)
    assert f"7 -> 5 (-28.6% vs {WORKSPACE};" in retrain.judge(baseline, new, 0.10, against, "retrain-x")


def test_heads_committed_value_wins_over_the_workspace(repo):
    commit_metrics(repo, 6.0, "the baseline, committed")
    write_metrics(repo, 9.0)  # a later, uncommitted `dvc repro`
    head, new = retrain.metric_change.fn(repo, "retrain-x")
    assert (head, new) == (6.0, 5.0)
    baseline, against = retrain.choose_baseline(head, retrain.workspace_metric(repo))
    assert (baseline, against) == (6.0, "HEAD")
    assert "6 -> 5 (-16.7% vs HEAD;" in retrain.judge(baseline, new, 0.10, against, "retrain-x")


# ---- the flow ------------------------------------------------------------------------------------


@pytest.fixture
def flow_without_prefect(monkeypatch):
    """retrain_flow's own code with its tasks as plain functions and `dvc exp run` left out; the
    stand-in for it runs `during_run` (what happens in the workspace meanwhile)."""
    during_run = []
    monkeypatch.setattr(retrain, "check_dvc_free", retrain.check_dvc_free.fn)
    monkeypatch.setattr(retrain, "metric_change", retrain.metric_change.fn)
    monkeypatch.setattr(retrain, "run_experiment", lambda repo, name, overrides: [f() for f in during_run])
    return during_run


def run_flow(repo: Path) -> dict:
    return retrain.retrain_flow.fn(overrides=["train.seed=1"], repo=str(repo), experiment_name="retrain-x")


def test_the_flow_fails_with_what_to_do_when_there_is_no_baseline(repo, flow_without_prefect, capsys):
    with pytest.raises(retrain.NoBaselineError) as caught:
        run_flow(repo)
    message = str(caught.value)
    assert "no baseline to judge the experiment against" in message
    assert "`dvc exp apply retrain-x`" in message and "`dvc repro`" in message
    assert "passing" not in capsys.readouterr().out


def test_the_flow_judges_against_the_workspace_as_the_run_found_it(repo, flow_without_prefect, capsys):
    write_metrics(repo, 7.0)
    flow_without_prefect.append(lambda: write_metrics(repo, 100.0))  # a `dvc repro` during the run
    result = run_flow(repo)
    assert result["fd_video_baseline"] == 7.0 and result["fd_video_baseline_from"] == WORKSPACE
    assert result["fd_video"] == 5.0
    said = capsys.readouterr().out
    assert f"retrain: experiment retrain-x (train.seed=1): fd_video 7 -> 5 (-28.6% vs {WORKSPACE};" in said
