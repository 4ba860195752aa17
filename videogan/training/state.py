"""Everything a training run is made of, and its conversion to and from checkpoint dicts."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from videogan.config import Config, OptimizerConfig, architecture, config_from_dict, to_dict
from videogan.models import Critic, VideoGenerator, build_critic, build_generator
from videogan.training import checkpoint
from videogan.training.ema import averaged_copy
from videogan.training.optim import build_optimizer, build_scheduler

CRITIC_GROUPS = ("critic", "image_critic")  # the optimisers of a critic step


@dataclass
class Counters:
    step: int = 0  # generator iterations done
    critic_steps: int = 0  # critic steps taken (= real batches consumed)
    generator_steps: int = 0


@dataclass
class TrainingState:
    config: Config
    generator: VideoGenerator
    critic: Critic
    optimizers: dict[str, torch.optim.Optimizer]
    schedulers: dict[str, torch.optim.lr_scheduler.ExponentialLR]
    counters: Counters = field(default_factory=Counters)
    generator_ema: VideoGenerator | None = None  # train.ema_decay's running average; None when it is null
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. the tracking run id

    @classmethod
    def fresh(cls, config: Config, device: torch.device) -> "TrainingState":
        generator = build_generator(config).to(device)
        critic = build_critic(config).to(device)
        groups: dict[str, list[torch.nn.Parameter]] = {
            "critic": critic.video_parameters(),
            "decoder": generator.decoder_parameters(),
            "lstm": generator.lstm_parameters(),
        }
        if critic.image is not None:
            groups["image_critic"] = list(critic.image.parameters())
        settings: dict[str, OptimizerConfig] = {g: getattr(config.train.optim, g) for g in groups}
        optimizers = {g: build_optimizer(groups[g], settings[g]) for g in groups}
        schedulers = {g: build_scheduler(optimizers[g], settings[g]) for g in groups}
        ema = averaged_copy(generator) if config.train.ema_decay is not None else None
        return cls(config, generator, critic, optimizers, schedulers, generator_ema=ema)

    @property
    def sampling_generator(self) -> VideoGenerator:
        """The weights to sample from: the moving average when there is one."""
        return self.generator if self.generator_ema is None else self.generator_ema

    def params(self, group: str) -> list[torch.nn.Parameter]:
        return [p for pg in self.optimizers[group].param_groups for p in pg["params"]]

    @property
    def critic_groups(self) -> list[str]:
        """The optimisers a critic step updates: the video critic's, and the image critic's when there is one."""
        return [g for g in CRITIC_GROUPS if g in self.optimizers]

    # ------------------------------------------------------------ to / from disk
    def full_state(self, training_hash: str) -> dict[str, Any]:
        return {
            "format": checkpoint.FORMAT,
            "kind": "full",
            "config": to_dict(self.config),
            "training_hash": training_hash,
            "step": self.counters.step,
            "batches": self.counters.critic_steps,
            "generator_steps": self.counters.generator_steps,
            "generator": self.generator.state_dict(),
            **({} if self.generator_ema is None else {"generator_ema": self.generator_ema.state_dict()}),
            "critic": self.critic.state_dict(),
            "optimizers": {g: o.state_dict() for g, o in self.optimizers.items()},
            "schedulers": {g: s.state_dict() for g, s in self.schedulers.items()},
            "extra": dict(self.extra),
        }

    def generator_state(self) -> dict[str, Any]:
        return {
            "format": checkpoint.FORMAT,
            "kind": "generator",
            "config": to_dict(self.config),
            "step": self.counters.step,
            "generator": self.sampling_generator.state_dict(),
        }

    def restore(self, state: dict[str, Any], source: Path, same_config: bool) -> None:
        """Load a full state into this run. Refuses a different architecture, naming the keys.
        When the config differs in other ways (an explicit --resume), the new settings win."""
        saved = config_from_dict(state["config"], f"{source} (saved config)")
        diff = checkpoint.architecture_diff(architecture(saved), architecture(self.config))
        if diff:
            raise checkpoint.CheckpointError(
                f"cannot resume from {source}: its architecture differs from the config:\n  "
                + "\n  ".join(diff)
                + "\nuse the saved settings or train from scratch"
            )
        self.generator.load_state_dict(state["generator"])
        if self.generator_ema is not None:  # a state saved without an average starts it from its weights
            self.generator_ema.load_state_dict(state.get("generator_ema", state["generator"]))
        self.critic.load_state_dict(state["critic"])
        for g in self.optimizers:
            self.optimizers[g].load_state_dict(state["optimizers"][g])
            self.schedulers[g].load_state_dict(state["schedulers"][g])
        if not same_config:
            self._apply_configured_learning_rates(state["step"])
        self.counters = Counters(state["step"], state["batches"], state["generator_steps"])
        self.extra = dict(state.get("extra", {}))

    def _apply_configured_learning_rates(self, step: int) -> None:
        for g in self.optimizers:
            cfg: OptimizerConfig = getattr(self.config.train.optim, g)
            lr = cfg.lr * (cfg.lr_decay or 1.0) ** step
            for pg in self.optimizers[g].param_groups:
                pg["lr"], pg["initial_lr"] = lr, cfg.lr
            self.schedulers[g].base_lrs = [cfg.lr]
            self.schedulers[g].gamma = cfg.lr_decay or 1.0
