"""Shared fixtures."""

from __future__ import annotations

import pytest
import torch

torch.set_num_threads(2)


@pytest.fixture
def squares():
    from videogan.data.squares import bouncing_squares

    return bouncing_squares(64, 8, 16, seed=3)
