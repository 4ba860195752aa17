"""Ms Pacman clips from the Atari emulator (gymnasium + ale-py, which ships the ROM).

Rollouts are seeded and deterministic: sticky actions off, and a policy whose randomness comes from
its own seeded generator. The policy holds a direction so Pacman travels the corridors, asks for a
perpendicular turn now and then (the game buffers it until the next junction) and picks a new
direction when Pacman stops against a wall. Recording starts when Pacman first moves (the intro is
skipped). The game draws one ghost per frame in a 4-frame cycle; `deflicker` merges that cycle into
each recorded frame. Episodes are cut into non-overlapping clips and near-static clips are dropped.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import numpy as np
from tqdm import tqdm

from videogan.data.config import PacmanEmulator
from videogan.data.errors import SourceError
from videogan.data.store import SPLITS
from videogan.data.video import cut_clips, motion

UP, RIGHT, LEFT, DOWN = 1, 2, 3, 4
PERPENDICULAR = {UP: (LEFT, RIGHT), DOWN: (LEFT, RIGHT), LEFT: (UP, DOWN), RIGHT: (UP, DOWN)}
PLAYER_X, PLAYER_Y = 10, 16  # RAM addresses of Pacman's position
PACMAN_RGB = (210, 164, 74)
FLICKER = 4  # frames in the ghost flicker cycle
STUCK_FRAMES = 8  # Pacman moves under a pixel per frame: this long without moving is a wall
INTRO_LIMIT = 2000  # emulator frames to wait for Pacman to start moving
MAX_BARREN = 10  # consecutive episodes without a kept clip before giving up
Transform = Callable[[np.ndarray], np.ndarray]


class TravelPolicy:
    """Hold a direction; turn perpendicular with probability p; when stuck, take another direction."""

    def __init__(self, rng: np.random.Generator, turn_probability: float):
        self.rng, self.p = rng, turn_probability
        self.direction, self.last, self.still = LEFT, None, 0

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
    policy, frames, positions, over = TravelPolicy(rng, cfg.turn_probability), [], [], False
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
    return clips[motion(clips) >= cfg.motion_threshold] if len(clips) else clips


def generate(cfg: PacmanEmulator, frames: int, seed: int, transform: Transform, progress: bool = True):
    """All three splits ({split: clips}, info); episodes of different splits use different seeds."""
    env = make_env(cfg.env_id)
    sizes = {"train": cfg.train_clips, "val": cfg.val_clips, "test": cfg.test_clips}
    splits, episodes = {}, {}
    try:
        for i, split in enumerate(SPLITS):
            splits[split], episodes[split] = _collect(env, cfg, frames, [seed, i], sizes[split], transform,
                                                      desc=f"pacman {split}", progress=progress)
    finally:
        env.close()
    return splits, {"episodes": episodes, "frame_skip": cfg.frame_skip, "crop": list(cfg.crop)}


def _collect(env, cfg: PacmanEmulator, frames: int, key: list[int], wanted: int, transform: Transform,
             desc: str, progress: bool) -> tuple[np.ndarray, int]:
    kept, have, episode, barren = [], 0, 0, 0
    with tqdm(total=wanted, desc=desc, unit="clip", leave=False, disable=not progress) as bar:
        while have < wanted:
            ep_seed = int(np.random.SeedSequence([*key, episode]).generate_state(1)[0])
            clips = episode_clips(env, cfg, frames, ep_seed, np.random.default_rng([*key, episode]))
            clips = clips[: wanted - have]
            barren = 0 if len(clips) else barren + 1
            if barren >= MAX_BARREN:
                raise SourceError(f"{MAX_BARREN} Ms Pacman episodes in a row gave no clip that moves enough; "
                                   f"lower data.pacman_emulator.motion_threshold ({cfg.motion_threshold}) or "
                                   f"raise episode_frames ({cfg.episode_frames})")
            if len(clips):
                kept.append(transform(clips))
            have, episode = have + len(clips), episode + 1
            bar.update(len(clips))
    return np.concatenate(kept), episode
