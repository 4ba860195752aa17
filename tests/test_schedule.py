import json

import pytest
import torch
from support import tiny_config

from videogan.config import InstanceNoiseConfig, ScheduleConfig
from videogan.data.batches import ClipBatches
from videogan.training.callbacks import JsonlLog
from videogan.training.loop import OutputPaths, Trainer
from videogan.training.optim import clip_gradients
from videogan.training.schedule import instance_noise_sigma, run_until, scheduled_critic_steps


def test_bursts_first_iterations_and_every_nth():
    s = ScheduleConfig(n_critic=5, burst_steps=100, burst_first=25, burst_every=500)
    steps = [scheduled_critic_steps(s, i) for i in range(1002)]
    assert steps[:25] == [100] * 25
    assert steps[25:500] == [5] * 475
    assert steps[500] == 100 and steps[1000] == 100
    assert sum(steps) == 100 * 27 + 5 * (1002 - 27)


def scripted(losses):
    calls = []

    def step(i):
        calls.append(i)
        return losses[len(calls) - 1]

    return step, calls


def test_thresholds_off_run_exactly_the_scheduled_steps():
    step, calls = scripted([9.0] * 10)
    assert run_until(step, 5, None, 100).steps == 5 and len(calls) == 5


def test_threshold_keeps_training_until_the_loss_falls_under_it():
    step, _ = scripted([9, 8, 7, 6, 0.5, 0.1, 0.1])
    assert run_until(step, 2, threshold=1.0, cap=10).steps == 5


def test_threshold_is_capped():
    step, _ = scripted([9.0] * 20)
    assert run_until(step, 2, threshold=1.0, cap=7).steps == 7


def test_a_met_threshold_never_cuts_the_scheduled_steps():
    step, _ = scripted([-5.0] * 10)
    assert run_until(step, 5, threshold=1.0, cap=3).steps == 5  # not 1:1, unlike the original's default


def test_instance_noise_anneals_linearly_to_zero():
    cfg = InstanceNoiseConfig(sigma=0.2, anneal_iterations=100)
    assert instance_noise_sigma(cfg, 0) == 0.2
    assert instance_noise_sigma(cfg, 50) == pytest.approx(0.1)
    assert instance_noise_sigma(cfg, 100) == 0 and instance_noise_sigma(cfg, 500) == 0


def _steps_taken(tmp_path, squares, schedule, iterations):
    cfg = tiny_config(train={"iterations": iterations, "schedule": schedule})
    paths = OutputPaths.under(tmp_path)
    Trainer(cfg, ClipBatches(squares, 8, 8), paths, [JsonlLog(paths.log)], say=lambda *_: None).fit()
    return [json.loads(line) for line in paths.log.read_text().splitlines()]


def test_the_loop_takes_the_configured_steps(tmp_path, squares):
    schedule = {"n_critic": 3, "burst_steps": 7, "burst_first": 2, "burst_every": 4}
    log = _steps_taken(tmp_path, squares, schedule, 9)
    assert [r["critic_steps"] for r in log] == [7, 7, 3, 3, 7, 3, 3, 3, 7]
    assert all(r["generator_steps"] == 1 for r in log)


def test_the_loop_honours_thresholds_and_caps(tmp_path, squares):
    never_met = {
        "n_critic": 2,
        "burst_first": 0,
        "critic_threshold": -1e9,
        "critic_max_steps": 4,
        "generator_threshold": -1e9,
        "generator_max_steps": 3,
    }
    log = _steps_taken(tmp_path, squares, never_met, 3)
    assert [(r["critic_steps"], r["generator_steps"]) for r in log] == [(4, 3)] * 3


def _params_with_grads(norms):
    params = []
    for n in norms:
        p = torch.nn.Parameter(torch.zeros(10))
        p.grad = torch.full((10,), n / 10**0.5)
        params.append(p)
    return params


def test_per_parameter_clipping_bounds_each_norm_alone():
    params = _params_with_grads([1.0, 4.0, 30.0, 100.0])
    clip_gradients(params, 5.0, "per_parameter")
    norms = [p.grad.norm().item() for p in params]
    assert norms[:2] == pytest.approx([1.0, 4.0], rel=1e-5)  # small gradients untouched
    assert norms[2:] == pytest.approx([5.0, 5.0], rel=1e-5)


def test_global_clipping_bounds_the_total():
    params = _params_with_grads([1.0, 4.0, 30.0, 100.0])
    clip_gradients(params, 5.0, "global")
    total = torch.stack([p.grad.norm() for p in params]).norm().item()
    assert total == pytest.approx(5.0, rel=1e-4)
    assert params[0].grad.norm().item() < 0.1  # the small ones shrink too: the LSTM starves
