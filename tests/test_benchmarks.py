"""The GPU benchmark runs end to end (on the CPU, at a tiny size) and writes its JSON."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def test_the_gpu_benchmark_runs_on_cpu_at_a_tiny_size(tmp_path):
    out = tmp_path / "gpu.json"
    done = subprocess.run(
        [
            sys.executable,
            "benchmarks/gpu.py",
            "--device",
            "cpu",
            "--size",
            "tiny",
            "--iterations",
            "2",
            "--warmup",
            "1",
            "--no-compile",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert [r["step"] for r in report["steps"]] == ["critic", "critic+penalty", "generator"] * 2
    assert all(r["kernels"] > 0 and r["ms"] > 0 for r in report["steps"])
    assert [(r["amp"], r["compile"]) for r in report["loop"]] == [("none", False), ("bf16", False)]
    assert all(r["it_per_s"] > 0 for r in report["loop"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible")
def test_the_gpu_benchmark_says_when_there_is_no_gpu():
    done = subprocess.run([sys.executable, "benchmarks/gpu.py"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "no CUDA device is visible" in done.stderr
