"""What the training loop reports, and to whom. The loop only calls these hooks (on rank 0);
the pipeline adds its own (MLflow) without the library knowing about it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from tqdm.auto import tqdm

from videogan.files import write_atomic

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter


class StopTraining(Exception):
    """Raised by a callback's on_log or on_snapshot to end training at this step, as a finished run: the final
    checkpoint is written at this step with `extra["stopped_early"]` = {"step", "reason"}, and on_train_end is
    called. For example a parameter search's pruner stopping a trial that falls behind. Single process only:
    under torchrun it is an error, since every rank would have to stop at the same step."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Callback:
    def on_train_start(self, info: dict[str, Any]) -> None:
        """info: config, start_step, iterations, resumed (bool), training_hash, extra (a dict saved in
        every checkpoint; a callback may store ids there, e.g. a tracking run id, to continue later)."""

    def on_log(self, step: int, metrics: dict[str, float]) -> None:
        """May raise StopTraining (as may on_snapshot)."""

    def on_videos(self, step: int, videos: torch.Tensor) -> None:
        """A fixed-noise batch (B, C, T, H, W) in [-1, 1], every `train.video_every` iterations."""

    def on_snapshot(self, step: int, path: Path) -> None: ...

    def on_train_end(self, checkpoint: Path, metrics: dict[str, float]) -> None: ...

    def on_train_stop(self, error: BaseException) -> None:
        """Training ended early by `error` (a signal, a full disk, a diverged loss...), after on_train_start."""


class JsonlLog(Callback):
    """One JSON object per log step. On resume the lines past the resumed step are dropped, so the
    file always reads as one unbroken run."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def on_train_start(self, info: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        kept = []
        if info["resumed"] and self.path.exists():
            for line in self.path.read_text().splitlines():
                try:
                    if json.loads(line)["step"] <= info["start_step"]:
                        kept.append(line)
                except (ValueError, KeyError):
                    break  # a line cut by a kill ends the readable part
        write_atomic("".join(line + "\n" for line in kept).encode(), self.path)

    def on_log(self, step: int, metrics: dict[str, float]) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps({"step": step, **metrics}) + "\n")


class TensorBoardLog(Callback):
    """Scalars and videos; its event file is created when training starts, so a run refused before
    that (a config error, a finished run it would replace) leaves the log folder as it was."""

    def __init__(self, log_dir: str | Path, fps: int = 8):
        self.log_dir, self.fps = Path(log_dir), fps
        self.writer: SummaryWriter | None = None

    def on_train_start(self, info: dict[str, Any]) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(self.log_dir))

    def on_log(self, step: int, metrics: dict[str, float]) -> None:
        assert self.writer is not None
        for name, value in metrics.items():
            self.writer.add_scalar(f"train/{name}", value, step)

    def on_videos(self, step: int, videos: torch.Tensor) -> None:
        # add_video wants (N, T, C, H, W); values in [0, 1]
        frames = ((videos.float().clamp(-1, 1) + 1) / 2).permute(0, 2, 1, 3, 4)
        if frames.shape[2] == 1:
            frames = frames.expand(-1, -1, 3, -1, -1)  # moviepy's GIF writer wants RGB
        assert self.writer is not None
        self.writer.add_video("samples", frames, step, fps=self.fps)

    def on_train_end(self, checkpoint: Path, metrics: dict[str, float]) -> None:
        if self.writer is not None:
            self.writer.flush()
            self.writer.close()

    def on_train_stop(self, error: BaseException) -> None:
        if self.writer is not None:
            self.writer.close()


class ProgressBar(Callback):
    def __init__(self):
        self.bar: tqdm | None = None

    def on_train_start(self, info: dict[str, Any]) -> None:
        self.bar = tqdm(
            total=info["iterations"], initial=info["start_step"], desc="train", unit="it", dynamic_ncols=True
        )

    def on_log(self, step: int, metrics: dict[str, float]) -> None:
        if self.bar is None:
            return
        self.bar.update(step - self.bar.n)
        shown = {k: metrics[k] for k in ("loss_critic", "loss_generator", "wasserstein") if k in metrics}
        self.bar.set_postfix({k: f"{v:.3g}" for k, v in shown.items()})

    def on_train_end(self, checkpoint: Path, metrics: dict[str, float]) -> None:
        self.close()

    def on_train_stop(self, error: BaseException) -> None:
        self.close()  # the bar's line ends, so the error that follows has its own

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
