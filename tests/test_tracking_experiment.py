"""Two stages that start at once (a queued sweep, `dvc queue start -j 2`) both find no MLflow experiment
and both create it: the second must use the first's, not stop."""

from __future__ import annotations

import mlflow
import pytest

from pipeline.tracking import experiment_name, use_store
from videogan.config import config_from_dict


@pytest.fixture(autouse=True)
def own_tracking_uri(monkeypatch):
    """MLflow's process-wide URI and active experiment go back to what they were after each test."""
    import mlflow.tracking._tracking_service.utils as tracking_utils
    import mlflow.tracking.fluent as fluent

    monkeypatch.setattr(tracking_utils, "_tracking_uri", tracking_utils._tracking_uri)
    monkeypatch.setattr(fluent, "_active_experiment_id", fluent._active_experiment_id)


def test_an_experiment_created_by_a_parallel_stage_is_used(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    config = config_from_dict({}, "defaults")
    name = experiment_name(config)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    made_first = mlflow.create_experiment(name)  # the other stage, between this one's look and its create
    looked = []
    real_lookup = mlflow.get_experiment_by_name

    def lookup_before_the_other_stage(n):
        looked.append(n)
        return None if len(looked) == 1 else real_lookup(n)

    monkeypatch.setattr(mlflow, "get_experiment_by_name", lookup_before_the_other_stage)
    use_store(config)
    assert looked and mlflow.get_experiment_by_name(name).experiment_id == made_first
    with mlflow.start_run() as run:
        assert run.info.experiment_id == made_first


def test_other_tracking_errors_still_stop_the_stage(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    config = config_from_dict({}, "defaults")

    def refuse(*args, **kwargs):
        raise mlflow.exceptions.MlflowException("no permission", error_code="PERMISSION_DENIED")

    monkeypatch.setattr(mlflow, "create_experiment", refuse)
    with pytest.raises(mlflow.exceptions.MlflowException, match="no permission"):
        use_store(config)


@pytest.mark.parametrize("error, status", [("interrupted", "KILLED"), ("diverged", "FAILED")])
def test_a_training_that_stops_early_ends_its_mlflow_run_killed_or_failed(tmp_path, monkeypatch, error, status):
    import signal

    from pipeline.tracking import MlflowCallback
    from videogan.errors import TrainingDiverged, TrainingInterrupted

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    config = config_from_dict({}, "defaults")
    tracking = MlflowCallback(config, "digest")
    tracking.on_train_start(
        {
            "config": config,
            "start_step": 0,
            "iterations": 10,
            "resumed": False,
            "training_hash": "0123456789abcdef",
            "extra": {},
        }
    )
    stopped = {
        "interrupted": TrainingInterrupted(signal.SIGTERM, 3, tmp_path / "resume.pt"),
        "diverged": TrainingDiverged("the critic loss became nan"),
    }[error]
    tracking.on_train_stop(stopped)
    assert tracking.client.get_run(tracking.run_id).info.status == status
