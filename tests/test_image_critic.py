"""model.image_critic: a 2D critic on drawn frames, with its own penalty, its own optimiser, and its
score in the generator's loss."""

import torch
from support import tiny_config

from videogan.models.critic import ImageCritic, pick_frames
from videogan.training.state import TrainingState
from videogan.training.steps import Networks, StepSetup, critic_step_loss, draw, generator_step_loss, step_rng

CPU = torch.device("cpu")


def test_the_drawn_frames_are_picked_per_video():
    video = torch.arange(8.0).view(1, 1, 8, 1, 1).expand(3, 1, 8, 4, 4)  # frame t holds the value t
    u = torch.tensor([[0.0, 0.99], [0.5, 0.3], [0.2, 0.2]])
    frames = pick_frames(video, u)
    assert frames.shape == (6, 1, 4, 4)
    assert frames[:, 0, 0, 0].tolist() == [0, 7, 4, 2, 1, 1]
    assert ImageCritic(16, 1, (8, 16))(torch.randn(6, 1, 16, 16)).shape == (6,)


def setup_for(weight: float = 1.0):
    cfg = tiny_config(model={"image_critic": {"frames": 3, "widths": [8, 16], "weight": weight}})
    state = TrainingState.fresh(cfg, CPU)
    setup = StepSetup.of(state.generator, state.critic, "wgan-gp", 200.0, image=cfg.model.image_critic)
    return state, setup, Networks.build(state.generator, state.critic)


def test_a_critic_step_trains_the_image_critic_with_its_own_penalty():
    state, setup, nets = setup_for()
    d = draw(setup, 8, 0.0, step_rng(0, "critic", 0, CPU), True)
    assert d["frames_real"].shape == d["frames_fake"].shape == (8, 3) and d["eps_image"].shape == (24,)
    real = torch.rand(8, 1, 8, 16, 16) * 2 - 1
    fake = state.generator(d["z"]).detach()
    loss, stats = critic_step_loss(nets, real, fake, d, setup)
    assert {"wasserstein_image", "gradient_penalty_image"} <= stats.keys()
    loss.backward()
    grads = {name: p.grad for name, p in state.critic.image.named_parameters()}
    assert all(g is not None and g.abs().sum() > 0 for name, g in grads.items() if name != "head.bias"), grads.keys()
    # (the head's bias cancels in D(fake) - D(real), as the video critic's does)


def test_the_generator_loss_adds_the_image_critics_score_by_its_weight():
    losses = []
    for weight in (0.0, 1.0, 2.0):
        state, setup, nets = setup_for(weight)
        d = draw(setup, 8, 0.0, step_rng(0, "generator", 0, CPU), False)
        losses.append(float(generator_step_loss(nets, d, setup)))
    assert losses[1] != losses[0]
    assert abs((losses[2] - losses[0]) - 2 * (losses[1] - losses[0])) < 1e-5


def test_the_image_critic_has_its_own_optimiser_with_its_own_settings():
    cfg = tiny_config(
        model={"image_critic": {"frames": 2, "widths": [8, 16]}},
        train={"optim": {"critic": {"lr": 1e-4}, "image_critic": {"lr": 3e-4, "betas": [0.0, 0.99]}}},
    )
    state = TrainingState.fresh(cfg, CPU)
    image = {id(p) for p in state.critic.image.parameters()}
    assert {id(p) for p in state.params("image_critic")} == image
    assert not image & {id(p) for p in state.params("critic")}
    assert len(state.params("critic")) + len(image) == len(list(state.critic.parameters()))
    group = state.optimizers["image_critic"].param_groups[0]
    assert group["lr"] == 3e-4 and tuple(group["betas"]) == (0.0, 0.99)
    assert state.optimizers["critic"].param_groups[0]["lr"] == 1e-4
    assert state.critic_groups == ["critic", "image_critic"]
    assert TrainingState.fresh(tiny_config(), CPU).critic_groups == ["critic"]
