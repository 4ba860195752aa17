"""Evaluation without downloaded weights: an evaluator network fitted on the real clips, and metrics.

    config.py     the `evaluator:` and `evaluate:` params
    network.py    the evaluator (frame encoder, digit classifier, temporal encoder)
    tasks.py      what it learns from (frame order; which digits a frame shows)
    fit.py        deterministic fitting and its held-out accuracy
    artifact.py   models/evaluator.pt and its version
    features.py   what the metrics read from one clip array
    distances.py  Frechet, kernel, precision/recall/density/coverage
    modes.py      digit sets (the modes of a labelled source)
    registry.py   the metrics, by name
    scoring.py    real halves, references, metrics.json
    run.py        the same on the clip store and a checkpoint (what the CLI and pipeline call)
    commands.py   `videogan fit-evaluator`, `evaluate`, `render`

Only config.py is imported here: videogan.config imports it, so this package stays light.
"""
