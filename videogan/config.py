"""The one typed, frozen configuration tree.

The defaults are the original videoGAN's full size (a GPU job); params.yaml
holds the CPU demo profile. `load_config` validates a params file (or dict)
and turns every problem into a `ConfigError` that names the key path and the
allowed values, before anything runs.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from videogan.data.config import DataConfig
from videogan.errors import ConfigError  # noqa: F401  (raised here; also importable from here)
from videogan.metrics.config import I3D_MIN_FRAMES, EvaluateConfig, EvaluatorConfig
from videogan.strict import Strict


# --------------------------------------------------------------------- model
class GeneratorConfig(Strict):
    # frames: each frame decoded from the LSTM's state and the content noise (the original's); layers: each frame
    # composed from a background and `sprites` sprites decoded once per video, placed by the LSTM (LR-GAN)
    kind: Literal["frames", "layers"] = "frames"
    sprites: int = Field(2, ge=1)  # layers only: parts placed over the background (Moving MNIST: its 2 digits)
    sprite_scale: float = 0.5  # layers only: a sprite's side as a share of the frame's: 0.25, 0.5 or 1
    # layers only: the background decoded like a frame, or a black ground (data on black, like Moving MNIST)
    background: Literal["decoded", "black"] = "decoded"
    motion_dim: int = Field(128, ge=1)  # noise that seeds the LSTM's hidden and cell state (= LSTM width)
    content_dim: int = Field(128, ge=0)  # noise held fixed for the whole video
    lstm_input: Literal["frame", "noise", "none"] = "frame"  # what the LSTM reads at each step
    width: int = Field(64, ge=1)  # channels of the last decoder block; doubles per block towards 4x4
    max_width: int = Field(512, ge=1)  # cap on decoder channels
    forget_bias: float = 1.0  # initial bias of the LSTM's forget gate
    # decoder doubling: transposed conv (DCGAN) or nearest + 3x3 conv
    upsample: Literal["transposed", "nearest"] = "transposed"
    # frame 0 decoded from the motion noise itself (the original's) or from one LSTM step on it, like every later frame
    first_frame: Literal["noise", "lstm"] = "noise"
    # decoder normalisation: LayerNorm (the original's) or BatchNorm over the batch's frames (DCGAN, MoCoGAN)
    norm: Literal["layer", "batch"] = "layer"

    @model_validator(mode="after")
    def _layers_read_noise_or_nothing(self) -> "GeneratorConfig":
        if self.kind == "layers" and self.lstm_input == "frame":
            raise ValueError(
                "lstm_input 'frame' needs kind 'frames': the layers generator's LSTM only places the sprites; "
                "set model.generator.lstm_input to noise or none"
            )
        if self.sprite_scale not in (0.25, 0.5, 1.0):
            raise ValueError(f"sprite_scale {self.sprite_scale}: give 0.25, 0.5 or 1 (the share of the frame's side)")
        if self.kind == "layers" and self.content_dim < self.sprites + 1:
            raise ValueError(
                f"content_dim {self.content_dim} is too small for {self.sprites} sprites and a background: "
                f"give it at least {self.sprites + 1} (each part gets content_dim // (sprites + 1))"
            )
        return self


class CriticConfig(Strict):
    widths: tuple[int, ...] = (64, 128, 256, 512)  # channels of the 3D conv stack (k4, s2)
    norm: Literal["none", "layer"] = "none"  # the original found LayerNorm hurts the critic
    dropout: float = Field(0.2, ge=0.0, lt=1.0)  # before the linear head
    # group size of the minibatch standard-deviation feature map before the head (ProGAN, StyleGAN: 4): the
    # critic sees the batch's spread, a remedy for collapse; 0 = off (the original)
    minibatch_std: int = Field(0, ge=0)


class ImageCriticConfig(Strict):
    """A 2D critic of single frames beside the video critic (MoCoGAN's image discriminator; DVD-GAN's spatial one)."""

    frames: int = Field(0, ge=0)  # frames of each video it scores, drawn at random (MoCoGAN 1, DVD-GAN 8); 0 = none
    widths: tuple[int, ...] = (64, 128, 256, 512)  # its Conv2d stack (k4, s2, LeakyReLU 0.2), no normalisation
    gp_lambda: float = Field(10.0, ge=0)  # its own gradient penalty on interpolated frames (wgan-gp)
    weight: float = Field(1.0, ge=0)  # its score's weight in the generator's loss


class ModelConfig(Strict):
    frames: int | None = Field(None, ge=8)  # frames per generated video; null = data.frames (random crops if fewer)
    generator: GeneratorConfig = GeneratorConfig()
    critic: CriticConfig = CriticConfig()
    image_critic: ImageCriticConfig = ImageCriticConfig()
    init: Literal["glorot", "dcgan"] = "glorot"  # Glorot uniform, or N(0, 0.02) as in DCGAN


# --------------------------------------------------------------------- train
class OptimizerConfig(Strict):
    """One optimiser: Adam for the critics and the decoder, SGD with momentum for the LSTM (the original's)."""

    type: Literal["adam", "sgd"] = "adam"  # the optimiser (fused implementations)
    lr: float = Field(2e-4, gt=0)  # learning rate
    betas: tuple[float, float] = (0.5, 0.9)  # adam only
    momentum: float = Field(0.0, ge=0, lt=1)  # sgd only
    weight_decay: float = Field(0.0, ge=0)  # L2 penalty added to the gradients
    lr_decay: float | None = Field(None, gt=0, le=1)  # per generator iteration: lr *= lr_decay; null = constant


class OptimizersConfig(Strict):
    critic: OptimizerConfig = OptimizerConfig()
    decoder: OptimizerConfig = OptimizerConfig()
    lstm: OptimizerConfig = OptimizerConfig(type="sgd", lr=1e-3, momentum=0.95)
    image_critic: OptimizerConfig = OptimizerConfig()  # model.image_critic's own optimiser (when it has frames)


class ClippingConfig(Strict):
    """Gradient clipping by norm, per optimiser group."""

    mode: Literal["per_parameter", "global", "none"] = "per_parameter"  # per_parameter: each tensor's own norm
    critic: float = Field(5.0, gt=0)  # max norm for the critics' gradients (video and image)
    decoder: float = Field(5.0, gt=0)  # max norm for the decoder's gradients
    lstm: float = Field(5.0, gt=0)  # max norm for the LSTM's gradients


class ScheduleConfig(Strict):
    n_critic: int = Field(5, ge=1)  # critic steps per generator step, each on a fresh real batch
    burst_steps: int = Field(100, ge=1)  # critic steps in a burst iteration
    burst_first: int = Field(25, ge=0)  # the first N generator iterations are bursts
    burst_every: int = Field(500, ge=0)  # and every N-th after that (0 = never)
    # keep training the critic while its loss is above this (a device sync per step)
    critic_threshold: float | None = None
    critic_max_steps: int = Field(100, ge=1)  # cap on critic steps when a threshold is set
    # keep training the generator while its loss is above this (a device sync per step)
    generator_threshold: float | None = None
    generator_max_steps: int = Field(10, ge=1)  # cap on generator steps when a threshold is set


class AugmentConfig(Strict):
    """Augmentation of every critic input, the same draw for all frames of a clip (DiffAugment); all off = none."""

    translation: float = Field(0.0, ge=0, le=0.5)  # shift by up to this share of the side (DiffAugment: 0.125)
    cutout: float = Field(0.0, ge=0, lt=1)  # a square of this share of the side set to background (DiffAugment: 0.5)
    colour: bool = False  # brightness +-0.5 and contrast x0.5-1.5 (DiffAugment's)

    @property
    def enabled(self) -> bool:
        return self.translation > 0 or self.cutout > 0 or self.colour


class InstanceNoiseConfig(Strict):
    sigma: float = Field(0.1, ge=0)  # std of Gaussian noise on critic inputs at iteration 0 (data in [-1, 1])
    anneal_iterations: int = Field(2000, ge=1)  # sigma falls linearly to 0 over these generator iterations


class TrainConfig(Strict):
    iterations: int = Field(100_000, ge=0)  # generator iterations
    batch_size: int = Field(64, ge=1)  # global batch (split across ranks under torchrun)
    # basic: minimax BCE; alternative: -log D(G(z)) with smoothed real labels; non-saturating: without; hinge (SNGAN)
    loss: Literal["wgan-gp", "basic", "alternative", "non-saturating", "hinge"] = "wgan-gp"
    gp_lambda: float = Field(200.0, ge=0)  # WGAN-GP penalty weight (the original's 200); wgan-gp only
    r1_gamma: float = Field(0.0, ge=0)  # R1 penalty gamma / 2 * |grad D(real)|^2 (Mescheder et al. 2018); 0 = off
    seed: int = 0  # weights, noise, draws and batch order
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto: cuda when there is one
    # bf16 autocast of the training steps (CUDA or CPU); auto = where bf16 is fast: CUDA GPUs that support it,
    # CPUs with AVX512-BF16 or AMX units (elsewhere bf16 on a CPU is slower than float32)
    amp: Literal["none", "bf16", "auto"] = "none"
    tf32: bool = True  # allow TF32 matmuls on CUDA
    compile: bool = False  # torch.compile the generator (both uses) and the critic outside the penalty
    # reduce-overhead: CUDA graphs on CUDA
    compile_mode: Literal["default", "reduce-overhead", "max-autotune"] = "default"
    # channels_last(_3d) layouts for the critic, the decoder and their inputs; auto = on CPU only
    # (1.2x the demo's it/s there; not yet measured on a GPU)
    channels_last: Literal["auto"] | bool = "auto"
    gp_every: int = Field(
        1, ge=1
    )  # penalty on every k-th critic step with weight x k (lazy regularisation); 1 = every step
    ema_decay: float | None = Field(
        0.999, ge=0, lt=1
    )  # sample from an exponential moving average of the generator's weights; null = the trained weights
    optim: OptimizersConfig = OptimizersConfig()
    clip: ClippingConfig = ClippingConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    instance_noise: InstanceNoiseConfig = InstanceNoiseConfig()
    augment: AugmentConfig = AugmentConfig()
    snapshot_every: int = Field(1000, ge=1)  # generator-only snapshot every N iterations (step 0 included)
    resume_every: int = Field(100, ge=1)  # resume state every N iterations
    log_every: int = Field(10, ge=1)  # one train_log.jsonl line every N iterations
    video_every: int = Field(1000, ge=1)  # TensorBoard video summary every N iterations
    num_workers: int = Field(0, ge=0)  # DataLoader worker processes


class Config(Strict):
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    evaluator: EvaluatorConfig = EvaluatorConfig()
    evaluate: EvaluateConfig = EvaluateConfig()

    @model_validator(mode="after")
    def _model_fits_the_store(self) -> "Config":
        if self.model.frames is not None and self.model.frames > self.data.frames:
            raise ValueError(
                f"model.frames ({self.model.frames}) exceeds data.frames ({self.data.frames}); "
                "set model.frames <= data.frames or null"
            )
        if self.evaluate.fvd.enabled is True and self.frames < I3D_MIN_FRAMES:
            raise ValueError(
                f"evaluate.fvd.enabled is true but the I3D network needs videos of at least {I3D_MIN_FRAMES} frames "
                f"and these have {self.frames} (model.frames or data.frames); set it to auto or false, or make them "
                "longer"
            )
        return self

    @property
    def frames(self) -> int:
        """Frames per generated video."""
        return self.model.frames or self.data.frames


# ------------------------------------------------------------------- loading
def _format_error(err: Mapping[str, Any], prefix: str) -> str:
    path = ".".join(str(p) for p in err["loc"])
    where = f"{prefix}{path}" if path else prefix.rstrip(": ")
    if err["type"] == "extra_forbidden":
        parent = err["loc"][:-1]
        return f"{where}: unknown key; allowed keys here: {', '.join(_allowed_keys(parent))}"
    got = err.get("input")
    shown = "" if isinstance(got, dict) else f" (got {got!r})"
    return f"{where}: {err['msg']}{shown}"


def _allowed_keys(parent: tuple) -> list[str]:
    model: Any = Config
    for key in parent:
        field = model.model_fields.get(str(key))
        if field is None:
            return []
        model = field.annotation
    return list(getattr(model, "model_fields", {}))


def config_from_dict(raw: dict[str, Any] | None, source: str = "params", overrides: list[str] | None = None) -> Config:
    """The validated config; each error names where its value came from: `source`, or the `--set`
    override that gave it."""
    try:
        return Config.model_validate(raw or {})
    except ValidationError as exc:
        lines = [_format_error(e, _origin(e["loc"], source, overrides or [])) for e in exc.errors()]
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None


def _origin(loc: tuple, source: str, overrides: list[str]) -> str:
    path = [str(p) for p in loc]
    for item in reversed(overrides):  # the last override of a key is the one that holds
        key = item.split("=", 1)[0].split(".")
        if path and (path[: len(key)] == key or key[: len(path)] == path):
            return f"--set {item}: "
    return f"{source}: "


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Read a params.yaml (missing keys take the full-size defaults), apply `a.b=value` overrides."""
    raw: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.exists():
            raise ConfigError(f"{path}: no such params file")
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections")
    raw = apply_overrides(raw, overrides or [])
    return config_from_dict(raw, str(path) if path else "config", overrides)


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    raw = copy.deepcopy(raw)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key.path=value, e.g. train.iterations=100")
        key, value = item.split("=", 1)
        node = raw
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {part} is not a section")
        node[leaf] = yaml.safe_load(value)
    return raw


def to_dict(config: Config) -> dict[str, Any]:
    """Plain JSON-able dict (tuples become lists), safe for weights_only checkpoints."""
    return json.loads(config.model_dump_json())


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


# Settings that change neither the trained weights nor the batches seen.
_NOT_TRAINING_STATE = {
    "train.iterations",
    "train.snapshot_every",
    "train.resume_every",
    "train.log_every",
    "train.video_every",
    "train.num_workers",
    "train.device",
    "train.compile",
    "train.compile_mode",
    "train.channels_last",
}


def training_hash(config: Config, data_digest: str = "") -> str:
    """Identity of a training run: resume state is only reused when this matches."""
    flat = {
        k: v
        for k, v in flatten(to_dict(config)).items()
        if (k.startswith(("data.", "model.", "train.")) and k not in _NOT_TRAINING_STATE)
    }
    blob = json.dumps({"config": flat, "data": data_digest}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def architecture(config: Config) -> dict[str, Any]:
    """The keys a checkpoint's weights depend on, for refusing a mismatched resume."""
    flat = flatten(to_dict(config))
    keep = (
        "model.generator.",
        "model.critic.",
        "model.image_critic.frames",
        "model.image_critic.widths",
        "data.frame_size",
        "data.channels",
    )
    arch = {k: v for k, v in flat.items() if k.startswith(keep) and k != "model.critic.dropout"}
    arch["frames"] = config.frames
    return arch
