"""A stage on a busy machine: Prefect's local API may take long to start, and the stage waits for it."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pipeline_support import copy_repo, env_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# Runs in every Python process started with it on PYTHONPATH; only Prefect's local API server (the process
# Prefect starts with PREFECT__SERVER_EPHEMERAL=1) waits, as it would on a machine many times slower.
SLOW_START = """
import os, time
if os.environ.get("PREFECT__SERVER_EPHEMERAL") == "1":
    time.sleep(float(os.environ["SLOW_PREFECT_START_S"]))
"""
BOTH_CORES_BUSY = "import torch\ntorch.set_num_threads(2)\na = torch.randn(1024, 1024)\nwhile True:\n    a @ a\n"


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("startup")
    (folder / "slow").mkdir()
    (folder / "slow/sitecustomize.py").write_text(SLOW_START)
    return copy_repo(folder / "repo")


@pytest.fixture
def busy_machine():
    load = subprocess.Popen([sys.executable, "-c", BOTH_CORES_BUSY])
    yield
    load.kill()
    load.wait()


def download_stage(repo, **env: str) -> subprocess.CompletedProcess:
    env = {**env_for(repo), "PYTHONPATH": str(repo.parent / "slow"), **env}
    return subprocess.run([sys.executable, "-m", "pipeline.download"], cwd=repo, env=env, capture_output=True,
                          text=True, timeout=300)


def test_a_stage_waits_for_a_local_api_slower_than_prefects_20_s_while_both_cores_are_busy(repo, busy_machine):
    done = download_stage(repo, SLOW_PREFECT_START_S="20")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "download: moving_mnist_generated: nothing to fetch" in done.stdout


def test_a_local_api_that_never_answers_in_time_is_one_line_naming_the_setting(repo):
    done = download_stage(repo, SLOW_PREFECT_START_S="6", PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="1")
    said = done.stdout + done.stderr
    assert done.returncode == 1 and "Traceback" not in said, said
    errors = [line for line in said.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Prefect's local API did not answer within 1 s" in errors[0], said
    assert "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS" in errors[0] and "make services" in errors[0]
