"""The generator's moving average: its arithmetic, and that snapshots, checkpoints and samples use it."""

import pytest
import torch
from support import tiny_config
from test_resume import quiet
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from videogan.data.batches import ClipBatches
from videogan.sampling import load_generator
from videogan.training import checkpoint
from videogan.training.ema import averaged_copy, update_average, warmed_up_decay
from videogan.training.loop import OutputPaths, Trainer


def test_update_average_is_the_exponential_moving_average():
    live = nn.Linear(3, 2)
    average = averaged_copy(live)
    start = average.weight.clone()
    with torch.no_grad():
        live.weight.add_(1.0)
    update_average(average, live, decay=0.9)
    torch.testing.assert_close(average.weight, 0.9 * start + 0.1 * live.weight)
    assert not average.weight.requires_grad


def test_decay_warms_up_then_holds():
    assert warmed_up_decay(0.999, 0) == pytest.approx(0.1)
    assert warmed_up_decay(0.999, 90) == pytest.approx(0.91)
    assert warmed_up_decay(0.999, 10**6) == 0.999


def run(tmp_path, clips, cfg):
    paths = OutputPaths.under(tmp_path)
    trainer = Trainer(cfg, ClipBatches(clips, cfg.train.batch_size, cfg.frames), paths, say=quiet)
    trainer.fit()
    return trainer, paths


def test_snapshots_checkpoint_and_samples_hold_the_average(tmp_path, squares):
    trainer, paths = run(tmp_path, squares, tiny_config(train={"iterations": 10}))
    state = trainer.state
    average, trained = state.generator_ema.state_dict(), state.generator.state_dict()
    assert any(not torch.equal(average[k], trained[k]) for k in average)

    full = checkpoint.load(paths.checkpoint)
    for k in trained:  # the trained weights stay in the checkpoint for resuming
        assert torch.equal(full["generator"][k], trained[k])
        assert torch.equal(full["generator_ema"][k], average[k])
    snapshot = checkpoint.load(paths.snapshots / "step_0000010.pt")["generator"]
    sampled = load_generator(paths.checkpoint)[0].state_dict()
    for k in average:
        assert torch.equal(snapshot[k], average[k])
        assert torch.equal(sampled[k], average[k])


def test_null_decay_samples_the_trained_weights(tmp_path, squares):
    trainer, paths = run(tmp_path, squares, tiny_config(train={"ema_decay": None}))
    assert trainer.state.generator_ema is None
    assert "generator_ema" not in checkpoint.load(paths.checkpoint)
    sampled = load_generator(paths.checkpoint)[0].state_dict()
    for k, v in trainer.state.generator.state_dict().items():
        assert torch.equal(sampled[k], v)


class HostReads(TorchDispatchMode):
    """Every tensor read on the host (`aten._local_scalar_dense`: .item(), a 0-d tensor taken as a scalar)."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += func is torch.ops.aten._local_scalar_dense.default
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("keep", [1.0, 0.0])
def test_the_guarded_update_reads_nothing_on_the_host_and_matches_the_lerp(keep):
    live = nn.Linear(3, 2)
    average, expected = averaged_copy(live), averaged_copy(live)
    with torch.no_grad():
        live.weight.add_(1.0)
    with HostReads() as reads:
        update_average(average, live, decay=0.9, keep=torch.tensor(keep))
    update_average(expected, live, decay=1.0 - 0.1 * keep)
    assert reads.count == 0
    torch.testing.assert_close(average.weight, expected.weight, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(average.bias, expected.bias, rtol=1e-6, atol=1e-7)


def test_the_host_read_counter_sees_a_tensor_taken_as_a_scalar():
    """What the test above would catch: foreach lerp with a 0-d tensor weight reads it on the host."""
    with HostReads() as reads:
        torch._foreach_lerp_([torch.zeros(2)], [torch.ones(2)], torch.tensor(0.5))
    assert reads.count == 1
