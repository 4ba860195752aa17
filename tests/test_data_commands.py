"""`videogan download` / `videogan preprocess` as typer commands: results, and clean errors."""

from __future__ import annotations

import socket

import pytest
import typer
from typer.testing import CliRunner

from videogan.data.commands import download, preprocess
from videogan.data.store import open_split, read_meta

app = typer.Typer()
app.command()(download)
app.command()(preprocess)


@pytest.fixture
def params(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(
        "data:\n  dataset: bouncing_squares\n  frame_size: 16\n  frames: 8\n  bouncing_squares:\n    num_videos: 16\n"
    )
    return path


def _run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_preprocess_builds_the_store(params, tmp_path):
    result = _run("preprocess", "--params", params, "--set", "data.channels=3", "--out", tmp_path / "store")
    assert result.exit_code == 0, result.output
    assert "bouncing_squares" in result.output and read_meta(tmp_path / "store")["digest"] in result.output
    assert open_split(tmp_path / "store", "train").shape == (16, 8, 16, 16, 3)


def test_download_of_a_generated_source_does_nothing(params, tmp_path):
    result = _run("download", "--params", params, "--raw", tmp_path / "raw")
    assert result.exit_code == 0 and "nothing to download" in result.output
    assert (tmp_path / "raw").is_dir()


def test_bad_override_is_a_clean_error(params, tmp_path):
    result = _run("preprocess", "--params", params, "--set", "data.frame_size=48", "--out", tmp_path / "s")
    assert result.exit_code == 1 and "data.frame_size" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "s").exists()


def test_missing_published_file_is_a_clean_error(params, tmp_path):
    result = _run("preprocess", "--params", params, "--set", "data.dataset=moving_mnist", "--raw", tmp_path)
    assert result.exit_code == 1 and "videogan download" in result.output
    assert "moving_mnist_generated" in result.output


def test_offline_download_is_a_clean_error(params, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/mnist_test_seq.npy"
    result = _run(
        "download",
        "--params",
        params,
        "--set",
        "data.dataset=moving_mnist",
        "--set",
        f"data.moving_mnist.url={url}",
        "--raw",
        tmp_path,
    )
    assert result.exit_code == 1 and url in result.output and "by hand" in result.output
    assert "Traceback" not in result.output
