"""One critic step and one generator step, each a pure function of the weights, a real batch and
its random draws.

All randomness of a step (noise z, penalty mixing weights, instance noise,
dropout masks, smoothed labels) is drawn up front for the *global* batch from a
generator seeded by (seed, stream, counter), in two calls (one uniform, one
normal). Under data parallelism each rank takes its rows, so the ranks together
compute exactly what one process would, and a resumed run redraws exactly what
an unbroken run drew.

Nothing here reads a tensor on the host: losses and stats stay on the device.
`Networks` holds what a step runs: the eager modules (the penalty's double
backward needs the eager critic) and, with `train.compile`, compiled callables
for the generator (where it is trained and where it makes the critic's fakes)
and for the critic's plain scoring.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from videogan.config import AugmentConfig, ImageCriticConfig
from videogan.devices import to_layout
from videogan.losses import critic_loss, generator_loss, gradient_penalty, r1_penalty
from videogan.models import Critic, VideoGenerator
from videogan.models.critic import pick_frames
from videogan.training import augment as aug

STREAMS = {"critic": 1, "generator": 2}


def step_rng(seed: int, stream: str, counter: int, device: torch.device) -> torch.Generator:
    """A random-number generator (torch.Generator) whose state depends only on (seed, stream, counter)."""
    key = hashlib.sha256(f"{seed}/{STREAMS[stream]}/{counter}".encode()).digest()
    gen = torch.Generator(device=device)
    gen.manual_seed(int.from_bytes(key[:8], "little") >> 1)
    return gen


@dataclass
class Draws:
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)

    def __getitem__(self, key: str) -> torch.Tensor | None:
        return self.tensors.get(key)

    def need(self, key: str) -> torch.Tensor:
        """A draw the step cannot go without (KeyError naming it if it was not drawn)."""
        return self.tensors[key]

    def shard(self, rank: int, world: int) -> "Draws":
        return Draws({k: v.chunk(world)[rank] for k, v in self.tensors.items()})


@dataclass(frozen=True)
class StepSetup:
    """What a step needs to know about the models and the loss."""

    loss: str
    gp_lambda: float
    noise_dim: int
    video_shape: tuple[int, ...]
    feature_dim: int
    dropout: float
    augment: AugmentConfig = AugmentConfig()
    image: ImageCriticConfig = ImageCriticConfig()
    r1_gamma: float = 0.0

    @classmethod
    def of(
        cls,
        generator: VideoGenerator,
        critic: Critic,
        loss: str,
        gp_lambda: float,
        augment: AugmentConfig = AugmentConfig(),
        image: ImageCriticConfig = ImageCriticConfig(),
        r1_gamma: float = 0.0,
    ) -> "StepSetup":
        shape = (generator.channels, generator.frames, generator.frame_size, generator.frame_size)
        dim = generator.noise_dim + generator.frames * generator.step_noise_dim()
        return cls(loss, gp_lambda, dim, shape, critic.feature_dim, critic.dropout, augment, image, r1_gamma)

    @property
    def has_penalty(self) -> bool:
        return self.loss == "wgan-gp" and self.gp_lambda > 0


def draw(setup: StepSetup, batch: int, sigma: float, gen: torch.Generator, critic_step: bool) -> Draws:
    """Every random tensor of one step: one uniform draw split by columns, one normal draw."""
    device = gen.device
    inputs = (["real", "fake"] + ["mixed"] * setup.has_penalty) if critic_step else ["fake"]
    masks = inputs if setup.dropout > 0 else []
    columns = {"z": setup.noise_dim, "masks": setup.feature_dim * len(masks)}
    if "mixed" in inputs:
        columns["eps"] = 1
    if critic_step and setup.loss == "alternative":
        columns["real_labels"] = 1
    augmented = (["real", "fake"] if critic_step else ["fake"]) if setup.augment.enabled else []
    if augmented:  # only then: without augmentation the draws stay what they always were
        columns["augment"] = aug.COLUMNS * len(augmented)
    k = setup.image.frames
    if k:  # the image critic's frames of each video, and its penalty's mixing weights
        columns.update({"frames_real": k, "frames_fake": k} if critic_step else {"frames_fake": k})
        if critic_step and setup.loss == "wgan-gp" and setup.image.gp_lambda > 0:
            columns["eps_image"] = k
    uniform = torch.rand(batch, sum(columns.values()), generator=gen, device=device)
    parts = dict(zip(columns, uniform.split(list(columns.values()), dim=1)))
    t: dict[str, torch.Tensor] = {"z": parts["z"] * 2 - 1}
    if masks:
        keep = (parts["masks"] >= setup.dropout).float().split(setup.feature_dim, dim=1)
        t.update({f"mask_{name}": m for name, m in zip(masks, keep)})
    if "eps" in parts:
        t["eps"] = parts["eps"][:, 0]
    if "real_labels" in parts:
        t["real_labels"] = parts["real_labels"][:, 0] * 0.3 + 0.7  # U(0.7, 1.0)
    if augmented:
        t.update({f"augment_{name}": a for name, a in zip(augmented, parts["augment"].split(aug.COLUMNS, dim=1))})
    t.update({key: parts[key] for key in ("frames_real", "frames_fake") if key in parts})
    if "eps_image" in parts:
        t["eps_image"] = parts["eps_image"].flatten()
    noisy = ("real", "fake") if critic_step else ("fake",)
    if sigma > 0:
        noise = sigma * torch.randn(batch, len(noisy), *setup.video_shape, generator=gen, device=device)
        t.update({f"noise_{name}": n for name, n in zip(noisy, noise.unbind(1))})
    return Draws(t)


@dataclass
class Networks:
    """The modules of a step and the callables that run them (compiled or eager)."""

    generator: VideoGenerator
    critic: Critic
    generate: Callable  # the generator's forward
    score: Callable  # the critic's forward outside the penalty
    video_format: torch.memory_format = torch.contiguous_format  # layout of the critic's inputs

    @classmethod
    def build(
        cls,
        generator: VideoGenerator,
        critic: Critic,
        compile: bool = False,
        mode: str = "default",
        channels_last: bool = False,
    ) -> "Networks":
        video_format = torch.contiguous_format
        if channels_last:
            to_layout(critic.features, torch.channels_last_3d)
            if critic.image is not None:
                to_layout(critic.image, torch.channels_last)
            to_layout(generator.decoder, torch.channels_last)
            video_format = torch.channels_last_3d
        if not compile:
            return cls(generator, critic, generator, critic, video_format)
        compile_mode = None if mode == "default" else mode
        return cls(
            generator,
            critic,
            torch.compile(generator, mode=compile_mode),
            torch.compile(critic, mode=compile_mode),
            video_format,
        )


def _critic_input(
    x: torch.Tensor, d: Draws, name: str, setup: StepSetup, video_format: torch.memory_format
) -> torch.Tensor:
    """The augmented (train.augment) video with its instance noise, in the critic's layout."""
    if d[f"augment_{name}"] is not None:
        x = aug.augment(x, d.need(f"augment_{name}"), setup.augment)
    noise = d[f"noise_{name}"]
    x = x if noise is None else x + noise.to(x.dtype)
    return x.contiguous(memory_format=video_format)


@torch.no_grad()
def make_fakes(nets: Networks, draws: list[Draws]) -> tuple[torch.Tensor, ...]:
    """The fakes of several critic steps from one generator call (their noise stacked)."""
    zs = [d.need("z") for d in draws]
    return nets.generate(torch.cat(zs)).split([len(z) for z in zs])


class CriticInputs:
    """Draws and fakes for the coming critic steps of one iteration.

    The generator does not change during an iteration's critic steps, so the fakes of up to `group`
    steps come from one generator call on a batch `group` times larger: fewer, larger kernels (20
    sequential frame decodes once, not once per critic step). Each step keeps its own keyed draws.
    """

    def __init__(
        self,
        nets: Networks,
        setup: StepSetup,
        seed: int,
        batch: int,
        shard: tuple[int, int],
        device: torch.device,
        group: int,
        autocast: Callable = contextlib.nullcontext,
    ):
        self.nets, self.setup, self.seed, self.batch, self.shard = nets, setup, seed, batch, shard
        self.device, self.group, self.autocast = device, group, autocast
        self.queue: deque[tuple[int, Draws, torch.Tensor]] = deque()

    def take(self, counter: int, sigma: float, planned: int) -> tuple[Draws, torch.Tensor]:
        """Draws and fake for critic step `counter`; `planned` steps (this one included) are still due."""
        if not self.queue or self.queue[0][0] != counter:
            self.queue.clear()
            counters = range(counter, counter + max(1, min(self.group, planned)))
            draws = [
                draw(
                    self.setup, self.batch, sigma, step_rng(self.seed, "critic", c, self.device), critic_step=True
                ).shard(*self.shard)
                for c in counters
            ]
            with self.autocast():
                fakes = make_fakes(self.nets, draws)
            self.queue.extend(zip(counters, draws, fakes))
        _, d, fake = self.queue.popleft()
        return d, fake

    def clear(self) -> None:
        """Forget fakes made ahead: the generator is about to change."""
        self.queue.clear()


def critic_step_loss(
    nets: Networks,
    real: torch.Tensor,
    fake: torch.Tensor,
    d: Draws,
    setup: StepSetup,
    penalty_scale: float = 1.0,
) -> tuple[torch.Tensor, dict]:
    """The critic's loss on one batch, its penalties (WGAN-GP, R1) scaled by `penalty_scale`: 0 skips them,
    k weights them k times on every k-th step (train.gp_every, lazy regularisation)."""
    real_in = _critic_input(real, d, "real", setup, nets.video_format)
    fake_in = _critic_input(fake, d, "fake", setup, nets.video_format)
    mask = d["mask_real"]
    real_scores, r1 = _scores_of_reals(
        lambda x: nets.score(x, mask), lambda x: nets.critic(x, mask), real_in, setup, penalty_scale
    )
    fake_scores = nets.score(fake_in, d["mask_fake"])
    loss = critic_loss(setup.loss, real_scores, fake_scores, d["real_labels"])
    stats: dict = {"wasserstein": (real_scores.mean() - fake_scores.mean()).detach()}
    if r1 is not None:
        loss = loss + setup.r1_gamma / 2 * penalty_scale * r1
        stats["r1_penalty"] = r1.detach()
    if d["eps"] is not None and penalty_scale > 0:
        # The penalty needs double backward, which torch.compile does not do: always the eager critic.
        penalty = gradient_penalty(lambda x: nets.critic(x, d["mask_mixed"]), real_in, fake_in, d["eps"])
        loss = loss + setup.gp_lambda * penalty_scale * penalty
        stats["gradient_penalty"] = penalty.detach()
    if nets.critic.image is not None:
        loss = loss + _image_critic_loss(nets.critic, real_in, fake_in, d, setup, penalty_scale, stats)
    return loss, stats


def _scores_of_reals(
    score: Callable, eager_score: Callable, reals: torch.Tensor, setup: StepSetup, penalty_scale: float
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The critic's scores of the reals and, on the steps that take R1, its penalty. R1 needs double backward,
    which torch.compile does not do: then the eager critic scores them."""
    if setup.r1_gamma > 0 and penalty_scale > 0:
        return r1_penalty(eager_score, reals)
    return score(reals), None


def _image_critic_loss(
    critic: Critic,
    real_in: torch.Tensor,
    fake_in: torch.Tensor,
    d: Draws,
    setup: StepSetup,
    penalty_scale: float,
    stats: dict,
) -> torch.Tensor:
    """The image critic's loss on the drawn frames of the same inputs, with its own penalties on the steps where
    the video critic has its (scaled as train.gp_every scales those)."""
    image = critic.image
    assert image is not None
    real_frames, fake_frames = pick_frames(real_in, d.need("frames_real")), pick_frames(fake_in, d.need("frames_fake"))
    real_scores, r1 = _scores_of_reals(image, image, real_frames, setup, penalty_scale)
    fake_scores = image(fake_frames)
    labels = None if d["real_labels"] is None else d["real_labels"].repeat_interleave(setup.image.frames)
    loss = critic_loss(setup.loss, real_scores, fake_scores, labels)
    stats["wasserstein_image"] = (real_scores.mean() - fake_scores.mean()).detach()
    if r1 is not None:
        loss = loss + setup.r1_gamma / 2 * penalty_scale * r1
        stats["r1_penalty_image"] = r1.detach()
    if d["eps_image"] is not None and penalty_scale > 0:
        penalty = gradient_penalty(image, real_frames, fake_frames, d["eps_image"])
        loss = loss + setup.image.gp_lambda * penalty_scale * penalty
        stats["gradient_penalty_image"] = penalty.detach()
    return loss


def generator_step_loss(nets: Networks, d: Draws, setup: StepSetup) -> torch.Tensor:
    fake = nets.generate(d["z"])
    fake_in = _critic_input(fake, d, "fake", setup, nets.video_format)
    loss = generator_loss(setup.loss, nets.score(fake_in, d["mask_fake"]))
    if nets.critic.image is not None:
        image_scores = nets.critic.image(pick_frames(fake_in, d.need("frames_fake")))
        loss = loss + setup.image.weight * generator_loss(setup.loss, image_scores)
    return loss
