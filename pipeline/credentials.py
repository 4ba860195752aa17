"""The team stack's secrets: made at the first `make services`, kept private, reused, rotated on request.

`.services/secrets.json` (mode 0600) holds the PostgreSQL password, the MLflow admin password, the
Prefect auth string and the password of the parameter search's database user; `.services/env` (0600) holds
the `export` lines a client needs, secrets included.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from videogan.files import write_atomic

MLFLOW_ADMIN = "admin"
PREFECT_USER = "videogan"
SEARCH_USER = "optuna"  # PostgreSQL user and database of the parameter search's studies (pipeline/search.py)
SECRETS_FILE = "secrets.json"
ENV_FILE = "env"
CLIENT_VARIABLES = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "PREFECT_API_URL",
    "PREFECT_API_AUTH_STRING",
    "VIDEOGAN_SEARCH_STORAGE",
)


@dataclass(frozen=True)
class Secrets:
    postgres_password: str
    mlflow_password: str
    prefect_auth_string: str  # "user:password", what Prefect's server compares with the client's
    mlflow_secret_key: str  # signs the MLflow server's CSRF tokens and sessions (servers only)
    search_password: str = ""  # the search's database user (empty in secrets made by an earlier version)

    @classmethod
    def generate(cls) -> "Secrets":
        return cls(
            secrets.token_urlsafe(24),
            secrets.token_urlsafe(24),
            f"{PREFECT_USER}:{secrets.token_urlsafe(24)}",
            secrets.token_urlsafe(32),
            secrets.token_urlsafe(24),
        )


def write_private(path: Path, text: str) -> None:
    """`text` into `path`, replaced whole, readable by its owner only from the first byte."""
    write_atomic(text.encode(), path, private=True)


def load(folder: Path) -> Secrets | None:
    path = folder / SECRETS_FILE
    return Secrets(**json.loads(path.read_text())) if path.exists() else None


def save(folder: Path, values: Secrets) -> None:
    write_private(folder / SECRETS_FILE, json.dumps(asdict(values), indent=2) + "\n")


def load_or_create(folder: Path) -> Secrets:
    """The folder's secrets; new ones the first time."""
    values = load(folder)
    if values is None:
        values = Secrets.generate()
        save(folder, values)
    elif not values.search_password:
        values = replace(values, search_password=secrets.token_urlsafe(24))
        save(folder, values)
    return values


def client_env(state: dict, values: Secrets) -> dict[str, str]:
    """What a client of the stack sets: the addresses and the credentials."""
    return {
        "MLFLOW_TRACKING_URI": state["mlflow"]["url"],
        "MLFLOW_TRACKING_USERNAME": MLFLOW_ADMIN,
        "MLFLOW_TRACKING_PASSWORD": values.mlflow_password,
        "PREFECT_API_URL": state["prefect"]["url"],
        "PREFECT_API_AUTH_STRING": values.prefect_auth_string,
        "VIDEOGAN_SEARCH_STORAGE": search_storage(state["postgres"]["url"], values.search_password),
    }


def search_storage(postgres_url: str, password: str) -> str:
    """The search's database on the stack's PostgreSQL, as its own user (not the server's superuser)."""
    host = postgres_url.split("@", 1)[1].rsplit("/", 1)[0]
    return f"postgresql+psycopg://{SEARCH_USER}:{password}@{host}/{SEARCH_USER}"


def export_lines(env: dict[str, str]) -> str:
    return "\n".join(f"export {key}={value}" for key, value in env.items())


def write_env_file(folder: Path, state: dict, values: Secrets) -> Path:
    path = folder / ENV_FILE
    write_private(path, export_lines(client_env(state, values)) + "\n")
    return path
