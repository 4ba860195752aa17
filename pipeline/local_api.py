"""One Prefect API for all the stages of a `dvc repro` when PREFECT_API_URL is not set.

Prefect would start its own local API in every stage (`SubprocessASGIServer`): 4.4 s of a stage that
does nothing else takes 6.6 s, and a busy machine went past Prefect's 20 s wait for it. Here the first
stage starts one in the background (`python -m pipeline.local_api`), records it in
`<repo>/.videogan/prefect-api.json`, and the next stages find it there. Each stage sends it a heartbeat
while it runs; once nothing has called it for IDLE_S seconds (no stage is running), it exits by itself.
Its runs are kept where Prefect keeps its local API's (PREFECT_HOME).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from pipeline.common import QUIET_DEFAULTS, answers
from videogan.errors import UserError

STATE = ".videogan/prefect-api.json"
IDLE_S = 30.0  # no request for this long: no stage uses it any more (VIDEOGAN_LOCAL_API_IDLE_S sets it)
HEARTBEAT_S = 5.0  # how often a running stage tells it so (at most a third of its idle time)
TIMEOUT_VARIABLE = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
# What Prefect gives its own local API: no UI, no background services, this process its last app.
SERVER_ENV = {"PREFECT__SERVER_EPHEMERAL": "1", "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_FINAL": "1"}


class LocalApiError(UserError):
    """The local Prefect API did not start."""


def attach(root: Path) -> str:
    """The URL of this repository's local API, started if none answers; sets PREFECT_API_URL for this
    process and keeps the API alive while the process runs."""
    state = root / STATE
    state.parent.mkdir(parents=True, exist_ok=True)
    with _locked(state.with_suffix(".lock")):
        api = _running(state) or _start(state)
    os.environ["PREFECT_API_URL"] = api["url"]
    every = min(HEARTBEAT_S, api["idle"] / 3)
    threading.Thread(target=_heartbeat, args=(api["url"], every), daemon=True, name="prefect-api-heartbeat").start()
    return api["url"]


@contextmanager
def _locked(path: Path):
    """One stage at a time decides whether to start the API (parallel queued experiments share it)."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _running(state: Path) -> dict | None:
    """The recorded API ({url, pid, idle}) if it answers."""
    try:
        api = json.loads(state.read_text())
        api["url"], float(api["idle"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return api if answers(f"{api['url']}/health", timeout=2.0) is None else None


def _start(state: Path) -> dict:
    timeout = float(os.environ.get(TIMEOUT_VARIABLE, QUIET_DEFAULTS[TIMEOUT_VARIABLE]))
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    log = state.with_name("prefect-api.log")
    with open(log, "w") as out:
        idle = float(os.environ.get("VIDEOGAN_LOCAL_API_IDLE_S", IDLE_S))
        server = subprocess.Popen(
            [sys.executable, "-m", "pipeline.local_api", "--port", str(port), "--idle", str(idle)],
            env={**os.environ, **SERVER_ENV},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise LocalApiError(
                f"Prefect's local API exited with code {server.returncode} while starting "
                f"(its log: {log}); or start a server (`make services`) and set PREFECT_API_URL"
            )
        if answers(f"{url}/health", timeout=2.0) is None:
            api = {"url": url, "pid": server.pid, "idle": idle}
            state.write_text(json.dumps(api))
            return api
        time.sleep(0.1)
    server.kill()
    raise LocalApiError(
        f"Prefect's local API did not answer within {timeout:g} s; the machine may be busy: "
        f"raise {TIMEOUT_VARIABLE}, or start a server (`make services`) and set PREFECT_API_URL"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _heartbeat(url: str, every: float) -> None:
    while True:
        time.sleep(every)
        answers(f"{url}/health", timeout=every)


def serve(port: int, idle: float) -> None:
    """Prefect's API on 127.0.0.1:`port` until nothing has called it for `idle` seconds."""
    import uvicorn
    from prefect.server.api.server import create_app

    app = create_app()
    last_call = [time.monotonic()]

    async def noting_calls(scope, receive, send):
        last_call[0] = time.monotonic()
        await app(scope, receive, send)

    server = uvicorn.Server(uvicorn.Config(noting_calls, host="127.0.0.1", port=port, log_level="error", lifespan="on"))

    def stop_when_idle() -> None:
        while not server.should_exit:
            time.sleep(1.0)
            if not server.started:  # idle time counts from when it can first answer (migrations take a while)
                last_call[0] = time.monotonic()
            server.should_exit = time.monotonic() - last_call[0] > idle

    threading.Thread(target=stop_when_idle, daemon=True).start()
    server.run()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Prefect's API for the stages of a `dvc repro`")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--idle", type=float, default=IDLE_S, help="exit after this many seconds without a call")
    args = parser.parse_args()
    serve(args.port, args.idle)
