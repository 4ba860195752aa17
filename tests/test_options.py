"""Options no profile sets, each doing what its docs/config.md line says."""

import torch
from support import tiny_config

from videogan.models import build_critic, build_generator
from videogan.training.state import TrainingState
from videogan.training.steps import Networks, StepSetup, critic_step_loss, draw, step_rng

CPU = torch.device("cpu")


def test_critic_norm_layer_puts_a_layer_norm_after_each_conv_and_the_penalty_still_works():
    cfg = tiny_config(model={"critic": {"norm": "layer"}})
    state = TrainingState.fresh(cfg, CPU)
    norms = [m for m in state.critic.features if isinstance(m, torch.nn.GroupNorm)]
    assert len(norms) == len(cfg.model.critic.widths) and all(m.num_groups == 1 for m in norms)
    assert not any(isinstance(m, torch.nn.GroupNorm) for m in build_critic(tiny_config()).modules())
    setup = StepSetup.of(state.generator, state.critic, "wgan-gp", 200.0)
    d = draw(setup, 4, 0.0, step_rng(0, "critic", 0, CPU), True)
    loss, stats = critic_step_loss(
        Networks.build(state.generator, state.critic),
        torch.rand(4, 1, 8, 16, 16),
        state.generator(d.need("z")).detach(),
        d,
        setup,
    )
    loss.backward()
    assert torch.isfinite(stats["gradient_penalty"]) and all(m.weight.grad is not None for m in norms)


def test_lr_decay_multiplies_each_groups_rate_per_generator_iteration():
    cfg = tiny_config(train={"optim": {"decoder": {"lr": 1e-3, "lr_decay": 0.5}}})
    state = TrainingState.fresh(cfg, CPU)
    for _ in range(3):
        for scheduler in state.schedulers.values():
            scheduler.step()
    assert state.optimizers["decoder"].param_groups[0]["lr"] == 1e-3 * 0.5**3
    assert state.optimizers["critic"].param_groups[0]["lr"] == cfg.train.optim.critic.lr  # null: constant


def test_weight_decay_reaches_the_optimiser():
    state = TrainingState.fresh(tiny_config(train={"optim": {"lstm": {"weight_decay": 0.01}}}), CPU)
    assert state.optimizers["lstm"].param_groups[0]["weight_decay"] == 0.01
    assert state.optimizers["decoder"].param_groups[0]["weight_decay"] == 0.0


def test_forget_bias_is_the_lstms_initial_forget_gate_shift():
    for bias in (1.0, 2.5):
        generator = build_generator(tiny_config(model={"generator": {"forget_bias": bias}}))
        shift = generator.lstm.gate_shift
        assert torch.all(shift[2] == bias) and torch.all(shift[[0, 1, 3]] == 0)
