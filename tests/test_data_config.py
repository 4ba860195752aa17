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


@pytest.mark.parametrize("override,named", [
    ("data.pacman_emulator.crop=[0,300,0,160]", "crop"),
    ("data.moving_mnist_generated.digit_split=[0.8,0.3,0.1]", "digit_split"),
    ("data.moving_mnist_generated.canvas=20", "data.moving_mnist_generated.canvas"),
    ("data.dataset=ucf101", "data.dataset"),
    ("data.moving_mnist_generated.sequences=5", "unknown key"),
])
def test_bad_values_name_the_key(override, named):
    with pytest.raises(ConfigError, match=named):
        load_config(None, [override])
