"""What a stage spends starting Prefect's local API (no PREFECT_API_URL), idle and with both cores busy.

    .venv/bin/python benchmarks/stage_startup.py             # 3 starts of each kind
    .venv/bin/python benchmarks/stage_startup.py --repeats 5

Each start is a fresh process, as a stage is: `SubprocessASGIServer().start()` timed from the call to
the API's first healthy answer. "new home" is a PREFECT_HOME the server has not seen (its database is
created and migrated: a fresh clone's first stage); "warm" reuses it (every later stage). "busy" keeps
both cores on a matrix product in another process meanwhile. Wall-clock seconds, median of the repeats.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

START = """
import time
from prefect.server.api.server import SubprocessASGIServer
server = SubprocessASGIServer()
started = time.perf_counter()
server.start(timeout=600)
print(time.perf_counter() - started)
server.stop()
"""
BOTH_CORES_BUSY = "import torch\ntorch.set_num_threads(2)\na = torch.randn(1024, 1024)\nwhile True:\n    a @ a\n"


def start_seconds(home: Path) -> float:
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    done = subprocess.run([sys.executable, "-c", START], env=env, capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def measure(repeats: int) -> dict[str, float]:
    new, warm = [], []
    for _ in range(repeats):
        home = Path(tempfile.mkdtemp(prefix="prefect-home-"))
        try:
            new.append(start_seconds(home))
            warm.append(start_seconds(home))
        finally:
            shutil.rmtree(home, ignore_errors=True)
    return {"new home": statistics.median(new), "warm": statistics.median(warm)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    idle = measure(args.repeats)
    load = subprocess.Popen([sys.executable, "-c", BOTH_CORES_BUSY])
    try:
        busy = measure(args.repeats)
    finally:
        load.kill()
    print(f"{'local API start (s)':<22}{'idle':>8}{'busy':>8}{'busy/idle':>11}")
    for kind in idle:
        print(f"{kind:<22}{idle[kind]:>8.1f}{busy[kind]:>8.1f}{busy[kind] / idle[kind]:>10.1f}x")
    print(f"cpu: {os.cpu_count()} cores; Prefect waits PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS "
          "(120 s in the stages, 20 s in Prefect)")


if __name__ == "__main__":
    main()
