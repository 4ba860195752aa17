"""MLflow: one run per training run, continued on resume, joined by evaluate and render."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException

from pipeline.common import check_tracking_server, repo_root, tracking_uri
from pipeline.search_study import trial_link
from videogan.config import Config, flatten, to_dict
from videogan.training.callbacks import Callback

RUN_ID_KEY = "mlflow_run_id"


def experiment_name(config: Config) -> str:
    """One experiment per dataset and clip shape: the demo and the full size never share one."""
    d = config.data
    return f"videogan-{d.dataset}-{d.frame_size}px-{d.frames}f"


def use_store(config: Config):
    """MLflow on this config's experiment; a tracking server that does not answer stops the stage here,
    before any work, with the line to act on."""
    import mlflow

    chosen_by_user = bool(os.environ.get("MLFLOW_TRACKING_URI"))  # read first: set_tracking_uri sets it
    check_tracking_server()
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    name = experiment_name(config)
    if mlflow.get_experiment_by_name(name) is None:
        location = None if chosen_by_user else (repo_root() / "mlartifacts").as_uri()
        try:
            mlflow.create_experiment(name, artifact_location=location)
        except MlflowException as error:
            if error.error_code != "RESOURCE_ALREADY_EXISTS":  # else a parallel stage (a queued sweep) made it first
                raise
    mlflow.set_experiment(name)
    return mlflow


def git_commit() -> str:
    rev = os.environ.get("DVC_EXP_BASELINE_REV")
    if rev:
        return rev
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=repo_root())
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def run_tags(data_digest: str) -> dict[str, str]:
    tags = {
        "git_commit": git_commit(),
        "dvc_experiment": os.environ.get("DVC_EXP_NAME", ""),
        "data_digest": data_digest,
    }
    if searched := trial_link():
        tags.update({"search.study": searched[0].study, "search.trial": str(searched[0].number)})
    return tags


class MlflowCallback(Callback):
    """Training metrics per log step, snapshots, the final checkpoint and the generator as a model.
    Every call after the run's creation goes through a TrackingRecorder: a server that goes away
    mid-training never stops it."""

    def __init__(self, config: Config, data_digest: str):
        from mlflow.tracking import MlflowClient

        self.config, self.data_digest = config, data_digest
        self.mlflow = use_store(config)
        self.client = MlflowClient()
        self.recorder = TrackingRecorder(tracking_uri())
        self.run_id = ""

    def on_train_start(self, info: dict[str, Any]) -> None:
        extra = info["extra"]
        if info["resumed"] and extra.get(RUN_ID_KEY):
            self.run_id = extra[RUN_ID_KEY]
            return
        name = os.environ.get("DVC_EXP_NAME") or f"train-{info['training_hash'][:8]}"
        experiment = self.mlflow.get_experiment_by_name(experiment_name(self.config)).experiment_id
        self.run_id = self.client.create_run(experiment, run_name=name, tags=run_tags(self.data_digest)).info.run_id
        extra[RUN_ID_KEY] = self.run_id
        params = [Param(k, str(v)[:500]) for k, v in flatten(to_dict(self.config)).items()]
        self.recorder.send("the params", lambda: self.client.log_batch(self.run_id, params=params))

    def on_log(self, step: int, metrics: dict[str, float]) -> None:
        now = int(time.time() * 1000)
        batch = [Metric(f"train/{k}", float(v), now, step) for k, v in metrics.items()]
        self.recorder.send(
            f"metrics of step {step}", lambda: self.client.log_batch(self.run_id, metrics=batch), kind="train metrics"
        )

    def on_snapshot(self, step: int, path: Path) -> None:
        self.recorder.send(
            f"snapshot {path.name}",
            lambda: self.client.log_artifact(self.run_id, str(path), "snapshots"),
            kind="snapshots",
        )

    def on_train_end(self, checkpoint: Path, metrics: dict[str, float]) -> None:
        self.recorder.send(
            "the checkpoint", lambda: self.client.log_artifact(self.run_id, str(checkpoint), "checkpoint")
        )
        self.recorder.send("the generator model", lambda: log_generator_model(checkpoint, self.run_id))
        self.recorder.send("the run's end", lambda: self.client.set_terminated(self.run_id))
        self.recorder.finish(relog_hint="python -m pipeline.relog")

    def on_train_stop(self, error: BaseException) -> None:
        """KILLED for a signal (a resumed run continues this MLflow run), FAILED for an error."""
        from videogan.errors import TrainingInterrupted

        status = "KILLED" if isinstance(error, (TrainingInterrupted, KeyboardInterrupt)) else "FAILED"
        if self.run_id:
            self.recorder.send("the run's end", lambda: self.client.set_terminated(self.run_id, status=status))


class TrackingRecorder:
    """Calls on one MLflow run that never stop training. When the server stops answering, that is said
    once; the calls it missed wait, in order, and are sent when it answers again (tried at most every
    `retry_seconds`). What is still unsent when training ends is named, with the command to send it."""

    def __init__(self, uri: str, retry_seconds: float = 10.0, say=None):
        from tqdm import tqdm

        self.uri, self.retry_seconds = uri, retry_seconds
        self.say = say or (lambda line: tqdm.write(line, file=sys.stderr))  # on its own line, beside the bar
        logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)  # its retries: this says it once
        self.pending: list[tuple[str, str, Any]] = []
        self.down = False
        self.next_try = 0.0
        self.resent = 0

    def send(self, what: str, call, kind: str | None = None) -> None:
        self.pending.append((kind or what, what, call))
        self.flush()

    def flush(self, force: bool = False) -> None:
        if self.down and not force and time.monotonic() < self.next_try:
            return
        while self.pending:
            _, what, call = self.pending[0]
            try:
                call()
            except Exception as exc:
                if not server_unreachable(exc):
                    raise
                if not self.down:
                    self.say(
                        f"warning: the MLflow server at {self.uri} stopped answering ({short(exc)}) while "
                        f"sending {what}; training goes on, and what it misses is sent when it is back"
                    )
                self.down, self.next_try = True, time.monotonic() + self.retry_seconds
                return
            self.pending.pop(0)
            self.resent += self.down
        if self.down:
            self.say(f"MLflow at {self.uri} answers again: sent the {self.resent} records it missed")
            self.down, self.resent = False, 0

    def missing(self) -> str:
        kinds = Counter(kind for kind, _, _ in self.pending)
        return ", ".join(f"{kind} ({n})" if n > 1 else kind for kind, n in kinds.items())

    def finish(self, relog_hint: str) -> None:
        self.flush(force=True)
        if self.pending:
            self.say(
                f"warning: the MLflow server at {self.uri} is still not answering; the run lacks "
                f"{self.missing()}. Everything is in models/ and reports/: when the server is back, "
                f"send it with `{relog_hint}`"
            )


def server_unreachable(exc: BaseException) -> bool:
    """The server did not answer (refused, reset, timed out, 5xx), as opposed to rejecting a request."""
    import requests
    from mlflow.exceptions import MlflowException, RestException

    if isinstance(exc, (requests.RequestException, OSError)):
        return True
    if isinstance(exc, RestException):
        return exc.error_code in ("INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE")
    return isinstance(exc, MlflowException) and "API request to" in str(exc)


def short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) < 200 else text[:200] + "..."


def log_generator_model(checkpoint: Path, run_id: str) -> None:
    """The final generator as an MLflow logged model of plain files (videogan.model_files: safetensors and
    JSON, no pickle), its digest in the model's tags; `load_logged_generator("models:/<id>")` loads it."""
    import tempfile

    from mlflow.tracking import MlflowClient

    from videogan.model_files import DIGEST_TAG, save_generator_files
    from videogan.sampling import load_generator

    generator, config, step = load_generator(checkpoint)
    client = MlflowClient()
    with tempfile.TemporaryDirectory() as folder:
        digest = save_generator_files(generator, config, step, folder)
        model = client.create_logged_model(
            client.get_run(run_id).info.experiment_id,
            name="generator",
            source_run_id=run_id,
            model_type="videogan-generator",
            tags={DIGEST_TAG: digest, "step": str(step)},
        )
        client.log_model_artifacts(model.model_id, folder)
    client.finalize_logged_model(model.model_id, "READY")


@contextmanager
def attached_run(config: Config, checkpoint: Path):
    """Join the training run recorded in `checkpoint` (for evaluate and render)."""
    from videogan.training import checkpoint as ckpt

    mlflow = use_store(config)
    run_id = ckpt.load(checkpoint, kinds=("full",)).get("extra", {}).get(RUN_ID_KEY)
    if run_id is None:
        name = os.environ.get("DVC_EXP_NAME") or "unrecorded-training"
        mlflow.start_run(run_name=name)
    else:
        mlflow.start_run(run_id=run_id)
    try:
        yield mlflow
    finally:
        mlflow.end_run()
