"""A user's mistake inside a stage: one `error: ...` line naming what to change, no traceback."""

from __future__ import annotations

import copy
import hashlib
import io
import socket
import subprocess
import sys

import numpy as np
import pytest
from conftest_data import FileServer
from pipeline_support import TINY_PARAMS, copy_repo, deep_update, env_for, prefect_api, sh

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def published_file(sequences: int) -> bytes:
    out = io.BytesIO()
    np.save(out, np.zeros((20, sequences, 64, 64), np.uint8))
    return out.getvalue()


def said(done: subprocess.CompletedProcess) -> str:
    return done.stdout + done.stderr


def test_a_dataset_file_too_small_for_the_splits_is_one_line_naming_the_key(tmp_path):
    payload = published_file(30)
    server = FileServer({"/mnist_test_seq.npy": payload})
    try:
        params = deep_update(
            copy.deepcopy(TINY_PARAMS),
            {
                "data": {
                    "dataset": "moving_mnist",
                    "frames": 20,
                    "moving_mnist": {
                        "url": f"{server.url}/mnist_test_seq.npy",
                        "md5": hashlib.md5(payload).hexdigest(),
                        "val_sequences": 1000,
                        "test_sequences": 2000,
                    },
                }
            },
        )
        repo = copy_repo(tmp_path / "repo", params)
        done = sh(repo, "dvc", "repro", check=False)
    finally:
        server.close()
    output = said(done)
    assert done.returncode != 0
    assert "Traceback" not in output, output
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, output
    assert "holds 30 sequences" in errors[0] and "data.moving_mnist.val_sequences" in errors[0]
    failing_stage = [line for line in output.split("Running stage 'preprocess'")[1].splitlines() if line.strip()]
    assert len(failing_stage) <= 6, output  # the command, a progress bar, the error, DVC's one line
    assert not (repo / "data/processed/meta.json").exists()


def stage(repo, module: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", f"pipeline.{module}"],
        cwd=repo,
        env={**env_for(repo), **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def empty_repo(tmp_path_factory):
    """A copy on the published dataset that nothing has run in: every stage lacks its input."""
    params = deep_update(copy.deepcopy(TINY_PARAMS), {"data": {"dataset": "moving_mnist"}})
    return copy_repo(tmp_path_factory.mktemp("empty") / "repo", params)


@pytest.mark.parametrize(
    "module, expected",
    [
        ("preprocess", "videogan download"),
        ("evaluator", "no clip store"),
        ("train", "no clip store"),
        ("evaluate", "checkpoint.pt"),
        ("render", "checkpoint.pt"),
    ],
)
def test_each_stage_turns_a_user_error_into_one_line(empty_repo, team_stack, module, expected):
    """On the team's Prefect server, whose record of the flow run must carry the same message."""
    prefect = team_stack.state["prefect"]["url"]
    done = stage(
        empty_repo, module, PREFECT_API_URL=prefect, PREFECT_API_AUTH_STRING=team_stack.env["PREFECT_API_AUTH_STRING"]
    )
    assert done.returncode == 1
    assert "Traceback" not in said(done), said(done)
    errors = [line for line in said(done).splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and expected in errors[0], said(done)
    [flow] = prefect_api(f"{prefect}/flows/filter", {"flows": {"name": {"any_": [module]}}})
    [run] = prefect_api(
        f"{prefect}/flow_runs/filter", {"flows": {"id": {"any_": [flow["id"]]}}, "sort": "START_TIME_DESC", "limit": 1}
    )
    assert run["state_type"] == "FAILED" and run["state"]["message"] == errors[0].removeprefix("error: ")


@pytest.mark.parametrize(
    "variable, value, named",
    [
        ("MLFLOW_TRACKING_URI", "http://127.0.0.1:{port}", "MLFLOW_TRACKING_URI"),
        ("PREFECT_API_URL", "http://127.0.0.1:{port}/api", "PREFECT_API_URL"),
    ],
)
def test_a_server_that_does_not_answer_is_one_line_before_any_work(pipeline_repo, variable, value, named):
    before = (pipeline_repo / "models/checkpoint.pt").stat().st_mtime_ns
    done = stage(pipeline_repo, "train", **{variable: value.format(port=dead_port())})
    assert done.returncode == 1
    errors = [line for line in said(done).splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and named in errors[0] and "make services" in errors[0], said(done)
    assert "Traceback" not in said(done)
    assert (pipeline_repo / "models/checkpoint.pt").stat().st_mtime_ns == before


def test_a_wrong_md5_downloads_once_and_is_one_line(tmp_path):
    """Only transient network errors are retried: a checksum that cannot match is not fetched again."""
    payload = published_file(30)
    server = FileServer({"/mnist_test_seq.npy": payload})
    try:
        params = deep_update(
            copy.deepcopy(TINY_PARAMS),
            {
                "data": {
                    "dataset": "moving_mnist",
                    "moving_mnist": {"url": f"{server.url}/mnist_test_seq.npy", "md5": "0" * 32},
                }
            },
        )
        repo = copy_repo(tmp_path / "repo", params)
        done = stage(repo, "download")
    finally:
        server.close()
    assert done.returncode == 1 and "Traceback" not in said(done), said(done)
    errors = [line for line in said(done).splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "md5 of the download is" in errors[0], said(done)
    assert len(server.requests) == 1, server.requests
    assert not list((repo / "data/raw").glob("mnist_test_seq.npy*"))
