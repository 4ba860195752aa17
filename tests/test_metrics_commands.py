"""`fit-evaluator`, `evaluate` and `render` end to end on a small labelled clip store."""

from __future__ import annotations

import json

import numpy as np
import pytest
import typer
import yaml
from PIL import Image
from support import DIGIT_METRICS, gif_shown_ms
from test_metrics_moving_digits import moving_digits
from typer.testing import CliRunner

from videogan.config import load_config, to_dict
from videogan.data.store import write_store
from videogan.models import build_generator
from videogan.training.checkpoint import FORMAT, save_atomic

pytestmark = pytest.mark.e2e

PARAMS = {
    "data": {"frame_size": 16, "frames": 10},
    "model": {"generator": {"motion_dim": 8, "content_dim": 8, "width": 8, "max_width": 16}},
    "evaluator": {
        "input_size": 16,
        "width": 8,
        "frame_dim": 16,
        "motion_dim": 16,
        "clip_frames": 4,
        "epochs": 1,
        "batch_size": 16,
        "val_clips": 32,
        "device": "cpu",
    },
    "evaluate": {
        "num_samples": 20,
        "batch_size": 20,
        "device": "cpu",
        "fvd": {"videos": 8},
        "render": {
            "videos": 4,
            "side_by_side": 2,
            "interpolation_rows": 2,
            "interpolation_steps": 3,
            "snapshot_videos": 2,
        },
    },
}


def app() -> typer.Typer:
    from videogan.metrics.commands import evaluate, fit_evaluator, render

    cli = typer.Typer()
    cli.command("fit-evaluator")(fit_evaluator)
    cli.command("evaluate")(evaluate)
    cli.command("render")(render)
    return cli


def run(*args: str):
    return CliRunner().invoke(app(), list(args))


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("project")
    splits, labels = {}, {}
    for i, (split, n) in enumerate({"train": 64, "val": 32, "test": 48}.items()):
        splits[split], labels[split] = moving_digits(n, frames=10, size=16, seed=30 + i)
    write_store(
        root / "data/processed",
        splits,
        labels,
        {"source": "test", "frame_size": 16, "frames": 10, "channels": 1, "source_info": {"digit_size": 7.0}},
    )
    (root / "params.yaml").write_text(yaml.safe_dump(PARAMS))
    config = load_config(root / "params.yaml")
    generator = {
        "format": FORMAT,
        "kind": "generator",
        "config": to_dict(config),
        "step": 0,
        "generator": build_generator(config).state_dict(),
    }
    save_atomic(generator, root / "models/snapshots/step_0000000.pt")
    save_atomic({**generator, "step": 5}, root / "models/checkpoint.pt")
    (root / "reports").mkdir()
    (root / "reports/train_log.jsonl").write_text(
        "".join(json.dumps({"step": s, "loss_critic": -s, "videos_per_s": 3.0}) + "\n" for s in range(0, 6, 2))
    )
    return root


def paths(root, *names):
    flags = {
        "params": "--params",
        "store": "--store",
        "evaluator": "--evaluator",
        "checkpoint": "--checkpoint",
        "snapshots": "--snapshots",
        "log": "--log",
    }
    where = {
        "params": "params.yaml",
        "store": "data/processed",
        "evaluator": "models/evaluator.pt",
        "checkpoint": "models/checkpoint.pt",
        "snapshots": "models/snapshots",
        "log": "reports/train_log.jsonl",
    }
    return [arg for name in names for arg in (flags[name], str(root / where[name]))]


@pytest.fixture(scope="module")
def fitted_project(project):
    result = run("fit-evaluator", *paths(project, "params", "store"), "--out", str(project / "models/evaluator.pt"))
    assert result.exit_code == 0, result.output
    assert "held-out accuracy order" in result.output and "digits" in result.output
    return project


def test_evaluate_writes_metrics_with_references_and_init(fitted_project):
    root = fitted_project
    out = root / "reports/metrics.json"
    result = run("evaluate", *paths(root, "params", "store", "evaluator", "checkpoint", "snapshots"), "--out", str(out))
    assert result.exit_code == 0, result.output
    metrics = json.loads(out.read_text())
    assert json.loads(result.stdout) == metrics
    for name in DIGIT_METRICS:
        assert isinstance(metrics[name], float) and f"{name}_ref" in metrics
    # The checkpoint holds the step-0 weights, so its fd_video is the step-0 one.
    assert metrics["fd_video_init"] == pytest.approx(metrics["fd_video"])
    assert metrics["fvd_init"] == pytest.approx(metrics["fvd"]) and metrics["fvd_ref"] > 0
    assert (metrics["fvd_videos"], metrics["fvd_frames"]) == (8, 10)
    assert metrics["step"] == 5 and metrics["samples_fake"] == metrics["samples_real"] == 20


def test_evaluate_fake_scores_any_clip_array_and_prints_only(fitted_project, tmp_path):
    fake = tmp_path / "fake.npy"
    np.save(fake, moving_digits(25, frames=10, size=16, seed=99)[0])
    result = run(
        "evaluate",
        *paths(fitted_project, "params", "store", "evaluator"),
        "--fake",
        str(fake),
        "--out",
        str(tmp_path / "unused.json"),
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert "fd_video_init" not in metrics and metrics["samples_fake"] == 20
    assert "fvd_init" not in metrics and metrics["fvd"] > 0 and metrics["fvd_videos"] == 8
    assert not (tmp_path / "unused.json").exists()


def test_evaluate_refuses_a_test_split_smaller_than_two_halves(fitted_project):
    result = run(
        "evaluate",
        *paths(fitted_project, "params", "store", "evaluator", "checkpoint", "snapshots"),
        "--set",
        "evaluate.num_samples=30",
    )
    assert result.exit_code == 1
    assert "evaluate.num_samples" in result.output and "at most 24" in result.output


def test_evaluate_refuses_a_stale_evaluator(fitted_project, tmp_path):
    fake = tmp_path / "fake.npy"
    np.save(fake, moving_digits(20, frames=10, size=16)[0])
    result = run(
        "evaluate",
        *paths(fitted_project, "params", "store", "evaluator"),
        "--fake",
        str(fake),
        "--set",
        "evaluator.epochs=2",
    )
    assert result.exit_code == 1 and "evaluator.epochs" in result.output and "fit-evaluator" in result.output


def test_evaluate_refuses_clips_of_another_shape(fitted_project, tmp_path):
    fake = tmp_path / "fake.npy"
    np.save(fake, np.zeros((20, 10, 32, 32, 1), np.uint8))
    result = run("evaluate", *paths(fitted_project, "params", "store", "evaluator"), "--fake", str(fake))
    assert result.exit_code == 1 and "(T, H, W, C)" in result.output


def test_missing_store_is_a_clear_error(tmp_path, project):
    result = run(
        "fit-evaluator",
        "--params",
        str(project / "params.yaml"),
        "--store",
        str(tmp_path / "nowhere"),
        "--out",
        str(tmp_path / "e.pt"),
    )
    assert result.exit_code == 1 and "no clip store" in result.output


def test_render_writes_the_grids_and_the_curves(project):
    out = project / "renders"
    result = run("render", *paths(project, "params", "store", "checkpoint", "snapshots", "log"), "--out", str(out))
    assert result.exit_code == 0, result.output
    names = {"samples.gif", "real_vs_generated.gif", "interpolation.gif", "snapshots.gif", "training_curves.png"}
    assert {p.name for p in out.iterdir()} == names
    samples = Image.open(out / "samples.gif")
    assert sum(gif_shown_ms(out / "samples.gif")) == 10 * 120 and samples.size == (2 * 17 + 1, 2 * 17 + 1)
    assert Image.open(out / "interpolation.gif").size == (3 * 17 + 1, 2 * 17 + 1)


@pytest.mark.parametrize(
    "array, named",
    [
        (np.zeros(0, np.uint8), "got uint8 with shape (0,)"),
        (np.array(7, np.uint8), "got uint8 with shape ()"),
        (np.zeros((0, 8, 16, 16, 1), np.uint8), "0 clips given; scoring needs at least 2"),
        (np.zeros((1, 8, 16, 16, 1), np.uint8), "1 clips given; scoring needs at least 2"),
    ],
)
def test_evaluate_fake_refuses_arrays_without_clips_in_one_line(fitted_project, tmp_path, array, named):
    fake = tmp_path / "fake.npy"
    np.save(fake, array)
    result = run("evaluate", *paths(fitted_project, "params", "store", "evaluator"), "--fake", str(fake))
    assert result.exit_code == 1 and named in result.output, result.output
    assert "Traceback" not in result.output and "num_samples=0" not in result.output


@pytest.mark.parametrize(
    "command, key",
    [("evaluate", "evaluate.device"), ("fit-evaluator", "evaluator.device"), ("render", "evaluate.device")],
)
def test_cuda_on_a_machine_without_it_is_one_line_naming_the_key(project, tmp_path, monkeypatch, command, key):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = {"fit-evaluator": ["--out", str(tmp_path / "e.pt")], "render": ["--out", str(tmp_path / "r")]}
    result = run(command, *paths(project, "params", "store"), "--set", f"{key}=cuda", *out.get(command, []))
    assert result.exit_code == 1, result.output
    assert result.output.startswith(f"error: {key} is 'cuda' but no CUDA device is visible"), result.output


def test_evaluate_refuses_a_store_edited_after_preprocess(fitted_project, tmp_path):
    import shutil

    edited = tmp_path / "store"
    shutil.copytree(fitted_project / "data/processed", edited)
    test = np.load(edited / "test.npy")
    np.save(edited / "test.npy", np.full_like(test, 255))
    result = run(
        "evaluate",
        *paths(fitted_project, "params", "evaluator", "checkpoint", "snapshots"),
        "--store",
        str(edited),
        "--out",
        str(tmp_path / "m.json"),
    )
    assert result.exit_code == 1 and "test.npy was changed after the store was written" in result.output
    assert not (tmp_path / "m.json").exists()


def test_evaluate_names_a_missing_or_unreadable_fake_array(fitted_project, tmp_path):
    missing = run("evaluate", *paths(fitted_project, "params", "store", "evaluator"), "--fake", str(tmp_path / "x.npy"))
    assert missing.exit_code == 1 and "--fake" in missing.output and "does not exist" in missing.output
    (tmp_path / "bad.npy").write_bytes(b"not an array")
    bad = run("evaluate", *paths(fitted_project, "params", "store", "evaluator"), "--fake", str(tmp_path / "bad.npy"))
    assert bad.exit_code == 1 and "not a readable .npy array" in bad.output and "Traceback" not in bad.output
