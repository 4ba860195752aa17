"""Typed settings of the data sources and the clip store (the `data:` section).

The defaults are the original's full size: 20 frames of 64x64, one channel.
"""

from pathlib import PurePosixPath
from typing import Literal
from urllib.parse import urlparse

from pydantic import Field, field_validator, model_validator

from videogan.strict import Strict

Dataset = Literal["moving_mnist_generated", "moving_mnist", "pacman_emulator", "pacman_folder", "bouncing_squares"]
# Rows top:bottom and columns left:right kept of the 210x160 Atari screen; the default is the maze.
Crop = tuple[int, int, int, int]
PLAYFIELD: Crop = (0, 172, 0, 160)
PACMAN_DRIVE_URL = "https://drive.google.com/open?id=0Byf787GZQ7KvV25xMWpWbV9LdUU"
# Names in data/raw that the download stage writes itself: a URL's file must not take one of them.
RAW_NAMES = ("pacman_folder", "pacman_folder.source", "source.json")


def download_name(url: str) -> str:
    """The file name a download of `url` gets in data/raw."""
    return PurePosixPath(urlparse(url).path).name or "download"


def _check_download_name(url: str | None) -> str | None:
    name = None if url is None else download_name(url)
    if name is not None and (name in (".", "..") or name in RAW_NAMES or name.startswith(".")):
        raise ValueError(
            f"the URL's file name {name!r} cannot be saved in data/raw (it is a folder, hidden, or "
            f"one of {', '.join(RAW_NAMES)}); use a URL whose path ends in the file's own name, "
            "e.g. .../Ms_Pacman.zip"
        )
    return url


class MovingMnistFile(Strict):
    url: str = "http://www.cs.toronto.edu/~nitish/unsupervised_video/mnist_test_seq.npy"  # the published file
    md5: str = "be083ec986bfe91a449d63653c411eb2"  # checked before the download is moved into place
    val_sequences: int = Field(1000, ge=1)  # taken after the training sequences
    test_sequences: int = Field(2000, ge=1)  # the file's last sequences; the rest (7000) train

    _saved_name = field_validator("url")(_check_download_name)


class MovingMnistGenerated(Strict):
    canvas: int = Field(64, ge=28)  # side of the square canvas in pixels (digits are 28x28)
    digits: int = Field(2, ge=1)  # digits per sequence, combined by maximum
    step: float = Field(0.1, gt=0, le=1)  # distance per frame, in units of the free range (canvas - 28)
    train_sequences: int = Field(10000, ge=1)  # sequences in the train split
    val_sequences: int = Field(1000, ge=1)  # sequences in the validation split
    test_sequences: int = Field(2000, ge=1)  # sequences in the test split
    digit_split: tuple[float, float, float] = (0.8, 0.1, 0.1)  # share of each class's 500 images per split

    @model_validator(mode="after")
    def _split_fits(self) -> "MovingMnistGenerated":
        if min(self.digit_split) <= 0 or sum(self.digit_split) > 1 + 1e-9:
            raise ValueError(f"digit_split {self.digit_split}: each share must be > 0 and their sum <= 1")
        return self


class PacmanEmulator(Strict):
    env_id: str = "ALE/MsPacman-v5"  # gymnasium id; ale-py ships the ROM
    frame_skip: int = Field(4, ge=1)  # emulator frames per recorded frame (the action is held)
    deflicker: bool = True  # merge the 4-frame ghost flicker cycle so every ghost shows in every frame
    turn_probability: float = Field(0.05, ge=0, le=1)  # chance per recorded frame of asking for a perpendicular turn
    episode_frames: int = Field(2000, ge=1)  # recorded frames per episode at most (losing the game ends it sooner)
    crop: Crop = PLAYFIELD  # top, bottom, left, right of the screen kept
    window: int | None = Field(None, ge=8)  # side of a square window that follows Pacman (screen px); null = whole crop
    motion_threshold: float = Field(1e-3, ge=0)  # min mean squared frame change ([-1, 1] px) of a kept clip
    train_clips: int = Field(5000, ge=1)  # clips in the train split
    val_clips: int = Field(500, ge=1)  # clips in the validation split
    test_clips: int = Field(2000, ge=1)  # clips in the test split
    workers: int | None = Field(None, ge=1)  # emulator processes; null = one per CPU. Same clips for any count


class PacmanFolder(Strict):
    path: str | None = None  # a local Ms_Pacman folder (or its parent); null = data/raw/pacman_folder from `url`
    url: str | None = None  # an archive (.zip, .tar, .tar.gz) holding Ms_Pacman/{Train,Test}; README links the original
    md5: str | None = None  # of that archive; null skips the check (a warning says so)
    val_fraction: float = Field(0.1, gt=0, lt=1)  # share of the Train episodes held out for validation
    crop: Crop = PLAYFIELD  # top, bottom, left, right of the 210x160 frames kept
    window: int | None = Field(None, ge=8)  # side of a square window that follows Pacman (screen px); null = whole crop
    motion_threshold: float = Field(1e-3, ge=0)  # min mean squared frame change ([-1, 1] px) of a kept clip

    _saved_name = field_validator("url")(_check_download_name)


class BouncingSquares(Strict):
    num_videos: int = Field(2048, ge=8)  # videos in the train split (val and test get an eighth each)
    square_size: int = Field(4, ge=1)  # side of the square in pixels


class DataConfig(Strict):
    dataset: Dataset = "moving_mnist_generated"  # the source preprocess turns into the clip store
    frame_size: Literal[16, 32, 64, 128] = 64  # stored frames are frame_size x frame_size (area resize)
    frames: int = Field(20, ge=8)  # frames per stored clip
    channels: Literal[1, 3] = 1  # 1 = grey, 3 = RGB
    seed: int = 0  # fixes the bytes of every generated source and split
    moving_mnist: MovingMnistFile = MovingMnistFile()  # the published Toronto file
    moving_mnist_generated: MovingMnistGenerated = MovingMnistGenerated()  # the same algorithm, offline
    pacman_emulator: PacmanEmulator = PacmanEmulator()  # Ms Pacman rollouts from the Atari emulator
    pacman_folder: PacmanFolder = PacmanFolder()  # the published Ms_Pacman/{Train,Test}/<episode>/<frame>.png
    bouncing_squares: BouncingSquares = BouncingSquares()  # a tiny synthetic source for tests and smoke runs

    @model_validator(mode="after")
    def _crops_fit_the_screen(self) -> "DataConfig":
        for name in ("pacman_emulator", "pacman_folder"):
            top, bottom, left, right = getattr(self, name).crop
            if not (0 <= top < bottom <= 210 and 0 <= left < right <= 160):
                raise ValueError(
                    f"{name}.crop {getattr(self, name).crop}: need 0 <= top < bottom <= 210 "
                    "and 0 <= left < right <= 160 (the Atari screen is 210x160)"
                )
            window = getattr(self, name).window
            if window is not None and window > min(bottom - top, right - left):
                raise ValueError(
                    f"{name}.window {window} does not fit in the {bottom - top}x{right - left} crop; "
                    "lower the window or widen the crop"
                )
        return self
