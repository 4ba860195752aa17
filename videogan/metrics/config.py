"""Typed settings of the evaluator network (`evaluator:`) and of evaluation (`evaluate:`)."""

from pydantic import Field

from videogan.strict import Strict


class EvaluatorConfig(Strict):
    seed: int = 0


class EvaluateConfig(Strict):
    num_samples: int = Field(1000, ge=2)  # generated videos scored (and real test videos per half)
    seed: int = 0  # noise seed of the scored samples
