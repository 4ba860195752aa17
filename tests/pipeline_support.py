"""A temporary copy of the repository on a tiny config, for end-to-end pipeline tests."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent

TINY_PARAMS = {
    "data": {
        "frame_size": 16,
        "frames": 10,
        "moving_mnist_generated": {"train_sequences": 200, "val_sequences": 50, "test_sequences": 100},
    },
    "model": {
        "generator": {"motion_dim": 16, "content_dim": 16, "width": 8, "max_width": 32},
        "critic": {"widths": [8, 16, 32, 32]},
    },
    "train": {
        "iterations": 6,
        "batch_size": 8,
        "snapshot_every": 3,
        "resume_every": 2,
        "log_every": 2,
        "video_every": 3,
        "schedule": {"burst_first": 1, "burst_steps": 3, "n_critic": 2},
    },
    "evaluator": {"epochs": 1, "max_clips": 200, "val_clips": 50},
    "evaluate": {"num_samples": 50, "fvd": {"videos": 4, "batch_size": 4}},
}


def deep_update(tree: dict, changes: dict) -> dict:
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(tree.get(key), dict):
            deep_update(tree[key], value)
        else:
            tree[key] = value
    return tree


def set_params(repo: Path, changes: dict) -> None:
    path = repo / "params.yaml"
    params = deep_update(yaml.safe_load(path.read_text()), changes)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def env_for(repo: Path) -> dict[str, str]:
    """The venv first on PATH (DVC runs `python -m pipeline.<stage>`), a private Prefect home, one thread."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_", "DVC_"))}
    env.update(
        PATH=f"{VENV_BIN}{os.pathsep}{env['PATH']}",
        PREFECT_HOME=str(repo / ".prefect"),
        OMP_NUM_THREADS="1",
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@t",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@t",
    )
    return env


def sh(
    repo: Path, *args: str, check: bool = True, timeout: int = 600, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """`args` in `repo` with env_for(repo), plus `env` (e.g. a team stack's server addresses)."""
    done = subprocess.run(
        list(args), cwd=repo, env={**env_for(repo), **(env or {})}, capture_output=True, text=True, timeout=timeout
    )
    if check and done.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    return done


def copy_repo(dest: Path, params: dict | None = None) -> Path:
    """The committed and untracked-but-not-ignored files of this checkout, as a fresh git repository."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    for name in files:
        src = REPO / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    set_params(dest, params if params is not None else TINY_PARAMS)
    sh(dest, "git", "init", "-q")
    sh(dest, "git", "add", "-A")
    sh(dest, "git", "commit", "-qm", "tiny copy")
    return dest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Stack:
    """A team's stack started by `python -m pipeline.services` in `folder` (the real command)."""

    def __init__(self, folder: Path):
        self.folder = folder

    def services(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        # A flow run waiting for its deployment's concurrency slot asks again after 3 s, not Prefect's 30 s.
        env = {**env_for(self.folder), "PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS": "3"}
        done = subprocess.run(
            [sys.executable, "-m", "pipeline.services", *args, "--folder", str(self.folder)],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"services {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done

    @property
    def state(self) -> dict:
        return json.loads((self.folder / "state.json").read_text())

    @property
    def mlflow_url(self) -> str:
        return self.state["mlflow"]["url"]

    @property
    def env(self) -> dict[str, str]:
        """What a user sets from `make services` (its env file): the two server addresses and the credentials."""
        lines = (self.folder / "env").read_text().splitlines()
        return dict(line.removeprefix("export ").split("=", 1) for line in lines if line.startswith("export "))

    def stop(self) -> None:
        """`services stop`, then SIGKILL to whatever it recorded and left running."""
        import signal

        recorded = self.state if (self.folder / "state.json").exists() else {}
        self.services("stop", check=False)
        for service in (s for s in recorded.values() if s.get("pid")):
            for kill in (lambda pid: os.killpg(pid, signal.SIGKILL), lambda pid: os.kill(pid, signal.SIGKILL)):
                try:
                    kill(service["pid"])
                except (ProcessLookupError, PermissionError):
                    pass


def prefect_api(url: str, body: dict | None = None, auth: str | None = "env", csrf: bool = True):
    """Prefect's REST API as its client calls it: the auth string (PREFECT_API_AUTH_STRING unless given), and for
    a POST the CSRF token it asks for first."""
    auth = os.environ["PREFECT_API_AUTH_STRING"] if auth == "env" else auth
    headers = {"Content-Type": "application/json"}
    if auth is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
    if body is not None and csrf:
        token = prefect_api(f"{url.split('/api/')[0]}/api/csrf-token?client=tests", auth=auth)
        headers.update({"Prefect-Csrf-Token": token["token"], "Prefect-Csrf-Client": "tests"})
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())
