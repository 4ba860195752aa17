"""Shared fixtures."""

from __future__ import annotations

import pytest
import torch

torch.set_num_threads(2)


@pytest.fixture
def squares():
    from videogan.data.squares import bouncing_squares

    return bouncing_squares(64, 8, 16, seed=3)


@pytest.fixture(scope="session")
def pipeline_repo(tmp_path_factory):
    """One temporary copy of the repository on the tiny config, after a full `dvc repro`."""
    from pipeline_support import copy_repo, sh

    repo = copy_repo(tmp_path_factory.mktemp("pipeline") / "repo")
    done = sh(repo, "dvc", "repro")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "baseline run")
    repo.joinpath("first_repro.log").write_text(done.stdout + done.stderr)
    return repo


@pytest.fixture(scope="session")
def team_stack(tmp_path_factory):
    """PostgreSQL, the MLflow server and the Prefect server, started once on free loopback ports by
    `python -m pipeline.services start` and shared by every test that needs them; stopped by PID at the
    end, even when a test failed."""
    from pipeline_support import Stack, free_port

    stack = Stack(tmp_path_factory.mktemp("team") / ".services")
    try:
        stack.started = stack.services("start", "--postgres-port", str(free_port()), "--mlflow-port",
                                       str(free_port()), "--prefect-port", str(free_port())).stdout
        yield stack
    finally:
        stack.stop()
