"""The training loop: critic bursts, generator steps, logging, snapshots, resume.

    trainer = Trainer(config, batches, OutputPaths.under("."), callbacks=[...])
    result = trainer.fit()

Started again with the same config (same training hash) it resumes from
`.videogan/resume/<hash>.pt` as long as that state's step is below
`train.iterations`; `resume_from=FILE` resumes from a chosen full checkpoint,
refusing one whose architecture differs.

An ordinary iteration never reads a tensor on the host: losses and stats stay on
the device and are read at log steps. A non-finite loss makes every later
update a no-op on the device (health.py); the loop checks that flag before it
logs or saves anything and stops there, so the last saved state stays good.
Multi-GPU: `torchrun --nproc_per_node=N -m videogan.cli train` (see distributed.py).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from videogan.config import Config, training_hash
from videogan.devices import autocast, resolve_device, to_layout
from videogan.errors import ConfigError, TrainingInterrupted
from videogan.training import checkpoint
from videogan.training.callbacks import Callback, StopTraining
from videogan.training.distributed import Rank, all_ranks_mean, average_gradients, broadcast_parameters, init_from_env
from videogan.training.ema import update_average, warmed_up_decay
from videogan.training.health import FiniteGuard, TrainingDiverged
from videogan.training.interrupt import StopRequest
from videogan.training.optim import clip_gradients, grad_norm
from videogan.training.schedule import instance_noise_sigma, run_until, scheduled_critic_steps
from videogan.training.state import TrainingState
from videogan.training.steps import (
    CriticInputs,
    Networks,
    StepSetup,
    critic_step_loss,
    draw,
    generator_step_loss,
    step_rng,
)

__all__ = ["OutputPaths", "TrainResult", "Trainer", "TrainingDiverged", "TrainingInterrupted"]


@dataclass(frozen=True)
class OutputPaths:
    checkpoint: Path
    snapshots: Path
    resume_dir: Path
    log: Path
    tensorboard: Path

    @classmethod
    def under(cls, root: str | Path) -> "OutputPaths":
        root = Path(root)
        return cls(
            root / "models/checkpoint.pt",
            root / "models/snapshots",
            root / ".videogan/resume",
            root / "reports/train_log.jsonl",
            root / "reports/tensorboard",
        )


@dataclass(frozen=True)
class TrainResult:
    step: int
    checkpoint: Path
    resumed_from: Path | None
    metrics: dict[str, float]
    stopped_early: str | None = None  # why a callback ended training before train.iterations (StopTraining)


class Trainer:
    def __init__(
        self,
        config: Config,
        batches,
        paths: OutputPaths,
        callbacks: Sequence[Callback] = (),
        data_digest: str = "",
        resume_from: str | Path | None = None,
        rank: Rank | None = None,
        say=print,
    ):
        self.config, self.batches, self.paths = config, batches, paths
        self.callbacks = list(callbacks)
        self.hash = training_hash(config, data_digest)
        self.resume_from = Path(resume_from) if resume_from else None
        self.device = resolve_device(config.train.device, "train.device")  # cuda:<LOCAL_RANK> under torchrun
        self.rank = rank or init_from_env(self.device)
        self.say = say if self.rank.is_main else (lambda *_: None)
        if config.train.batch_size % self.rank.world:
            raise ConfigError(
                f"train.batch_size {config.train.batch_size} must divide by the {self.rank.world} processes"
            )
        if self.device.type == "cuda" and config.train.tf32:
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        self.state = TrainingState.fresh(config, self.device)
        self.setup = StepSetup.of(
            self.state.generator,
            self.state.critic,
            config.train.loss,
            config.train.gp_lambda,
            config.train.augment,
            config.model.image_critic,
            config.train.r1_gamma,
        )
        self.nets = self._networks()
        self.stop_early: StopTraining | None = None
        self.guard = FiniteGuard(self.device)
        train = config.train
        self.critic_inputs = CriticInputs(
            self.nets,
            self.setup,
            train.seed,
            train.batch_size,
            (self.rank.rank, self.rank.world),
            self.device,
            train.schedule.n_critic,
            self._autocast,
        )

    @property
    def resume_path(self) -> Path:
        return self.paths.resume_dir / f"{self.hash}.pt"

    # ------------------------------------------------------------------ setup
    def _networks(self) -> Networks:
        train = self.config.train
        channels_last = train.channels_last is True or (train.channels_last == "auto" and self.device.type == "cpu")
        if channels_last and self.state.generator_ema is not None:
            to_layout(self.state.generator_ema.decoder, torch.channels_last)
        return Networks.build(self.state.generator, self.state.critic, train.compile, train.compile_mode, channels_last)

    def _autocast(self):
        return autocast(self.config.train.amp, self.device)

    def _restore(self) -> Path | None:
        iterations = self.config.train.iterations
        if self.resume_from is not None:
            state = checkpoint.load(self.resume_from, kinds=("full",))
            self.state.restore(state, self.resume_from, same_config=state.get("training_hash") == self.hash)
            return self.resume_from
        if not self.resume_path.exists():
            self.say(f"starting fresh: no resume state for this config ({self.resume_path})")
            return None
        state = checkpoint.load(self.resume_path, kinds=("full",))
        if state["step"] > iterations:
            raise checkpoint.CheckpointError(
                f"a finished run of this config is at step {state['step']} ({self.resume_path}, with its "
                f"snapshots in {self.paths.snapshots}); train.iterations={iterations} would replace it with a "
                f"shorter run. To keep it, set train.iterations to {state['step']} or more (it resumes); "
                f"to replace it, delete {self.resume_path} and rerun"
            )
        if state["step"] == iterations:
            self.say(
                f"starting fresh: the resume state is at step {state['step']}, "
                f"train.iterations={iterations}: a rerun of a finished run"
            )
            return None
        self.state.restore(state, self.resume_path, same_config=True)
        self.say(f"resuming from step {state['step']} ({self.resume_path})")
        return self.resume_path

    # ------------------------------------------------------------------- steps
    def _critic_step(
        self, real: torch.Tensor, sigma: float, want_norm: bool, planned: int
    ) -> tuple[torch.Tensor, dict]:
        s, counters, train = self.state, self.state.counters, self.config.train
        d, fake = self.critic_inputs.take(counters.critic_steps, sigma, planned)
        every = train.gp_every
        penalty_scale = float(every) if counters.critic_steps % every == 0 else 0.0
        for g in s.critic_groups:
            s.optimizers[g].zero_grad(set_to_none=True)
        with self._autocast():
            loss, stats = critic_step_loss(self.nets, real, fake, d, self.setup, penalty_scale)
        loss.backward()
        loss = all_ranks_mean(self.rank, loss.detach())
        self.guard.observe(loss, "critic", counters.step)
        for g in s.critic_groups:
            params = s.params(g)
            average_gradients(params, self.rank)
            if want_norm:
                stats[f"grad_norm_{g}"] = grad_norm(params)
            clip_gradients(params, train.clip.critic, train.clip.mode)
            self._optimizer_step(g)
        counters.critic_steps += 1
        return loss, stats

    def _generator_step(self, sigma: float, want_norm: bool) -> tuple[torch.Tensor, dict]:
        s, counters, train = self.state, self.state.counters, self.config.train
        gen = step_rng(train.seed, "generator", counters.generator_steps, self.device)
        d = draw(self.setup, train.batch_size, sigma, gen, critic_step=False)
        d = d.shard(self.rank.rank, self.rank.world)
        for g in ("decoder", "lstm"):
            s.optimizers[g].zero_grad(set_to_none=True)
        s.critic.requires_grad_(False)
        try:
            with self._autocast():
                loss = generator_step_loss(self.nets, d, self.setup)
            loss.backward()
        finally:
            s.critic.requires_grad_(True)
        loss = all_ranks_mean(self.rank, loss.detach())
        self.guard.observe(loss, "generator", counters.step)
        stats = {}
        for g in ("decoder", "lstm"):
            params = s.params(g)
            average_gradients(params, self.rank)
            if want_norm:
                stats[f"grad_norm_{g}"] = grad_norm(params)
            clip_gradients(params, getattr(train.clip, g), train.clip.mode)
            self._optimizer_step(g)
        if s.generator_ema is not None:
            update_average(
                s.generator_ema,
                s.generator,
                warmed_up_decay(train.ema_decay or 0.0, counters.generator_steps),
                keep=self.guard.keep_weight(),
            )
        counters.generator_steps += 1
        return loss, stats

    def _optimizer_step(self, group: str) -> None:
        """The update, skipped on the device once a loss was not finite."""
        optimizer = self.state.optimizers[group]
        optimizer.found_inf = self.guard.found_inf  # type: ignore[attr-defined]  # read by fused optimisers
        optimizer.step()

    def _check_health(self) -> None:
        self.guard.check(self.resume_path)

    def _iteration(self, stream, want_log: bool) -> dict[str, float]:
        step, sched = self.state.counters.step, self.config.train.schedule
        sigma = instance_noise_sigma(self.config.train.instance_noise, step)
        collected: list[dict] = []

        planned = scheduled_critic_steps(sched, step)

        def critic_once(i: int) -> torch.Tensor:
            real = next(stream).to(self.device, non_blocking=True)
            real = real.chunk(self.rank.world)[self.rank.rank]
            loss, stats = self._critic_step(real, sigma, want_norm=want_log, planned=planned - i)
            collected.append(stats)
            return loss

        def generator_once(i: int) -> torch.Tensor:
            loss, stats = self._generator_step(sigma, want_norm=want_log)
            collected.append(stats)
            return loss

        critic = run_until(critic_once, planned, sched.critic_threshold, sched.critic_max_steps)
        self.critic_inputs.clear()
        generator = run_until(generator_once, 1, sched.generator_threshold, sched.generator_max_steps)
        for s in self.state.schedulers.values():
            s.step()
        self.state.counters.step += 1
        if not want_log:
            return {}
        return self._summarise(critic, generator, collected, sigma)

    def _summarise(self, critic, generator, collected: list[dict], sigma: float) -> dict[str, float]:
        metrics = {
            "loss_critic": float(critic.last_loss),
            "loss_generator": float(generator.last_loss),
            "critic_steps": critic.steps,
            "generator_steps": generator.steps,
            "sigma": sigma,
        }
        for key in (
            "wasserstein",
            "gradient_penalty",
            "r1_penalty",
            "wasserstein_image",
            "gradient_penalty_image",
            "r1_penalty_image",
        ):
            values = [float(c[key]) for c in collected if key in c]
            if values:
                metrics[key] = sum(values) / len(values)
        for c in collected:
            metrics.update({k: v for k, v in c.items() if k.startswith("grad_norm")})
        for g in self.state.optimizers:
            metrics[f"lr_{g}"] = self.state.optimizers[g].param_groups[0]["lr"]
        return metrics

    # --------------------------------------------------------------- outputs
    def _emit(self, hook: str, *args) -> None:
        if self.rank.is_main:
            for cb in self.callbacks:
                try:
                    getattr(cb, hook)(*args)
                except StopTraining as stop:
                    if self.rank.distributed:
                        raise ConfigError(f"a callback asked to stop training under torchrun ({stop.reason})")
                    self.stop_early = self.stop_early or stop

    def _save_snapshot(self) -> None:
        step = self.state.counters.step
        path = self.paths.snapshots / f"step_{step:07d}.pt"
        checkpoint.save_atomic(self.state.generator_state(), path)
        self._emit("on_snapshot", step, path)

    @torch.no_grad()
    def _emit_videos(self) -> None:
        g = self.state.sampling_generator
        noise = g.sample_noise(8, torch.Generator().manual_seed(self.config.train.seed), self.device)
        self._emit("on_videos", self.state.counters.step, g(noise).cpu())

    def _periodic_outputs(self) -> None:
        step, train = self.state.counters.step, self.config.train
        snapshot, resume, videos = (
            step % every == 0 for every in (train.snapshot_every, train.resume_every, train.video_every)
        )
        if snapshot or resume or videos:
            self._check_health()  # every rank: they all hold the same flag
        if not self.rank.is_main:
            return
        if snapshot:
            self._save_snapshot()
        if resume:
            checkpoint.save_atomic(self.state.full_state(self.hash), self.resume_path)
        if videos:
            self._emit_videos()

    def _videos_seen(self) -> int:
        """Generated videos so far: one batch per critic step and per generator step."""
        c = self.state.counters
        return (c.critic_steps + c.generator_steps) * self.config.train.batch_size

    def _stop_for(self, signum: int) -> None:
        """Save the resume state of the step just finished, then raise TrainingInterrupted."""
        self._check_health()
        if self.rank.is_main:
            checkpoint.save_atomic(self.state.full_state(self.hash), self.resume_path)
        raise TrainingInterrupted(signum, self.state.counters.step, self.resume_path)

    # ------------------------------------------------------------------- run
    def fit(self) -> TrainResult:
        resumed = self._restore()
        self.state.extra.pop("stopped_early", None)  # a resumed run goes on to train.iterations
        for module in (self.state.generator, self.state.critic, self.state.generator_ema):
            if module is not None:
                broadcast_parameters(module, self.rank)
        counters, train = self.state.counters, self.config.train
        self._emit(
            "on_train_start",
            {
                "config": self.config,
                "start_step": counters.step,
                "iterations": train.iterations,
                "resumed": resumed is not None,
                "training_hash": self.hash,
                "extra": self.state.extra,
            },
        )
        try:
            metrics = self._train(fresh=resumed is None)
        except BaseException as exc:
            self._emit("on_train_stop", exc)
            raise
        self._emit("on_train_end", self.paths.checkpoint, metrics)
        reason = self.stop_early.reason if self.stop_early else None
        return TrainResult(counters.step, self.paths.checkpoint, resumed, metrics, reason)

    def _train(self, fresh: bool) -> dict[str, float]:
        """From the restored step to train.iterations; the final checkpoint; the last logged metrics."""
        counters, train = self.state.counters, self.config.train
        if fresh and self.rank.is_main:
            for stale in self.paths.snapshots.glob("step_*.pt"):  # from an earlier run of another config
                stale.unlink()
            self._save_snapshot()
            self._emit_videos()
        stream = self.batches.stream(start=counters.critic_steps, device=self.device)
        metrics: dict[str, float] = {}
        tick, done_at_tick, videos_at_tick = time.perf_counter(), counters.step, self._videos_seen()
        # Under torchrun every rank would have to agree on when to stop: signals act as usual there.
        with StopRequest().listening(enabled=not self.rank.distributed) as stop:
            while counters.step < train.iterations and stop.signum is None and self.stop_early is None:
                want_log = (counters.step + 1) % train.log_every == 0 or counters.step + 1 == train.iterations
                logged = self._iteration(stream, want_log)
                if want_log:
                    self._check_health()
                    elapsed = time.perf_counter() - tick
                    metrics = {
                        **logged,
                        "it_per_s": (counters.step - done_at_tick) / elapsed,
                        "videos_per_s": (self._videos_seen() - videos_at_tick) / elapsed,
                    }
                    self._emit("on_log", counters.step, metrics)
                    tick, done_at_tick, videos_at_tick = time.perf_counter(), counters.step, self._videos_seen()
                self._periodic_outputs()
            if stop.signum is not None:
                self._stop_for(stop.signum)
        self._check_health()
        if self.stop_early is not None:
            self.state.extra["stopped_early"] = {"step": counters.step, "reason": self.stop_early.reason}
            self.say(f"stopped early at step {counters.step}: {self.stop_early.reason}")
        if self.rank.is_main:
            full = self.state.full_state(self.hash)
            checkpoint.save_atomic(full, self.paths.checkpoint)
            checkpoint.save_atomic(full, self.resume_path)
        return metrics
