"""Typed settings of the evaluator network (`evaluator:`) and of evaluation (`evaluate:`)."""

import math
from typing import Literal

from pydantic import Field, model_validator

from videogan.strict import Strict


def encoder_channels(input_size: int, width: int) -> int:
    """Channels of the evaluator's 4x4 conv map: width doubles per stride-2 block, capped at 4 x width."""
    return min(width * 2 ** (int(math.log2(input_size // 4)) - 1), 4 * width)


class EvaluatorConfig(Strict):
    seed: int = 0  # seed of the evaluator's initial weights, its batches and its held-out checks
    input_size: Literal[16, 32, 64] = 32  # frames are resized to this square before the evaluator sees them
    width: int = Field(32, ge=4)  # channels of the first stride-2 conv; doubles per block to 4x4, at most 4 x width
    frame_dim: int = Field(64, ge=8)  # position-aware frame feature (beside the encoder's channels: what is there)
    motion_dim: int = Field(64, ge=8)  # temporal-encoder feature; video = channels + frame_dim + motion_dim <= 256
    clip_frames: int = Field(8, ge=3)  # frames per training clip (a random temporal crop)
    max_clips: int = Field(20_000, ge=16)  # training clips used at most (a seeded subset of the train split)
    val_clips: int = Field(1000, ge=16)  # held-out (val split) clips for the reported accuracy
    epochs: int = Field(8, ge=1)  # passes over the training clips
    batch_size: int = Field(32, ge=2)  # clips per step for the order task (and x clip_frames single digit frames)
    lr: float = Field(2e-3, gt=0)  # Adam learning rate, cosine-decayed to 0
    negatives: float = Field(
        0.25, ge=0, lt=1
    )  # share of digit frames replaced by "no digit" ones: half digit-free (noise, blobs, blank, dust), half broken
    # digits (fragments and strokes cut from real frames, what a half-trained generator draws)
    device: Literal["auto", "cpu", "cuda"] = "auto"  # where to fit; not part of the evaluator's version

    @model_validator(mode="after")
    def _features_fit(self) -> "EvaluatorConfig":
        channels = encoder_channels(self.input_size, self.width)
        if channels + self.frame_dim + self.motion_dim > 256:
            raise ValueError(
                f"video features would have {channels} (encoder channels at width {self.width}) + frame_dim "
                f"{self.frame_dim} + motion_dim {self.motion_dim} dims; they must be <= 256: lower one of them"
            )
        return self


class RenderConfig(Strict):
    videos: int = Field(16, ge=1)  # generated videos in reports/samples.gif (fixed noise: evaluate.seed)
    side_by_side: int = Field(8, ge=1)  # real and generated videos each in reports/real_vs_generated.gif
    interpolation_rows: int = Field(4, ge=1)  # noise pairs in reports/interpolation.gif
    interpolation_steps: int = Field(8, ge=2)  # videos from one noise vector to the other, ends included
    snapshot_videos: int = Field(4, ge=1)  # videos per snapshot row in reports/snapshots.gif
    fps: int = Field(8, ge=1, le=50)  # GIF frame rate


I3D_MIN_FRAMES = 9  # three stride-2 time reductions must leave I3D's final 2-frame average pool its 2 frames


class FvdConfig(Strict):
    # FVD with the Kinetics-400 I3D (fvd, fvd_ref, fvd_init). I3D needs videos of >= 9 frames:
    # auto = FVD where they have them (a note where not); true = they must
    enabled: Literal["auto"] | bool = "auto"
    # videos per set (generated, step 0, real A, real B), at most evaluate.num_samples (metrics.json's fvd_videos
    # says how many were used); null = evaluate.num_samples. The papers' fvd2048_16f: 2048
    videos: int | None = Field(None, ge=2)
    frames: int = Field(16, ge=I3D_MIN_FRAMES)  # I3D sees the first this-many frames (all of shorter ones); papers: 16
    batch_size: int = Field(16, ge=1)  # videos per I3D forward pass


class EvaluateConfig(Strict):
    num_samples: int = Field(1000, ge=2)  # generated videos scored (and real test videos per half)
    seed: int = 0  # noise seed of the scored samples (and of the rendered grids)
    batch_size: int = Field(100, ge=1)  # videos per forward pass when sampling and extracting features
    k: int = Field(5, ge=1)  # neighbours for precision, recall, density and coverage (Naeem 2020: 5)
    threshold: float = Field(0.8, gt=0, lt=1)  # digit probability at which a frame counts as recognisable
    device: Literal["auto", "cpu", "cuda"] = "auto"  # where to sample and extract features
    render: RenderConfig = RenderConfig()
    fvd: FvdConfig = FvdConfig()
