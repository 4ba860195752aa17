"""The MLOps layer: one Prefect flow per DVC stage, each reporting to MLflow."""

from pipeline.common import set_quiet_defaults

set_quiet_defaults()  # before any stage imports Prefect or MLflow, which read them at import
