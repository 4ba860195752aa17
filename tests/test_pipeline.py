"""`dvc repro` end to end in a temporary copy of the repository, on a tiny config."""

import json
import os
import signal
import subprocess
import time

import mlflow
import numpy as np
import pytest
import torch
from pipeline_support import copy_repo, env_for, set_params, sh
from support import DIGIT_METRICS

from videogan.model_files import load_logged_generator

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

METRICS = DIGIT_METRICS


def client(repo):
    mlflow.set_tracking_uri(f"sqlite:///{repo / 'mlflow.db'}")
    return mlflow.tracking.MlflowClient()


def runs(repo):
    c = client(repo)
    exp = c.get_experiment_by_name("videogan-moving_mnist_generated-16px-10f")
    return c.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])


def test_repro_writes_every_output(pipeline_repo):
    repo = pipeline_repo
    for name in [
        "data/processed/train.npy",
        "data/processed/val.npy",
        "data/processed/test.npy",
        "data/processed/meta.json",
        "data/processed/train_labels.npz",
        "models/evaluator.pt",
        "models/checkpoint.pt",
        "reports/train_log.jsonl",
        "reports/train_log.csv",
        "reports/samples.gif",
    ]:
        assert (repo / name).exists(), name
    snapshots = sorted(p.name for p in (repo / "models/snapshots").iterdir())
    assert snapshots == ["step_0000000.pt", "step_0000003.pt", "step_0000006.pt"]
    metrics = json.loads((repo / "reports/metrics.json").read_text())
    for name in METRICS:
        assert np.isfinite(metrics[name]) and np.isfinite(metrics[f"{name}_ref"]), name
    assert "fd_video_init" in metrics
    assert np.isfinite([metrics["fvd"], metrics["fvd_ref"], metrics["fvd_init"]]).all()
    assert (metrics["fvd_videos"], metrics["fvd_frames"]) == (4, 10)
    assert np.load(repo / "data/processed/train.npy", mmap_mode="r").shape[1:] == (10, 16, 16, 1)


def test_a_second_repro_runs_nothing(pipeline_repo):
    out = sh(pipeline_repo, "dvc", "repro").stdout
    assert "Running stage" not in out
    assert "didn't change" in out or "up to date" in out


def test_dvc_metrics_and_plots_read_the_reports(pipeline_repo):
    shown = json.loads(sh(pipeline_repo, "dvc", "metrics", "show", "--json").stdout)
    assert "fd_video" in json.dumps(shown)
    sh(pipeline_repo, "dvc", "plots", "show", "-o", "plots_out")
    assert (pipeline_repo / "plots_out/index.html").exists()


def test_the_training_run_is_recorded_in_mlflow(pipeline_repo):
    (run,) = runs(pipeline_repo)
    assert run.data.params["train.iterations"] == "6" and run.data.params["data.frame_size"] == "16"
    assert {"git_commit", "data_digest", "evaluator_version"} <= run.data.tags.keys()
    history = client(pipeline_repo).get_metric_history(run.info.run_id, "train/loss_critic")
    assert [m.step for m in history] == [2, 4, 6]
    assert {
        "eval/fd_video",
        "eval/recognisable_frames",
        "eval/fvd",
        "eval/fvd_ref",
        "eval/fvd_init",
    } <= run.data.metrics.keys()
    artifacts = {a.path for a in client(pipeline_repo).list_artifacts(run.info.run_id)}
    assert {"checkpoint", "snapshots", "media", "metrics.json"} <= artifacts
    media = {a.path for a in client(pipeline_repo).list_artifacts(run.info.run_id, "media")}
    assert "media/samples.gif" in media
    checkpoint = torch.load(pipeline_repo / "models/checkpoint.pt", weights_only=True)
    assert checkpoint["extra"]["mlflow_run_id"] == run.info.run_id


def test_the_logged_generator_loads_as_a_sampler(pipeline_repo):
    (run,) = runs(pipeline_repo)
    client(pipeline_repo)
    models = mlflow.search_logged_models(experiment_ids=[run.info.experiment_id], output_format="list")
    generator, config, step = load_logged_generator(models[0].model_uri)
    videos = generator(generator.sample_noise(2, torch.Generator().manual_seed(0)))
    assert videos.shape == (2, 1, 10, 16, 16) and step == int(run.data.params["train.iterations"])
    assert {a.path for a in mlflow.MlflowClient().list_logged_model_artifacts(models[0].model_id)} == {
        "generator.safetensors",
        "generator.json",
    }  # no pickle in the model


def test_editing_a_train_param_reruns_only_train_evaluate_render(pipeline_repo):
    set_params(pipeline_repo, {"train": {"optim": {"critic": {"lr": 1e-4}}}})
    out = sh(pipeline_repo, "dvc", "repro").stdout
    ran = {line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")}
    assert ran == {"train", "evaluate", "render"}
    assert "starting fresh" in out  # a changed learning rate trains from step 0
    steps = [json.loads(line)["step"] for line in (pipeline_repo / "reports/train_log.jsonl").read_text().splitlines()]
    assert steps == [2, 4, 6]
    assert len(runs(pipeline_repo)) == 2


def test_lowering_iterations_after_a_finished_run_is_refused_and_keeps_it(pipeline_repo):
    models = pipeline_repo / "models"
    kept = {p: p.read_bytes() for p in [*models.rglob("*.pt"), *pipeline_repo.glob(".videogan/resume/*.pt")]}
    set_params(pipeline_repo, {"train": {"iterations": 3}})
    done = sh(pipeline_repo, "dvc", "repro", check=False)
    set_params(pipeline_repo, {"train": {"iterations": 6}})
    said = done.stdout + done.stderr
    errors = [line for line in said.splitlines() if line.startswith("error: ")]
    assert done.returncode != 0 and len(errors) == 1, said
    assert "a finished run of this config is at step 6" in errors[0] and "train.iterations=3" in errors[0]
    assert "Traceback" not in said
    assert {p: p.read_bytes() for p in kept} == kept  # checkpoint, snapshots and resume state, untouched
    assert sorted(models.rglob("*.pt")) == sorted(p for p in kept if models in p.parents)
    assert "Running stage" not in sh(pipeline_repo, "dvc", "repro").stdout  # back at 6: nothing to redo


def logged_steps(repo):
    return [json.loads(line)["step"] for line in (repo / "reports/train_log.jsonl").read_text().splitlines()]


def test_killing_repro_during_train_then_rerunning_resumes(pipeline_repo):
    set_params(pipeline_repo, {"train": {"iterations": 400, "log_every": 1, "resume_every": 2}})
    runs_before = len(runs(pipeline_repo))
    proc = subprocess.Popen(
        ["dvc", "repro"],
        cwd=pipeline_repo,
        env=env_for(pipeline_repo),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    log = pipeline_repo / "reports/train_log.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and (not log.exists() or len(log.read_text().splitlines()) < 8):
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)  # dvc and the stage at once (the local Prefect API runs on)
    proc.wait(timeout=60)
    stopped_at = logged_steps(pipeline_repo)[-1]
    runs_when_stopped = len(runs(pipeline_repo))
    assert runs_when_stopped in (runs_before, runs_before + 1)

    set_params(pipeline_repo, {"train": {"iterations": stopped_at + 2}})
    out = sh(pipeline_repo, "dvc", "repro").stdout
    assert "resuming from step" in out, out
    steps = logged_steps(pipeline_repo)
    assert steps == sorted(set(steps)) and steps[-1] == stopped_at + 2
    assert set(range(7, stopped_at + 3)) <= set(steps)  # one unbroken run on from the step-6 baseline
    assert len(runs(pipeline_repo)) == runs_when_stopped  # the resumed training continued its MLflow run


def commit_all(repo, message):
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", message, check=False)


def test_push_to_a_remote_and_a_fresh_clone_reproduces_nothing(pipeline_repo, tmp_path):
    repo = pipeline_repo
    sh(repo, "dvc", "remote", "add", "-d", "--force", "shared", str(tmp_path / "remote"))
    commit_all(repo, "a trained state and its remote")
    sh(repo, "dvc", "push")
    clone = tmp_path / "clone"
    sh(tmp_path, "git", "clone", "-q", str(repo), str(clone))
    sh(clone, "dvc", "pull")
    assert (clone / "models/checkpoint.pt").read_bytes() == (repo / "models/checkpoint.pt").read_bytes()
    out = sh(clone, "dvc", "repro").stdout
    assert "Running stage" not in out, out


def test_a_queued_experiment_records_into_the_repository_store(tmp_path, monkeypatch):
    """DVC runs a queued experiment in <root>/.dvc/tmp/exps/...: its MLflow store is still the root's
    (the parallel sweep through a tracking server is in tests/test_team_stack.py)."""
    from pipeline.common import repo_root, tracking_uri

    root = tmp_path / "repo"
    copy = root / ".dvc" / "tmp" / "exps" / "tmpabc123"
    copy.mkdir(parents=True)
    (root / "dvc.yaml").write_text("stages: {}\n")
    (copy / "dvc.yaml").write_text("stages: {}\n")
    assert repo_root(copy) == root
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # mlflow.set_tracking_uri sets it
    monkeypatch.chdir(copy)
    assert tracking_uri() == f"sqlite:///{root / 'mlflow.db'}"


def test_a_broken_params_file_stops_the_first_stage_and_writes_nothing(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    set_params(repo, {"train": {"loss": "wgan", "lrr": 0.1}})
    done = sh(repo, "dvc", "repro", check=False)
    assert done.returncode != 0
    said = done.stdout + done.stderr
    assert "train.loss" in said and "'alternative', 'non-saturating' or 'hinge'" in said
    assert "train.lrr: unknown key" in said
    assert not (repo / "data/raw").exists() and not (repo / "data/processed").exists()
