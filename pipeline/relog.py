"""`python -m pipeline.relog`: send what the MLflow server missed of the training run in
models/checkpoint.pt (metric steps, snapshots, the checkpoint, the generator model), from the files
the run wrote. What the run already holds is not sent again, so it can be run any number of times."""

from __future__ import annotations

import sys
import time

import pandas as pd

from pipeline.common import load_params, workspace
from pipeline.tracking import RUN_ID_KEY, log_generator_model, use_store
from videogan.errors import UserError

BATCH = 1000  # MLflow's limit of metrics per log_batch


def missing_metrics(client, run_id: str, log: pd.DataFrame) -> list:
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    metrics = []
    for name in (c for c in log.columns if c != "step"):
        have = {m.step for m in client.get_metric_history(run_id, f"train/{name}")}
        metrics += [
            Metric(f"train/{name}", float(row[name]), now, int(row["step"]))
            for _, row in log.iterrows()
            if int(row["step"]) not in have and pd.notna(row[name])
        ]
    return metrics


def relog() -> list[str]:
    import mlflow
    from mlflow.tracking import MlflowClient

    from videogan.training import checkpoint as ckpt

    root, config = workspace(), load_params()
    checkpoint = root / "models/checkpoint.pt"
    run_id = ckpt.load(checkpoint, kinds=("full",)).get("extra", {}).get(RUN_ID_KEY)
    if not run_id:
        raise ckpt.CheckpointError(f"{checkpoint} names no MLflow run: it was trained without tracking")
    use_store(config)
    client, sent = MlflowClient(), []
    metrics = missing_metrics(client, run_id, pd.read_json(root / "reports/train_log.jsonl", lines=True))
    for start in range(0, len(metrics), BATCH):
        client.log_batch(run_id, metrics=metrics[start : start + BATCH])
    sent.append(f"{len(metrics)} metric values")
    for folder, files in (
        ("snapshots", sorted((root / "models/snapshots").glob("*.pt"))),
        ("checkpoint", [checkpoint]),
    ):
        have = {a.path for a in client.list_artifacts(run_id, folder)}
        new = [f for f in files if f"{folder}/{f.name}" not in have]
        for path in new:
            client.log_artifact(run_id, str(path), folder)
        sent.append(f"{len(new)} {folder} file(s)")
    if not mlflow.search_logged_models(filter_string=f"source_run_id = '{run_id}'", output_format="list"):
        log_generator_model(checkpoint, run_id)
        sent.append("the generator model")
    client.set_terminated(run_id)
    return sent


if __name__ == "__main__":
    try:
        print("relog: sent " + ", ".join(relog()))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
