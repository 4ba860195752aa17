"""`python -m pipeline.search` for real on the tiny config: trials as DVC experiments and MLflow runs, a trial the
median pruner stops, a worker killed with SIGKILL mid-trial, and `--best` applied with `dvc exp apply`.
The team's PostgreSQL with two workers: tests/test_team_stack.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import mlflow
import optuna
import psutil
import pytest
import yaml
from pipeline_support import copy_repo, env_for, sh

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RATES = {
    "train.optim.critic.lr": {"low": 1e-4, "high": 1e-3, "log": True},
    "train.optim.decoder.lr": {"low": 1e-4, "high": 1e-3, "log": True},
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A tiny copy after `dvc repro`, committed: every trial's stages before train come from DVC's cache."""
    repo = copy_repo(tmp_path_factory.mktemp("search") / "repo")
    sh(repo, "dvc", "repro")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "baseline run")
    return repo


def search_file(repo: Path, name: str, **changes) -> str:
    spec = {
        "study": name,
        "trials": 2,
        "params": RATES,
        "pruner": {"kind": "none", "samples": 20},
        "fixed": {"evaluate.fvd.enabled": False},
        "heartbeat_interval": 1,
        "heartbeat_grace": 4,
        **changes,
    }
    (repo / f"{name}.yaml").write_text(yaml.safe_dump(spec))
    return f"{name}.yaml"


def storage(repo: Path) -> str:
    path = repo / ".videogan/search/optuna.db"  # where the search keeps its studies without a server
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def load(repo: Path, name: str):
    return optuna.load_study(study_name=name, storage=storage(repo))


def experiment(repo: Path, name: str) -> dict:
    """The DVC experiment `name` as `dvc exp show --json` gives it: params and metrics."""
    for baseline in json.loads(sh(repo, "dvc", "exp", "show", "--json").stdout):
        for exp in baseline.get("experiments") or []:
            if exp.get("name") == name:
                data = exp["revs"][0]["data"]
                return {
                    "params": data["params"]["params.yaml"]["data"],
                    "metrics": data["metrics"]["reports/metrics.json"]["data"],
                }
    raise AssertionError(f"{name} is not in dvc exp show")


def mlflow_run(repo: Path, name: str):
    mlflow.set_tracking_uri(f"sqlite:///{repo / 'mlflow.db'}")
    (run,) = mlflow.search_runs(
        search_all_experiments=True, filter_string=f"attributes.run_name = '{name}'", output_format="list"
    )
    return run


def test_a_trial_that_falls_behind_is_pruned_before_its_last_iteration(repo):
    config = search_file(
        repo,
        "prune",
        fixed={"evaluate.fvd.enabled": False, "train.iterations": 9},
        pruner={"kind": "median", "startup_trials": 1, "warmup_steps": 0, "samples": 20},
    )
    # One finished trial whose every snapshot scored 0: any real trial is behind it at its first snapshot.
    study = optuna.create_study(study_name="prune", storage=storage(repo))
    lr = optuna.distributions.FloatDistribution(1e-4, 1e-3, log=True)
    study.add_trial(
        optuna.trial.create_trial(
            params={"train.optim.critic.lr": 3e-4, "train.optim.decoder.lr": 3e-4},
            distributions={"train.optim.critic.lr": lr, "train.optim.decoder.lr": lr},
            value=0.0,
            intermediate_values={3: 0.0, 6: 0.0, 9: 0.0},
        )
    )
    done = sh(repo, "python", "-m", "pipeline.search", "--config", config)
    trial = load(repo, "prune").trials[1]
    assert trial.state == optuna.trial.TrialState.PRUNED, done.stdout[-3000:]
    assert list(trial.intermediate_values) == [3] and trial.intermediate_values[3] > 0
    # in DVC: an experiment whose metrics say pruned, and whose training stopped at step 3 of 9
    shown = experiment(repo, "prune-1")
    assert shown["metrics"]["pruned"] == 1 and shown["metrics"]["pruned_at_step"] == 3
    assert shown["metrics"]["fd_video_at_prune"] == pytest.approx(trial.intermediate_values[3])
    assert shown["params"]["train"]["iterations"] == 9 and "fd_video" not in shown["metrics"]
    ref = sh(repo, "git", "for-each-ref", "--format=%(refname)", "refs/exps/").stdout.split()
    log = sh(repo, "git", "show", f"{next(r for r in ref if r.endswith('/prune-1'))}:reports/train_log.csv").stdout
    assert int(log.splitlines()[-1].split(",")[0]) <= 3  # the last logged step (every 2): none after the prune
    # in MLflow: finished (not failed), tagged as the study's pruned trial
    run = mlflow_run(repo, "prune-1")
    assert run.info.status == "FINISHED"
    assert run.data.tags["search.state"] == "PRUNED" and run.data.tags["search.study"] == "prune"
    assert run.data.tags["search.trial"] == "1" and run.data.metrics["eval/pruned"] == 1
    assert "pruned at step 3" in done.stdout or "PRUNED" in done.stdout


@pytest.fixture(scope="module")
def killed_and_resumed(repo):
    """A worker SIGKILLed while its first trial runs; then the same command again, until the study is done."""
    config = search_file(repo, "kill")
    worker = subprocess.Popen(
        ["python", "-m", "pipeline.search", "--config", config],
        cwd=repo,
        env=env_for(repo),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.time() + 300
    while time.time() < deadline:
        try:
            trials = load(repo, "kill").trials
        except KeyError:  # the study is not made yet
            trials = []
        if trials and trials[0].intermediate_values:  # it trains: its first snapshot is scored
            break
        time.sleep(0.5)
    else:
        worker.kill()
        raise AssertionError(worker.communicate()[0][-3000:])
    killed_point = trials[0].params
    worker.send_signal(signal.SIGKILL)
    worker.communicate()
    time.sleep(2)
    left = [
        p.info["cmdline"] for p in psutil.process_iter(["cmdline"]) if "kill-0" in " ".join(p.info["cmdline"] or [])
    ]
    resumed = sh(repo, "python", "-m", "pipeline.search", "--config", config)
    return {"killed_point": killed_point, "left": left, "resumed": resumed.stdout + resumed.stderr}


def test_a_killed_workers_trial_is_failed_retried_and_the_study_completes(repo, killed_and_resumed):
    trials = load(repo, "kill").trials
    states = [t.state.name for t in trials]
    failures = [t.user_attrs.get("failure") for t in trials if t.state.name == "FAIL"]
    assert states == ["FAIL", "COMPLETE", "COMPLETE"], (failures, killed_and_resumed["resumed"][-3000:])
    assert trials[1].params == killed_and_resumed["killed_point"]  # the retry of the killed point
    assert trials[1].system_attrs.get("failed_trial") == trials[0].number
    assert killed_and_resumed["left"] == []  # its `dvc exp run` died with the worker
    refs = sh(repo, "git", "for-each-ref", "--format=%(refname)", "refs/exps/").stdout.split()
    names = {ref.rsplit("/", 1)[-1] for ref in refs}
    assert {"kill-1", "kill-2"} <= names and "kill-0" not in names
    for trial in trials[1:]:
        shown = experiment(repo, f"kill-{trial.number}")
        assert shown["metrics"]["fd_video"] == pytest.approx(trial.value, rel=1e-12)
        assert shown["params"]["train"]["optim"]["critic"]["lr"] == trial.params["train.optim.critic.lr"]
        run = mlflow_run(repo, f"kill-{trial.number}")
        assert run.data.tags["search.trial"] == str(trial.number) and run.data.tags["search.state"] == "COMPLETE"
    assert (repo / "reports/search/kill/history.png").stat().st_size > 0
    table = (repo / "reports/search/kill/trials.csv").read_text().splitlines()
    assert [line.split(",")[1] for line in table[1:]] == ["FAIL", "COMPLETE", "COMPLETE"]
    summary = json.loads((repo / "reports/search/kill/summary.json").read_text())
    assert (summary["complete"], summary["pruned"], summary["failed"]) == (2, 0, 1)


def test_best_names_the_experiment_and_applying_it_sets_its_params(repo, killed_and_resumed):
    study = load(repo, "kill")
    best = study.best_trial
    said = sh(repo, "python", "-m", "pipeline.search", "--config", "kill.yaml", "--best").stdout
    assert f"best: trial {best.number} of 3 (kill-{best.number})" in said, said
    command = next(line for line in said.splitlines() if line.startswith("apply it: ")).removeprefix("apply it: ")
    assert command == f"dvc exp apply kill-{best.number}"
    sh(repo, *command.split())
    params = yaml.safe_load((repo / "params.yaml").read_text())
    assert params["train"]["optim"]["critic"]["lr"] == best.params["train.optim.critic.lr"]
    assert params["train"]["optim"]["decoder"]["lr"] == best.params["train.optim.decoder.lr"]
    assert json.loads((repo / "reports/metrics.json").read_text())["fd_video"] == pytest.approx(best.value, rel=1e-12)
    sh(repo, "git", "checkout", "--", ".")
    os.sync()


def test_optuna_dashboard_serves_the_study_live(repo, killed_and_resumed):
    from pipeline_support import VENV_BIN, free_port

    port = free_port()
    command = [str(VENV_BIN / "optuna-dashboard"), storage(repo), "--host", "127.0.0.1", "--port", str(port)]
    dashboard = subprocess.Popen(command + ["--server", "wsgiref", "--quiet"], stdout=subprocess.DEVNULL)
    try:
        api, deadline, summaries = f"http://127.0.0.1:{port}/api/studies", time.time() + 60, None
        while time.time() < deadline and summaries is None:
            try:
                with urllib.request.urlopen(api, timeout=5) as answer:
                    summaries = json.loads(answer.read())["study_summaries"]
            except OSError:
                time.sleep(0.5)
        assert summaries is not None, "optuna-dashboard did not answer"
        study_id = next(s["study_id"] for s in summaries if s["study_name"] == "kill")
        with urllib.request.urlopen(f"{api}/{study_id}", timeout=30) as answer:
            shown = json.loads(answer.read())
        assert [t["state"] for t in shown["trials"]] == ["Fail", "Complete", "Complete"]
        assert shown["best_trials"][0]["values"] == [pytest.approx(load(repo, "kill").best_value)]
    finally:
        dashboard.terminate()
        dashboard.wait(timeout=30)


def test_a_search_before_the_evaluator_is_built_says_what_to_run_first(tmp_path):
    bare = copy_repo(tmp_path / "bare")  # no `dvc repro`: no clip store, no evaluator, no dvc.lock
    done = sh(bare, "python", "-m", "pipeline.search", "--config", search_file(bare, "early"), check=False)
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "run `dvc repro evaluator`, then `git add dvc.lock`" in errors[0]
    assert "Traceback" not in done.stderr and sh(bare, "git", "for-each-ref", "refs/exps/").stdout == ""
