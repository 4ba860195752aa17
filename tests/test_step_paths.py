"""The fast paths of a training step: no host reads per iteration, compiled and channels-last steps
equal to eager ones, lazy penalty, the uint8 device transfer."""

import functools
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from support import tiny_config

import videogan
from videogan.data.batches import ClipBatches, to_device_videos, to_video_batch
from videogan.training.callbacks import JsonlLog
from videogan.training.loop import OutputPaths, Trainer
from videogan.training.state import TrainingState
from videogan.training.steps import CriticInputs, Networks, StepSetup, draw, make_fakes, step_rng

PACKAGE = str(Path(videogan.__file__).parent)
HOST_READS = ("item", "__float__", "__bool__", "__int__", "tolist", "cpu", "numpy")


def fit(tmp_path, clips, cfg) -> Trainer:
    paths = OutputPaths.under(tmp_path)
    trainer = Trainer(
        cfg, ClipBatches(clips, cfg.train.batch_size, cfg.frames), paths, [JsonlLog(paths.log)], say=lambda *_: None
    )
    trainer.fit()
    return trainer


def logged(tmp_path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "reports/train_log.jsonl").read_text().splitlines()]


@pytest.fixture
def host_reads(monkeypatch):
    """Counts the tensor-to-host reads whose caller is the videogan package."""
    counts: list[str] = []

    def counting(name, original):
        @functools.wraps(original)
        def wrapper(self, *args, **kwargs):
            caller = sys._getframe(1).f_code.co_filename
            if caller.startswith(PACKAGE):
                counts.append(f"{name} from {caller}:{sys._getframe(1).f_lineno}")
            return original(self, *args, **kwargs)

        return wrapper

    for name in HOST_READS:
        monkeypatch.setattr(torch.Tensor, name, counting(name, getattr(torch.Tensor, name)))
    return counts


def quiet_config(iterations: int, **schedule):
    far = 10**6
    return tiny_config(
        train={
            "iterations": iterations,
            "log_every": far,
            "resume_every": far,
            "snapshot_every": far,
            "video_every": far,
            "schedule": {"burst_first": 0, **schedule},
        }
    )


def test_an_ordinary_iteration_reads_nothing_on_the_host(tmp_path, squares, host_reads):
    fit(tmp_path / "a", squares, quiet_config(20))
    after_20 = list(host_reads)
    host_reads.clear()
    fit(tmp_path / "b", squares, quiet_config(40))
    assert len(host_reads) == len(after_20), sorted(set(host_reads) - set(after_20))
    assert len(host_reads) < 40  # the end-of-run log and checks only


def test_the_host_read_count_sees_a_loss_threshold(tmp_path, squares, host_reads):
    """What the test above would catch: a threshold reads the loss after every critic step from the
    scheduled 2nd on, up to the cap of 3: 2 reads per iteration."""
    fit(tmp_path / "a", squares, quiet_config(20, critic_threshold=-1e9, critic_max_steps=3))
    after_20 = len(host_reads)
    host_reads.clear()
    fit(tmp_path / "b", squares, quiet_config(40, critic_threshold=-1e9, critic_max_steps=3))
    assert len(host_reads) - after_20 == 20 * 2


@pytest.mark.slow
def test_compiled_training_matches_eager(tmp_path, squares):
    """torch.compile on CPU (inductor's C++ kernels): the logged losses of 6 iterations agree with
    eager to 1e-4 relative; weights to 1e-4 (fused kernels sum in another order)."""
    eager = fit(tmp_path / "eager", squares, tiny_config(train={"iterations": 6}))
    compiled = fit(tmp_path / "compiled", squares, tiny_config(train={"iterations": 6, "compile": True}))
    for a, b in zip(logged(tmp_path / "eager"), logged(tmp_path / "compiled"), strict=True):
        for key in ("loss_critic", "loss_generator", "wasserstein", "gradient_penalty"):
            assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-6), (a["step"], key)
    for x, y in zip(eager.state.generator.parameters(), compiled.state.generator.parameters()):
        torch.testing.assert_close(y, x, rtol=1e-4, atol=1e-4)


def test_channels_last_training_matches_eager(tmp_path, squares):
    """Same arithmetic in another memory layout: 12 iterations agree to 1e-4 relative."""
    plain = fit(tmp_path / "plain", squares, tiny_config(train={"channels_last": False}))
    last = fit(tmp_path / "last", squares, tiny_config(train={"channels_last": "auto"}))  # on, on a CPU
    assert last.state.critic.features[0].weight.is_contiguous(memory_format=torch.channels_last_3d)
    for a, b in zip(logged(tmp_path / "plain"), logged(tmp_path / "last"), strict=True):
        for key in ("loss_critic", "loss_generator", "wasserstein"):
            assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-6), (a["step"], key)
    for x, y in zip(plain.state.critic.parameters(), last.state.critic.parameters()):
        torch.testing.assert_close(y, x, rtol=1e-4, atol=1e-4)


def test_lazy_penalty_runs_on_every_kth_critic_step_with_k_times_the_weight(tmp_path, squares, monkeypatch):
    import videogan.training.loop as loop

    weights = []
    original = loop.critic_step_loss

    def spy(nets, real, fake, d, setup, penalty_scale=1.0):
        weights.append(setup.gp_lambda * penalty_scale)
        return original(nets, real, fake, d, setup, penalty_scale)

    monkeypatch.setattr(loop, "critic_step_loss", spy)
    fit(tmp_path, squares, tiny_config(train={"iterations": 3, "gp_every": 4}))
    assert weights == [800.0, 0.0, 0.0, 0.0, 800.0, 0.0, 0.0, 0.0]  # 4 burst steps, then 2 + 2
    rows = logged(tmp_path)  # iterations 1-3 hold critic steps 0-3, 4-5, 6-7
    assert ["gradient_penalty" in row for row in rows] == [True, True, False]


def test_uint8_to_device_conversion_equals_the_table_lookup():
    clips = np.random.default_rng(0).integers(0, 256, (3, 4, 8, 8, 2), dtype=np.uint8)
    assert torch.equal(to_device_videos(torch.from_numpy(clips)), to_video_batch(clips))


def test_a_uint8_batch_is_the_float_batch_before_conversion(squares):
    batches = ClipBatches(squares, 4, 8, seed=3)
    assert batches.uint8_batch(5).dtype == torch.uint8
    assert torch.equal(to_device_videos(batches.uint8_batch(5)), batches.batch(5))


def test_critic_fakes_made_ahead_in_one_call_equal_one_call_per_step():
    cfg = tiny_config()
    state, cpu = TrainingState.fresh(cfg, torch.device("cpu")), torch.device("cpu")
    nets = Networks.build(state.generator, state.critic)
    setup = StepSetup.of(state.generator, state.critic, "wgan-gp", 200.0)
    ahead = CriticInputs(nets, setup, seed=0, batch=8, shard=(0, 1), device=cpu, group=3)
    calls = []
    nets.generate = lambda z, g=nets.generate: calls.append(len(z)) or g(z)
    for counter, planned in zip(range(10, 15), (5, 4, 3, 2, 1)):
        d, fake = ahead.take(counter, 0.1, planned)
        alone = draw(setup, 8, 0.1, step_rng(0, "critic", counter, cpu), critic_step=True)
        assert d.tensors.keys() == alone.tensors.keys()
        assert all(torch.equal(d[k], alone[k]) for k in alone.tensors)
        torch.testing.assert_close(fake, make_fakes(nets, [alone])[0], rtol=1e-5, atol=1e-6)
    assert len(calls) == 2 + 5 and [n for n in calls if n != 8] == [24, 16]  # steps 10-12, then 13-14


@pytest.mark.parametrize("amp", ["none", "bf16", "auto"])
def test_amp_runs_the_cpu_steps_in_bfloat16_where_asked_and_where_bf16_is_fast(amp):
    from videogan.devices import autocast, bf16_is_fast

    cpu = torch.device("cpu")
    state = TrainingState.fresh(tiny_config(train={"amp": amp}), cpu)
    with autocast(amp, cpu):
        scores = state.critic(state.generator(state.generator.sample_noise(2)))
    want_bf16 = amp == "bf16" or (amp == "auto" and bf16_is_fast(cpu))
    assert scores.dtype == (torch.bfloat16 if want_bf16 else torch.float32)


def test_bf16_training_on_the_cpu_stays_finite_with_every_penalty(tmp_path, squares):
    cfg = tiny_config(train={"amp": "bf16", "loss": "non-saturating", "r1_gamma": 1.0, "iterations": 4})
    fit(tmp_path / "r1", squares, cfg)
    fit(tmp_path / "gp", squares, tiny_config(train={"amp": "bf16", "iterations": 4}))
    for run in ("r1", "gp"):
        rows = logged(tmp_path / run)
        assert rows and all(np.isfinite(r["loss_critic"]) and np.isfinite(r["loss_generator"]) for r in rows)
