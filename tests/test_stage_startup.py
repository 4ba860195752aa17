"""Prefect's local API for the stages (pipeline/local_api.py): one for all the stages of a run, waited
for on a busy machine, gone when no stage uses it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest
from pipeline_support import copy_repo, env_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# Runs in every Python process started with it on PYTHONPATH; only the local API's server process
# (started with PREFECT__SERVER_EPHEMERAL=1) waits, as it would on a machine many times slower.
SLOW_START = """
import os, time
if os.environ.get("PREFECT__SERVER_EPHEMERAL") == "1":
    time.sleep(float(os.environ.get("SLOW_PREFECT_START_S", "0")))
"""
BOTH_CORES_BUSY = "import torch\ntorch.set_num_threads(2)\na = torch.randn(1024, 1024)\nwhile True:\n    a @ a\n"


@pytest.fixture
def repo(tmp_path):
    (tmp_path / "slow").mkdir()
    (tmp_path / "slow/sitecustomize.py").write_text(SLOW_START)
    return copy_repo(tmp_path / "repo")


@pytest.fixture
def busy_machine():
    load = subprocess.Popen([sys.executable, "-c", BOTH_CORES_BUSY])
    yield
    load.kill()
    load.wait()


def download_stage(repo, **env: str) -> subprocess.CompletedProcess:
    env = {**env_for(repo), "PYTHONPATH": str(repo.parent / "slow"), "VIDEOGAN_LOCAL_API_IDLE_S": "3", **env}
    return subprocess.run(
        [sys.executable, "-m", "pipeline.download"], cwd=repo, env=env, capture_output=True, text=True, timeout=300
    )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not open(f"/proc/{pid}/stat").read().split()[2] == "Z"


def test_the_stages_share_one_local_api_that_ends_when_none_uses_it(repo):
    for _ in range(2):
        done = download_stage(repo)
        assert done.returncode == 0, done.stdout + done.stderr
    api = json.loads((repo / ".videogan/prefect-api.json").read_text())
    request = urllib.request.Request(
        f"{api['url']}/flow_runs/filter", data=b"{}", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        runs = json.loads(response.read())
    assert [run["state_type"] for run in runs] == ["COMPLETED", "COMPLETED"]  # both stages, on that one API
    deadline = time.time() + 30
    while alive(api["pid"]) and time.time() < deadline:
        time.sleep(0.5)
    assert not alive(api["pid"]), "the local API outlived its idle time"


def test_a_stage_longer_than_the_idle_time_keeps_its_local_api(repo):
    """The stage's heartbeat, not its calls, keeps the API up: a download that takes 3 idle times."""
    import hashlib

    from conftest_data import FileServer
    from pipeline_support import set_params

    payload = b"\x93NUMPY" + bytes(100)
    server = FileServer({"/mnist_test_seq.npy": payload}, delay=9.0)
    try:
        set_params(
            repo,
            {
                "data": {
                    "dataset": "moving_mnist",
                    "moving_mnist": {
                        "url": f"{server.url}/mnist_test_seq.npy",
                        "md5": hashlib.md5(payload).hexdigest(),
                    },
                }
            },
        )
        done = download_stage(repo)
    finally:
        server.close()
    assert done.returncode == 0 and "went away" not in done.stderr, done.stdout + done.stderr
    assert (repo / "data/raw/mnist_test_seq.npy").read_bytes() == payload


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
