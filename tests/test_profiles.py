"""params.yaml (demo) and profiles/full.yaml validate, carry every key DVC tracks, and differ as documented."""

from pathlib import Path

import pytest
import yaml

from videogan.config import Config, load_config

ROOT = Path(__file__).resolve().parents[1]


def tracked_params() -> set[str]:
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    return {p for stage in stages.values() for p in stage.get("params", [])}


def has_key(tree: dict, dotted: str) -> bool:
    for part in dotted.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return False
        tree = tree[part]
    return True


@pytest.mark.parametrize("name", ["params.yaml", "profiles/full.yaml"])
def test_profile_validates_and_has_every_tracked_key(name):
    load_config(ROOT / name)
    raw = yaml.safe_load((ROOT / name).read_text())
    assert {k for k in tracked_params() if not has_key(raw, k)} == set()


def test_full_profile_is_the_library_default_size():
    full, default = load_config(ROOT / "profiles/full.yaml"), Config()
    for section in ("model", "data"):
        assert getattr(full, section).model_dump(exclude={"moving_mnist_generated", "pacman_folder"}) == \
            getattr(default, section).model_dump(exclude={"moving_mnist_generated", "pacman_folder"})
    assert full.train.schedule == default.train.schedule
    assert (full.train.iterations, full.train.batch_size) == (default.train.iterations, default.train.batch_size)


def test_every_params_key_is_commented():
    for name in ("params.yaml", "profiles/full.yaml"):
        for line in (ROOT / name).read_text().splitlines():
            if line.strip() and not line.strip().startswith("#") and not line.rstrip().endswith(":"):
                assert "#" in line, f"{name}: {line}"
