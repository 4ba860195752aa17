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


PROFILES = ["params.yaml", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "profiles").glob("*.yaml"))]


@pytest.mark.parametrize("name", PROFILES)
def test_profile_validates_and_has_every_tracked_key(name):
    load_config(ROOT / name)
    raw = yaml.safe_load((ROOT / name).read_text())
    assert {k for k in tracked_params() if not has_key(raw, k)} == set()


def test_full_profile_is_the_library_default_size():
    full, default = load_config(ROOT / "profiles/full.yaml"), Config()
    for section in ("model", "data"):
        assert getattr(full, section).model_dump(exclude={"moving_mnist_generated", "pacman_folder"}) == getattr(
            default, section
        ).model_dump(exclude={"moving_mnist_generated", "pacman_folder"})
    assert full.train.schedule == default.train.schedule
    assert (full.train.iterations, full.train.batch_size) == (default.train.iterations, default.train.batch_size)


def test_pacman_full_profile_is_the_full_size_on_pacman():
    full, pacman = load_config(ROOT / "profiles/full.yaml"), load_config(ROOT / "profiles/pacman-full.yaml")
    assert pacman.data.dataset == "pacman_emulator" and pacman.data.channels == 3
    assert pacman.data.pacman_emulator.window == pacman.data.frame_size == 64
    assert (pacman.model, pacman.train) == (full.model, full.train)


def test_pacman_demo_departs_from_the_full_size_only_where_marked():
    demo, full = load_config(ROOT / "profiles/pacman.yaml"), load_config(ROOT / "profiles/pacman-full.yaml")
    assert demo.data.channels == 3 and demo.data.pacman_emulator.window == demo.data.frame_size == 32
    text = (ROOT / "profiles/pacman.yaml").read_text()
    for key in ("frame_size", "frames", "window", "train_clips", "iterations", "batch_size", "width", "lr"):
        line = next(line for line in text.splitlines() if line.strip().startswith(f"{key}:"))
        assert "[demo]" in line, line
    assert demo.data.frame_size < full.data.frame_size and demo.train.iterations < full.train.iterations


def test_every_params_key_is_commented():
    for name in PROFILES:
        for line in (ROOT / name).read_text().splitlines():
            if line.strip() and not line.strip().startswith("#") and not line.rstrip().endswith(":"):
                assert "#" in line, f"{name}: {line}"
