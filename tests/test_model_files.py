"""The shared generator files (the model logged to MLflow): safetensors and JSON, loaded without pickle, refused
when replaced or altered."""

import io
import pickle

import pytest
import torch
from support import tiny_config

from videogan.errors import CheckpointError
from videogan.model_files import (
    CONFIG,
    WEIGHTS,
    digest,
    load_generator_files,
    save_generator_files,
)
from videogan.models import build_generator


@pytest.fixture
def saved(tmp_path):
    config = tiny_config()
    generator = build_generator(config).eval()
    sha = save_generator_files(generator, config, 7, tmp_path)
    return generator, sha, tmp_path


def test_the_files_load_back_to_the_same_generator(saved):
    generator, sha, folder = saved
    loaded, config, step = load_generator_files(folder, sha)
    z = generator.sample_noise(2, torch.Generator().manual_seed(0))
    assert step == 7 and config.model == tiny_config().model
    assert torch.equal(loaded(z), generator(z))
    assert (folder / WEIGHTS).read_bytes()[8:9] == b"{"  # a safetensors header: JSON, then raw tensors


class Payload:
    def __reduce__(self):
        return (print, ("pickle code ran",))


def test_a_replaced_weights_file_is_refused_by_its_digest_and_never_unpickled(saved, capsys):
    _, sha, folder = saved
    buffer = io.BytesIO()
    torch.save({"weights": Payload()}, buffer)  # what mlflow.pytorch's pickle format would let run
    (folder / WEIGHTS).write_bytes(buffer.getvalue())
    with pytest.raises(CheckpointError, match="not the ones that were logged"):
        load_generator_files(folder, sha)
    with pytest.raises(CheckpointError, match="cannot read the generator files"):  # without the digest too
        load_generator_files(folder)
    (folder / WEIGHTS).write_bytes(pickle.dumps(Payload()))
    with pytest.raises(CheckpointError, match="cannot read the generator files"):
        load_generator_files(folder)
    assert "pickle code ran" not in capsys.readouterr().out


def test_altered_settings_are_refused(saved):
    _, sha, folder = saved
    text = (folder / CONFIG).read_text()
    (folder / CONFIG).write_text(text.replace('"width": 8', '"width": 16'))
    with pytest.raises(CheckpointError, match="not the ones that were logged"):
        load_generator_files(folder, sha)
    with pytest.raises(CheckpointError, match="do not fit the network"):
        load_generator_files(folder)
    assert digest(folder) != sha


def test_a_folder_without_the_files_says_what_it_lacks(tmp_path):
    with pytest.raises(CheckpointError, match=f"lacks {WEIGHTS}, {CONFIG}"):
        load_generator_files(tmp_path)
