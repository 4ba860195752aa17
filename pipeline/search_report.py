"""A study's history in reports/search/<study>/: trials.csv; summary.json (what pruning saved); and as plots the
objective by trial, the intermediate scores (where pruning stopped trials) and the parameters' importances."""

from __future__ import annotations

import json
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
                "last_value": trial.intermediate_values[steps[-1]] if steps else None,
                "seconds": trial.duration.total_seconds() if trial.duration else None,
                **{f"params.{k}": v for k, v in trial.params.items()},
            }
        )
    return pd.DataFrame(rows)


def pruning_summary(table: pd.DataFrame) -> dict:
    """What pruning saved: trial time spent against what the pruned trials would have taken at the complete
    trials' mean duration; and how the complete trials' last intermediate score ranks against their objective."""
    complete, pruned = table[table.state == "COMPLETE"], table[table.state == "PRUNED"]
    mean_complete = float(complete.seconds.mean()) if len(complete) else float("nan")
    spent = float(table[table.state.isin(["COMPLETE", "PRUNED"])].seconds.sum())
    unpruned = spent + len(pruned) * mean_complete - float(pruned.seconds.sum())
    summary = {
        "complete": len(complete),
        "pruned": len(pruned),
        "failed": int((table.state == "FAIL").sum()),
        "pruned_at_steps": [int(s) for s in pruned.last_step.dropna()],
        "mean_complete_seconds": round(mean_complete, 1),
        "mean_pruned_seconds": round(float(pruned.seconds.mean()), 1) if len(pruned) else None,
        "trial_seconds": round(spent, 1),
        "trial_seconds_without_pruning": round(unpruned, 1) if len(complete) else None,
    }
    if len(complete) >= 3 and "last_value" in complete:
        ranked = complete[["last_value", "value"]].dropna()
        summary["spearman_last_snapshot_vs_objective"] = round(float(ranked.corr(method="spearman").iloc[0, 1]), 3)
    return summary


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
    table = trials_table(study)
    table.to_csv(folder / "trials.csv", index=False)
    if len(table):
        (folder / "summary.json").write_text(json.dumps(pruning_summary(table), indent=2) + "\n")
    save_plot(plots.plot_optimization_history, study, folder / "history.png")
    save_plot(plots.plot_intermediate_values, study, folder / "intermediate.png")
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    if len(complete) >= 2 and len(search.params) >= 2:
        save_plot(plots.plot_param_importances, study, folder / "importances.png")
    return folder
