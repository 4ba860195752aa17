"""A few hundred iterations on moving squares measurably learn."""

import numpy as np
import pytest
from support import tiny_config

from videogan.data.batches import ClipBatches
from videogan.data.squares import bouncing_squares
from videogan.sampling import sample_clips
from videogan.training.loop import OutputPaths, Trainer


def statistics(clips: np.ndarray) -> dict[str, float]:
    x = clips.astype(np.float32)
    change = np.abs(np.diff(x, axis=1)).mean()
    return {
        "brightness": x.mean(),
        "lit_fraction": (x > 127).mean(),
        "relative_change": change / x.mean(),  # how much of the content moves per frame
    }


@pytest.mark.slow
def test_three_hundred_iterations_move_the_samples_toward_the_data(tmp_path):
    iterations = 300
    cfg = tiny_config(
        train={
            "iterations": iterations,
            "batch_size": 16,
            "log_every": 50,
            "snapshot_every": 1000,
            "resume_every": 1000,
            "schedule": {"n_critic": 5, "burst_first": 5, "burst_steps": 10},
            "instance_noise": {"sigma": 0.1, "anneal_iterations": iterations // 2},
        }
    )
    clips = bouncing_squares(512, 8, 16, seed=0)
    trainer = Trainer(cfg, ClipBatches(clips, 16, 8), OutputPaths.under(tmp_path), say=lambda *_: None)
    before = statistics(sample_clips(trainer.state.generator, 128, seed=1))
    trainer.fit()
    after = statistics(sample_clips(trainer.state.generator, 128, seed=1))
    real = statistics(clips)
    for name in real:
        assert abs(after[name] - real[name]) < abs(before[name] - real[name]), (name, before, after, real)
