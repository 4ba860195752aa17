"""A temporary copy of the repository on a tiny config, for end-to-end pipeline tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent

TINY_PARAMS = {
    "data": {"frame_size": 16, "frames": 8,
             "moving_mnist_generated": {"train_sequences": 200, "val_sequences": 50, "test_sequences": 100}},
    "model": {"generator": {"motion_dim": 16, "content_dim": 16, "width": 8, "max_width": 32},
              "critic": {"widths": [8, 16, 32, 32]}},
    "train": {"iterations": 6, "batch_size": 8, "snapshot_every": 3, "resume_every": 2, "log_every": 2,
              "video_every": 3, "schedule": {"burst_first": 1, "burst_steps": 3, "n_critic": 2}},
    "evaluator": {"epochs": 1, "max_clips": 200, "val_clips": 50},
    "evaluate": {"num_samples": 50},
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
    env.update(PATH=f"{VENV_BIN}{os.pathsep}{env['PATH']}", PREFECT_HOME=str(repo / ".prefect"),
               OMP_NUM_THREADS="1", GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@t")
    return env


def sh(repo: Path, *args: str, check: bool = True, timeout: int = 600) -> subprocess.CompletedProcess:
    done = subprocess.run(list(args), cwd=repo, env=env_for(repo), capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done


def copy_repo(dest: Path, params: dict | None = None) -> Path:
    """The committed and untracked-but-not-ignored files of this checkout, as a fresh git repository."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                           text=True, check=True).stdout.splitlines()
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
