"""Ms Pacman clips from the Atari emulator (gymnasium + ale-py, which ships the ROM).

Rollouts are seeded and deterministic: sticky actions off, and a policy whose randomness comes from
its own seeded generator. The policy holds a direction so Pacman travels the corridors, asks for a
perpendicular turn now and then (the game buffers it until the next junction) and picks a new
direction when Pacman stops against a wall. Recording starts when Pacman first moves (the intro is
skipped). The game draws one ghost per frame in a 4-frame cycle; `deflicker` merges that cycle into
each recorded frame. Episodes are cut into non-overlapping clips, optionally windowed around Pacman
(`pacman_view`), and near-static clips are dropped.
"""

from __future__ import annotations

import itertools
import os
from collections import deque
from collections.abc import Callable

import numpy as np
from tqdm import tqdm

from videogan.data.config import PacmanEmulator
from videogan.data.errors import SourceError
from videogan.data.pacman_view import PACMAN_RGB, follow_pacman
from videogan.data.store import SPLITS
from videogan.data.video import cut_clips, motion

UP, RIGHT, LEFT, DOWN = 1, 2, 3, 4
PERPENDICULAR = {UP: (LEFT, RIGHT), DOWN: (LEFT, RIGHT), LEFT: (UP, DOWN), RIGHT: (UP, DOWN)}
PLAYER_X, PLAYER_Y = 10, 16  # RAM addresses of Pacman's position
FLICKER = 4  # frames in the ghost flicker cycle
STUCK_FRAMES = 8  # Pacman moves under a pixel per frame: this long without moving is a wall
INTRO_LIMIT = 2000  # emulator frames to wait for Pacman to start moving
MAX_BARREN = 10  # consecutive episodes without a kept clip before giving up
Transform = Callable[[np.ndarray], np.ndarray]


class TravelPolicy:
    """Hold a direction; turn perpendicular with probability p; when stuck, take another direction."""

    def __init__(self, rng: np.random.Generator, turn_probability: float):
        self.rng, self.p = rng, turn_probability
        self.direction, self.still = LEFT, 0
        self.last: tuple[int, int] | None = None

    def act(self, position: tuple[int, int], elapsed: int) -> int:
        """Next action, given Pacman's position and the emulator frames since the last call."""
        self.still = self.still + elapsed if position == self.last else 0
        self.last = position
        if self.still >= STUCK_FRAMES:
            self.direction = int(self.rng.choice([d for d in (UP, RIGHT, LEFT, DOWN) if d != self.direction]))
            self.still = 0
        elif self.rng.random() < self.p:
            self.direction = int(self.rng.choice(PERPENDICULAR[self.direction]))
        return self.direction


def make_env(env_id: str):
    import ale_py
    import gymnasium as gym

    gym.register_envs(ale_py)
    return gym.make(env_id, frameskip=1, repeat_action_probability=0.0, obs_type="rgb", full_action_space=False)


def deflicker(frames: list[np.ndarray]) -> np.ndarray:
    """The last frame, with background pixels filled from earlier frames' sprites (not Pacman's trail)."""
    out = frames[-1].copy()
    packed = _pack(out)
    values, counts = np.unique(packed[::3, ::3], return_counts=True)
    background = values[counts.argmax()]
    empty = packed == background
    pacman = _pack(np.array(PACMAN_RGB, np.uint8))
    for earlier in reversed(frames[:-1]):
        code = _pack(earlier)
        fill = empty & (code != background) & (code != pacman)
        out[fill] = earlier[fill]
        empty &= ~fill
    return out


def _pack(rgb: np.ndarray) -> np.ndarray:
    return (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]


def rollout(env, cfg: PacmanEmulator, seed: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One episode: recorded frames uint8 (L, h, w, 3) cropped to cfg.crop, Pacman's RAM (x, y) (L, 2)."""
    top, bottom, left, right = cfg.crop
    obs, _ = env.reset(seed=seed)
    ale = env.unwrapped.ale
    where = lambda: (int(ale.getRAM()[PLAYER_X]), int(ale.getRAM()[PLAYER_Y]))  # noqa: E731
    crop = lambda screen: screen[top:bottom, left:right]  # noqa: E731
    start, recent = where(), deque([crop(obs)], maxlen=FLICKER)
    for _ in range(INTRO_LIMIT):
        if where() != start:
            break
        obs, *_ = env.step(LEFT)
        recent.append(crop(obs))
    policy, over = TravelPolicy(rng, cfg.turn_probability), False
    frames: list[np.ndarray] = []
    positions: list = []
    while len(frames) < cfg.episode_frames and not over:
        action = policy.act(where(), cfg.frame_skip)
        for _ in range(cfg.frame_skip):
            obs, _, terminated, truncated, _ = env.step(action)
            recent.append(crop(obs))
            if over := terminated or truncated:
                break
        frames.append(deflicker(list(recent)) if cfg.deflicker else recent[-1])
        positions.append(where())
    return np.stack(frames), np.array(positions)


def episode_clips(env, cfg: PacmanEmulator, frames: int, seed: int, rng: np.random.Generator) -> np.ndarray:
    """The episode's non-overlapping clips of `frames` frames that move enough."""
    clips = cut_clips(rollout(env, cfg, seed, rng)[0], frames)
    if cfg.window is not None and len(clips):
        clips = follow_pacman(clips, cfg.window)
    return clips[motion(clips) >= cfg.motion_threshold] if len(clips) else clips


def generate(cfg: PacmanEmulator, frames: int, seed: int, transform: Transform, progress: bool = True):
    """All three splits ({split: clips}, info); episodes of different splits use different seeds.
    Episodes run in `cfg.workers` processes and are taken in episode order: the clips are the same
    for any number of workers."""
    sizes = {"train": cfg.train_clips, "val": cfg.val_clips, "test": cfg.test_clips}
    splits, episodes = {}, {}
    with EpisodeRunner(cfg, frames, transform, worker_count(cfg)) as runner:
        for i, split in enumerate(SPLITS):
            splits[split], episodes[split] = _collect(
                runner, cfg, [seed, i], sizes[split], desc=f"pacman {split}", progress=progress
            )
    return splits, {"episodes": episodes, "frame_skip": cfg.frame_skip, "crop": list(cfg.crop), "window": cfg.window}


def worker_count(cfg: PacmanEmulator) -> int:
    return cfg.workers or len(os.sched_getaffinity(0))


def episode_seed(key: list[int], episode: int) -> int:
    return int(np.random.SeedSequence([*key, episode]).generate_state(1)[0])


_worker_env = None


def _start_worker(env_id: str) -> None:
    global _worker_env
    import torch

    torch.set_num_threads(1)  # one core per emulator process
    _worker_env = make_env(env_id)


def _episode_in_worker(cfg: PacmanEmulator, frames: int, transform: Transform, key: list[int], episode: int):
    return _episode(_worker_env, cfg, frames, transform, key, episode)


def _episode(env, cfg: PacmanEmulator, frames: int, transform: Transform, key: list[int], episode: int):
    """Episode `episode` of the split keyed `key`: its kept clips, transformed (possibly none)."""
    clips = episode_clips(env, cfg, frames, episode_seed(key, episode), np.random.default_rng([*key, episode]))
    return transform(clips) if len(clips) else None


class EpisodeRunner:
    """Episodes of a split in order, computed `workers` at a time (one emulator per process)."""

    def __init__(self, cfg: PacmanEmulator, frames: int, transform: Transform, workers: int):
        self.cfg, self.frames, self.transform, self.workers = cfg, frames, transform, workers
        self.env, self.pool = None, None

    def __enter__(self):
        if self.workers == 1:
            self.env = make_env(self.cfg.env_id)
        else:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self.pool = ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
                initargs=(self.cfg.env_id,),
            )
        return self

    def __exit__(self, *exc) -> None:
        if self.env is not None:
            self.env.close()
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)

    def episodes(self, key: list[int], wanted: int):
        """(episode, clips or None) for episode 0, 1, 2, ... of the split keyed `key`, in order.
        Episodes run ahead only while the clips expected from them (the mean so far) fall short of
        `wanted`: a split's last episodes are not computed in vain. What runs ahead never changes what
        comes out, which is always the same episodes in the same order."""
        if self.pool is None:
            yield from (
                (e, _episode(self.env, self.cfg, self.frames, self.transform, key, e)) for e in itertools.count()
            )
            return
        ahead, upcoming, have = deque(), itertools.count(), 0
        per_episode = self.cfg.episode_frames // self.frames  # optimistic until episodes come back
        try:
            for episode in itertools.count():
                while len(ahead) < self.workers and have + len(ahead) * per_episode < wanted:
                    ahead.append(
                        self.pool.submit(_episode_in_worker, self.cfg, self.frames, self.transform, key, next(upcoming))
                    )
                if not ahead:
                    ahead.append(
                        self.pool.submit(_episode_in_worker, self.cfg, self.frames, self.transform, key, next(upcoming))
                    )
                clips = ahead.popleft().result()
                have += 0 if clips is None else len(clips)
                per_episode = max(1, have // (episode + 1))
                yield episode, clips
        finally:
            for future in ahead:
                future.cancel()


def _collect(
    runner: EpisodeRunner, cfg: PacmanEmulator, key: list[int], wanted: int, desc: str, progress: bool
) -> tuple[np.ndarray, int]:
    kept, have, barren = [], 0, 0
    with tqdm(total=wanted, desc=desc, unit="clip", leave=False, disable=not progress) as bar:
        for episode, clips in runner.episodes(key, wanted):
            clips = clips[: wanted - have] if clips is not None else None
            barren = 0 if clips is not None and len(clips) else barren + 1
            if barren >= MAX_BARREN:
                raise SourceError(
                    f"{MAX_BARREN} Ms Pacman episodes in a row gave no clip that moves enough; "
                    f"lower data.pacman_emulator.motion_threshold ({cfg.motion_threshold}) or "
                    f"raise episode_frames ({cfg.episode_frames})"
                )
            if clips is not None and len(clips):
                kept.append(clips)
                have += len(clips)
                bar.update(len(clips))
            if have >= wanted:
                return np.concatenate(kept), episode + 1
    raise AssertionError("unreachable")
