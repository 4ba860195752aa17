"""search.yaml: what a parameter search explores and how it judges, validated before any trial runs.

Every key under `params` is a params.yaml key with a range (`low`, `high`, `log`, `step`) or `choices`; each is
checked by building the config at its ends, so a key that does not exist or a value the config refuses is one
error line naming it. See README "Parameter search".
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from videogan.errors import ConfigError

# A searched key under these would change the data or the evaluator, i.e. the judge of every trial.
FROZEN_SECTIONS = ("data.", "evaluator.", "evaluate.")
# Metrics that the intermediate (snapshot) score cannot give: they stand in with fd_video there.
NOT_PER_SNAPSHOT = ("fvd", "fvd_init", "fvd_frames")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Range(Strict):
    """A number between `low` and `high` (integers when both are), on a log scale when `log`."""

    low: float | int
    high: float | int
    log: bool = False
    step: float | int | None = None  # a grid: low, low + step, ... (not with log)

    @model_validator(mode="after")
    def _check(self) -> "Range":
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"a log scale needs low > 0 (got {self.low})")
        if self.log and self.step is not None:
            raise ValueError("step and log cannot be used together")
        return self

    @property
    def integer(self) -> bool:
        return isinstance(self.low, int) and isinstance(self.high, int) and not isinstance(self.step, float)


class Choices(Strict):
    choices: list[Any] = Field(min_length=1)


class Objective(Strict):
    metric: str = "fd_video"  # a key of reports/metrics.json
    direction: Literal["minimize", "maximize"] = "minimize"


class Sampler(Strict):
    kind: Literal["tpe", "random"] = "tpe"
    seed: int = 0  # each worker's sampler draws from (seed, trials already in the study, worker, host)
    startup_trials: int = Field(4, ge=1)  # TPE: random points before the model proposes


class Pruner(Strict):
    """Stops a trial whose intermediate objective (the metric on `samples` videos of each training snapshot)
    falls behind the other trials' at the same step."""

    kind: Literal["median", "successive_halving", "none"] = "median"
    startup_trials: int = Field(2, ge=0)  # median: trials that run to the end before any is pruned
    warmup_steps: int = Field(0, ge=0)  # median: no pruning before this training step
    min_resource: int | Literal["auto"] = "auto"  # successive halving: the first rung, in training steps
    reduction_factor: int = Field(3, ge=2)  # successive halving: 1 / reduction_factor go on at each rung
    samples: int = Field(200, ge=20)  # generated (and real) videos scored per snapshot


class SearchSpace(Strict):
    study: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$", max_length=60)  # also the DVC experiments' prefix
    trials: int = Field(ge=1)  # finished (complete or pruned) trials the study stops at, over all workers
    objective: Objective = Objective()
    sampler: Sampler = Sampler()
    pruner: Pruner = Pruner()
    params: dict[str, Annotated[Range | Choices, Field(union_mode="left_to_right")]] = Field(min_length=1)
    fixed: dict[str, Any] = {}  # overrides every trial gets, e.g. fewer iterations than params.yaml
    storage: str | None = None  # an Optuna storage URL; None: VIDEOGAN_SEARCH_STORAGE, else a local SQLite file
    heartbeat_interval: int = Field(30, ge=1)  # seconds between a running trial's heartbeats
    heartbeat_grace: int = Field(120, ge=2)  # a trial silent this long is failed (its worker died) and retried once

    @property
    def snapshot_metric(self) -> str:
        """What the pruner reads at each snapshot: the objective's metric, or fd_video for FVD."""
        return "fd_video" if self.objective.metric in NOT_PER_SNAPSHOT else self.objective.metric


def format_value(value: Any) -> str:
    """A value as `-S key=value` writes it (YAML reads it back to the same number)."""
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    if isinstance(value, (list, dict, bool)) or value is None:
        return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
    return str(value)


def overrides(values: dict[str, Any]) -> list[str]:
    return [f"{key}={format_value(value)}" for key, value in values.items()]


def ends(space: Range | Choices) -> list[Any]:
    return list(space.choices) if isinstance(space, Choices) else [space.low, space.high]


def check_against_params(search: SearchSpace, params: Path, source: str) -> None:
    """Each searched and fixed key exists in the config and takes its ends: the first that does not, named."""
    from videogan.config import load_config
    from videogan.metrics.registry import METRICS

    if search.objective.metric not in {*METRICS, *NOT_PER_SNAPSHOT}:
        raise ConfigError(
            f"{source}: objective.metric: {search.objective.metric!r} is not a metric that evaluate writes; "
            f"one of {', '.join(sorted({*METRICS, *NOT_PER_SNAPSHOT}))}"
        )
    for key in [*search.params, *search.fixed]:
        if key.startswith(FROZEN_SECTIONS) and key in search.params:
            raise ConfigError(
                f"{source}: params.{key}: data.*, evaluator.* and evaluate.* cannot be searched: they define the "
                "data and the evaluator that judge every trial (set them in params.yaml, or under `fixed`)"
            )
    try:
        load_config(params, overrides(search.fixed))
    except ConfigError as exc:
        raise ConfigError(f"{source}: fixed: {str(exc).strip().splitlines()[-1].strip()}") from None
    for key, space in search.params.items():
        for value in ends(space):
            try:
                load_config(params, overrides({**search.fixed, key: value}))
            except ConfigError as exc:
                reason = str(exc).strip().splitlines()[-1].strip()
                raise ConfigError(f"{source}: params.{key}: {value!r} is not accepted by {params}: {reason}") from None


def load_search(path: str | Path, params: str | Path = "params.yaml") -> SearchSpace:
    """The validated search space; a ConfigError naming the key path otherwise."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: no such search file (README 'Parameter search' has an example)")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping (study, trials, objective, params, ...)")
    try:
        search = SearchSpace.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"] if not str(part).endswith(("Range", "Choices]")))
        where = where.replace("function-after[_check(), Range]", "").replace("..", ".").strip(".")
        raise ConfigError(f"{path}: {where}: {error['msg'].removeprefix('Value error, ')}") from None
    check_against_params(search, Path(params), str(path))
    return search
