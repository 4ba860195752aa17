"""Typed settings of the data sources and the clip store (the `data:` section)."""

from typing import Literal

from pydantic import Field

from videogan.strict import Strict

Dataset = Literal[
    "moving_mnist_generated", "moving_mnist", "pacman_emulator", "pacman_folder", "bouncing_squares"
]


class MovingMnistFile(Strict):
    url: str = "http://www.cs.toronto.edu/~nitish/unsupervised_video/mnist_test_seq.npy"
    md5: str = "be083ec986bfe91a449d63653c411eb2"


class BouncingSquares(Strict):
    num_videos: int = Field(2048, ge=8)
    square_size: int = Field(4, ge=1)


class DataConfig(Strict):
    dataset: Dataset = "moving_mnist_generated"
    frame_size: Literal[16, 32, 64, 128] = 64
    frames: int = Field(20, ge=8)
    channels: Literal[1, 3] = 1
    seed: int = 0
    moving_mnist: MovingMnistFile = MovingMnistFile()
    bouncing_squares: BouncingSquares = BouncingSquares()
