"""The generator as files to share (the model logged to MLflow): weights in safetensors, its config in JSON.

Loading them runs no pickle and no code from the files: safetensors holds only tensors, the JSON only
settings, and the network is built by this package. A digest of both files travels apart from them (the
logged model's `sha256` tag in MLflow's database, while the files sit in the artifact store), so a file
replaced in the store is refused.

    from videogan.model_files import load_logged_generator
    generator, config, step = load_logged_generator("models:/<model id>")
    videos = generator(generator.sample_noise(4))   # (4, C, T, H, W) in [-1, 1]
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from videogan.config import Config, config_from_dict, to_dict
from videogan.errors import CheckpointError
from videogan.files import write_atomic
from videogan.models import VideoGenerator, build_generator

WEIGHTS = "generator.safetensors"
CONFIG = "generator.json"
FORMAT = "videogan-generator/1"
DIGEST_TAG = "sha256"


def digest(folder: str | Path) -> str:
    """sha256 over the two files, in a fixed order."""
    return _digest((Path(folder) / WEIGHTS).read_bytes(), (Path(folder) / CONFIG).read_bytes())


def _digest(weights: bytes, settings: bytes) -> str:
    h = hashlib.sha256()
    for blob in (weights, settings):
        h.update(hashlib.sha256(blob).digest())
    return h.hexdigest()


def save_generator_files(generator: VideoGenerator, config: Config, step: int, folder: str | Path) -> str:
    """Write the two files into `folder`; returns their digest."""
    from safetensors.torch import save

    folder = Path(folder)
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in generator.state_dict().items()}
    weights = save(tensors, metadata={"format": FORMAT})
    settings = {"format": FORMAT, "step": step, "config": {k: to_dict(config)[k] for k in ("data", "model")}}
    blob = json.dumps(settings, indent=1).encode()
    write_atomic(weights, folder / WEIGHTS)
    write_atomic(blob, folder / CONFIG)
    return _digest(weights, blob)


def load_generator_files(
    folder: str | Path, expected_digest: str | None = None, device: str | torch.device = "cpu"
) -> tuple[VideoGenerator, Config, int]:
    """(generator in eval mode, its config, its step) from the two files; refuses files whose digest is not
    `expected_digest` (when given), and anything that is not what `save_generator_files` writes."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    folder = Path(folder)
    missing = [name for name in (WEIGHTS, CONFIG) if not (folder / name).is_file()]
    if missing:
        raise CheckpointError(
            f"{folder} lacks {', '.join(missing)}: not a generator saved by videogan "
            "(videogan.model_files.save_generator_files)"
        )
    weights, blob = (folder / WEIGHTS).read_bytes(), (folder / CONFIG).read_bytes()
    if expected_digest is not None and (found := _digest(weights, blob)) != expected_digest:
        raise CheckpointError(
            f"the generator files in {folder} are not the ones that were logged: their sha256 is "
            f"{found[:16]}..., the record says {expected_digest[:16]}...; refusing to load them"
        )
    try:
        settings = json.loads(blob)
        if settings.get("format") != FORMAT:
            raise ValueError(f"format {settings.get('format')!r}, expected {FORMAT!r}")
        step = int(settings["step"])
        tensors = load(weights)
    except (ValueError, KeyError, TypeError, SafetensorError) as exc:
        raise CheckpointError(f"cannot read the generator files in {folder}: {exc}") from None
    config = config_from_dict(settings["config"], f"{folder / CONFIG}")
    generator = build_generator(config)
    try:
        generator.load_state_dict(tensors)
    except RuntimeError as exc:
        raise CheckpointError(
            f"the weights in {folder / WEIGHTS} do not fit the network of its config: {str(exc).splitlines()[0]}"
        ) from None
    return generator.to(device).eval(), config, step


def load_logged_generator(model_uri: str, device: str | torch.device = "cpu") -> tuple[VideoGenerator, Config, int]:
    """A generator logged to MLflow (`models:/<model id>`), checked against its logged model's digest tag."""
    import mlflow
    from mlflow import MlflowClient

    if not model_uri.startswith("models:/"):
        raise CheckpointError(
            f"{model_uri}: give the logged model's URI, models:/<model id> (the run's page in "
            "the MLflow UI lists it under Logged models)"
        )
    model = MlflowClient().get_logged_model(model_uri.removeprefix("models:/").strip("/"))
    expected = model.tags.get(DIGEST_TAG)
    if expected is None:
        raise CheckpointError(f"{model_uri} has no {DIGEST_TAG} tag: it was not logged by videogan")
    folder = mlflow.artifacts.download_artifacts(model_uri)
    return load_generator_files(folder, expected, device)
