"""Shared fixtures."""

from __future__ import annotations

import os

import pytest
import torch

CREDENTIALS = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "PREFECT_API_AUTH_STRING")
# `make test` runs two pytest-xdist workers on the 2 cores: one thread each (two when run alone).
torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else 2)
# The groups `make test`'s two pytest-xdist workers take whole: the modules that share a costly session
# fixture or cache run in one worker, so it is built once; the others, one group per module (so a
# module's fixtures are built once too).
GROUPS = {
    "team stack": ("test_team_stack", "test_stage_errors"),  # team_stack (+ a pipeline_repo of their own)
    "pipeline": ("test_pipeline",),  # pipeline_repo
    "fitted evaluator": ("test_evaluator_fit", "test_metrics_moving_digits", "test_metrics_proofs"),  # fitted()
}
# Handed out first, longest first, so that no long group starts last (a free worker takes the next group);
# "pipeline" before "team stack" as in file order, for a run without xdist (both change pipeline_repo).
LONGEST_FIRST = (
    "pipeline",
    "team stack",
    "fitted evaluator",
    "test_search",
    "test_fvd",
    "test_step_paths",
    "test_stage_startup",
    "test_pacman_pipeline",
    "test_learning",
)


def group_of(module: str) -> str:
    return next((group for group, modules in GROUPS.items() if module in modules), module)


def module_of(nodeid: str) -> str:
    return nodeid.split("::")[0].rsplit("/", 1)[-1].removesuffix(".py")


def pytest_collection_modifyitems(config, items):
    rank = {group: i for i, group in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(group_of(module_of(item.nodeid)), len(rank)))  # stable within a group


def pytest_xdist_make_scheduler(config, log):
    """xdist's scope scheduling, with GROUPS as the scopes."""
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return group_of(module_of(nodeid))

    return GroupScheduling(config, log)


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
        stack.started = stack.services(
            "start",
            "--postgres-port",
            str(free_port()),
            "--mlflow-port",
            str(free_port()),
            "--prefect-port",
            str(free_port()),
        ).stdout
        # this process is a client too (MlflowClient, the tests' API calls): as a user who sourced the env file
        with pytest.MonkeyPatch.context() as patch:
            for key in CREDENTIALS:
                patch.setenv(key, stack.env[key])
            yield stack
    finally:
        stack.stop()
