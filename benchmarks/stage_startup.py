"""What a stage spends on Prefect (no PREFECT_API_URL), idle and with both cores busy.

    .venv/bin/python benchmarks/stage_startup.py             # 3 of each
    .venv/bin/python benchmarks/stage_startup.py --repeats 5

"API start": Prefect's own local API (`SubprocessASGIServer().start()`, what Prefect would start in every
stage), in a fresh process, from the call to its first healthy answer; "new home" is a PREFECT_HOME it
has not seen (its database is created and migrated), "warm" reuses it. "stage": the whole of a stage
that does nothing else (`python -m pipeline.download` on the offline source), the first of a run (it
starts the shared local API, pipeline/local_api.py) and the next (it finds it running). "busy" keeps
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
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
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


def stage_seconds(folder: Path) -> float:
    env = {
        **os.environ,
        "PREFECT_HOME": str(folder / ".prefect"),
        "PYTHONPATH": str(ROOT),
        "VIDEOGAN_LOCAL_API_IDLE_S": "5",
    }
    env.pop("PREFECT_API_URL", None)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pipeline.download"], cwd=folder, env=env, capture_output=True, check=True)
    return time.perf_counter() - started


def measure(repeats: int) -> dict[str, float]:
    times: dict[str, list[float]] = {
        "API start, new home": [],
        "API start, warm": [],
        "stage, first of a run": [],
        "stage, next": [],
    }
    for _ in range(repeats):
        folder = Path(tempfile.mkdtemp(prefix="videogan-stage-"))
        try:
            times["API start, new home"].append(start_seconds(folder / "home"))
            times["API start, warm"].append(start_seconds(folder / "home"))
            for name in ("dvc.yaml", "params.yaml"):
                shutil.copy(ROOT / name, folder / name)
            times["stage, first of a run"].append(stage_seconds(folder))
            times["stage, next"].append(stage_seconds(folder))
            time.sleep(6)  # the local API ends when idle
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return {kind: statistics.median(values) for kind, values in times.items()}


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
    print(f"{'seconds':<24}{'idle':>8}{'busy':>8}{'busy/idle':>11}")
    for kind in idle:
        print(f"{kind:<24}{idle[kind]:>8.1f}{busy[kind]:>8.1f}{busy[kind] / idle[kind]:>10.1f}x")
    print(
        f"cpu: {os.cpu_count()} cores; Prefect waits PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS "
        "(120 s in the stages, 20 s in Prefect)"
    )


if __name__ == "__main__":
    main()
