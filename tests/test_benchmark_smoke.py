"""The speed benchmark must keep running: a tiny, quick run of benchmarks/bench_step.py."""

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_step.py"


def test_bench_step_quick_run():
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--batch", "8", "--no-torch", "--threads", "1"],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    for expected in ("52,189 parameters", "training step: forward + loss + backward",
                     "forward only", "Adam update", "GFLOP per step", "peak resident memory",
                     "Scenario 2: one epoch"):
        assert expected in out, f"missing {expected!r} in:\n{out}"
