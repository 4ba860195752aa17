"""What every stage shares: where the repository is, the validated params, quiet defaults."""

from __future__ import annotations

import base64
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

EXPERIMENT_MARKER = f"{os.sep}.dvc{os.sep}tmp{os.sep}exps{os.sep}"

QUIET_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",  # no telemetry from the local API
    "PREFECT_LOGGING_LEVEL": "WARNING",  # the stage prints its own progress
    "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "GIT_PYTHON_REFRESH": "quiet",
    "DVC_NO_ANALYTICS": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    # A server that went away is noticed in seconds, not after minutes of retries (the defaults: 7
    # retries with backoff for MLflow, 5 for Prefect); training goes on without it (pipeline/tracking.py).
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
    "PREFECT_CLIENT_MAX_RETRIES": "2",
    # How long a stage waits for the local Prefect API to start (pipeline/local_api.py; Prefect's own
    # default, 20 s, is what a busy 2-core machine went past).
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
}


def workspace(cwd: str | Path | None = None) -> Path:
    """Where this run's files are (the folder holding dvc.yaml): the experiment's temporary copy,
    or the repository itself."""
    cwd = Path(cwd or os.getcwd()).resolve()
    return next((f for f in (cwd, *cwd.parents) if (f / "dvc.yaml").exists()), cwd)


def repo_root(cwd: str | Path | None = None) -> Path:
    """The project folder. A queued DVC experiment runs in `<root>/.dvc/tmp/exps/...`: its root is
    the part before that, so every run lands in one MLflow store."""
    text = str(Path(cwd or os.getcwd()).resolve())
    if EXPERIMENT_MARKER in text:
        return Path(text.split(EXPERIMENT_MARKER)[0])
    return workspace(cwd)


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{repo_root() / 'mlflow.db'}"


def answers(url: str, timeout: float = 5.0) -> str | None:
    """None when `url` answers 200 (a server's health check); otherwise why not."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return None if response.status == 200 else f"HTTP {response.status}"
    except (OSError, ValueError) as exc:
        return str(getattr(exc, "reason", exc))


def refused(url: str, user_password: str | None) -> int | None:
    """The HTTP status (401, 403) when the server at `url` refuses these basic-auth credentials, else None
    (a server that does not answer is for `answers` to say)."""
    request = urllib.request.Request(url)
    if user_password:
        request.add_header("Authorization", "Basic " + base64.b64encode(user_password.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10):
            return None
    except urllib.error.HTTPError as exc:
        return exc.code if exc.code in (401, 403) else None
    except OSError:
        return None


def check_tracking_server() -> None:
    """A tracking server (MLFLOW_TRACKING_URI over HTTP) that answers and takes this shell's credentials, or
    one line on what to set; nothing to check for a local store."""
    from videogan.errors import CredentialsRefused, ServiceUnreachable

    uri = tracking_uri()
    if not uri.startswith(("http://", "https://")):
        return
    if why := answers(f"{uri.rstrip('/')}/health"):
        raise ServiceUnreachable(
            f"the MLflow tracking server at {uri} (MLFLOW_TRACKING_URI) does not answer "
            f"({why}): start it (`make services`), or unset MLFLOW_TRACKING_URI to record "
            "into mlflow.db"
        )
    user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    status = refused(
        f"{uri.rstrip('/')}/api/2.0/mlflow/experiments/search?max_results=1",
        f"{user}:{password}" if user and password else None,
    )
    if status:
        given = (
            "were refused"
            if user and password
            else "are not set"
            if not (user or password)
            else f"are incomplete ({'MLFLOW_TRACKING_PASSWORD' if user else 'MLFLOW_TRACKING_USERNAME'} is not set)"
        )
        raise CredentialsRefused(
            f"the MLflow tracking server at {uri} asks for a user (HTTP {status}) and "
            f"MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD {given}: set them to "
            "what `python -m pipeline.services env` prints (or `. .services/env`)"
        )


def set_quiet_defaults() -> None:
    for key, value in QUIET_DEFAULTS.items():
        os.environ.setdefault(key, value)


def load_params(path: str | Path = "params.yaml"):
    """The validated config; a broken params file stops the stage before anything is written."""
    from videogan.config import ConfigError, load_config

    try:
        return load_config(workspace() / path)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
