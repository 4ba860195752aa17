"""The `data:` config section: full-size defaults, the contract keys, and errors that name the key."""

from __future__ import annotations

import pytest

from videogan.config import ConfigError, load_config


def test_defaults_are_the_full_size_and_contract_keys_exist():
    data = load_config(None).data
    assert (data.dataset, data.frame_size, data.frames, data.channels) == ("moving_mnist_generated", 64, 20, 1)
    assert data.moving_mnist.md5 == "be083ec986bfe91a449d63653c411eb2"
    assert data.moving_mnist.url.endswith("/mnist_test_seq.npy") and data.seed == 0
    assert (data.moving_mnist_generated.canvas, data.moving_mnist_generated.digits) == (64, 2)


@pytest.mark.parametrize(
    "override,named",
    [
        ("data.pacman_emulator.crop=[0,300,0,160]", "crop"),
        ("data.moving_mnist_generated.digit_split=[0.8,0.3,0.1]", "digit_split"),
        ("data.moving_mnist_generated.canvas=20", "data.moving_mnist_generated.canvas"),
        ("data.dataset=ucf101", "data.dataset"),
        ("data.moving_mnist_generated.sequences=5", "unknown key"),
    ],
)
def test_bad_values_name_the_key(override, named):
    with pytest.raises(ConfigError, match=named):
        load_config(None, [override])


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/pacman_folder",
        "http://127.0.0.1:8000/x/..",
        "http://127.0.0.1:8000/source.json",
        "http://127.0.0.1:8000/.hidden.zip",
    ],
)
@pytest.mark.parametrize("key", ["data.pacman_folder.url", "data.moving_mnist.url"])
def test_a_url_whose_file_name_cannot_be_saved_is_refused_naming_the_key(key, url):
    with pytest.raises(ConfigError, match=rf"{key}: Value error, the URL's file name"):
        load_config(None, [f"{key}={url}"])


def test_a_plain_archive_url_is_accepted():
    assert load_config(None, ["data.pacman_folder.url=http://h/a/Ms_Pacman.zip"]).data.pacman_folder.url


def test_errors_in_set_values_name_the_override_not_the_params_file(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("train:\n  iterations: 5\n  lrr: 1\n")
    with pytest.raises(ConfigError) as error:
        load_config(params, ["train.batch_size=0", "data.frames=2"])
    lines = str(error.value).splitlines()[1:]
    assert f"{params}: train.lrr: unknown key" in lines[-1] or any(f"{params}: train.lrr" in x for x in lines)
    assert any(x.strip().startswith("--set train.batch_size=0: train.batch_size:") for x in lines), lines
    assert any(x.strip().startswith("--set data.frames=2: data.frames:") for x in lines), lines
    assert not any(x.strip().startswith(f"{params}: train.batch_size") for x in lines)
