"""A study's history in reports/search/<study>/: trials.csv, and as plots the objective by trial, the
intermediate scores (where pruning stopped trials) and the parameters' importances."""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd

from pipeline.search_space import SearchSpace


def trials_table(study) -> pd.DataFrame:
    """One row per trial: number, state, objective, parameters, experiment, last reported step."""
    rows = []
    for trial in study.trials:
        steps = sorted(trial.intermediate_values)
        rows.append(
            {
                "trial": trial.number,
                "state": trial.state.name,
                "value": trial.value,
                "experiment": trial.user_attrs.get("experiment"),
                "last_step": steps[-1] if steps else None,
                "seconds": trial.duration.total_seconds() if trial.duration else None,
                **{f"params.{k}": v for k, v in trial.params.items()},
            }
        )
    return pd.DataFrame(rows)


def save_plot(draw, study, path: Path) -> Path | None:
    """One of optuna.visualization.matplotlib's plots into `path`; None when the study cannot give it yet."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the matplotlib backend is marked experimental
        try:
            axes = draw(study)
        except (ValueError, RuntimeError, ZeroDivisionError):
            return None
    figure = getattr(axes, "figure", None) or axes.flat[0].figure
    figure.set_size_inches(8, 5)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def write_report(study, repo: Path, search: SearchSpace) -> Path:
    from optuna.visualization import matplotlib as plots

    folder = repo / "reports" / "search" / search.study
    folder.mkdir(parents=True, exist_ok=True)
    trials_table(study).to_csv(folder / "trials.csv", index=False)
    save_plot(plots.plot_optimization_history, study, folder / "history.png")
    save_plot(plots.plot_intermediate_values, study, folder / "intermediate.png")
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    if len(complete) >= 2 and len(search.params) >= 2:
        save_plot(plots.plot_param_importances, study, folder / "importances.png")
    return folder
