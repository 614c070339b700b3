"""Peak memory of the flagship network: a training step, and an evaluation-mode forward pass.

    python benchmarks/peak_memory.py                     # chunks as minisc runs them by default
    python benchmarks/peak_memory.py --mode threads      # chunks in threads of one process
    python benchmarks/peak_memory.py --threads 1         # no chunks: everything in one process

Each scenario runs in a fresh process of its own, so one scenario's peak cannot hide another's:
- train: three training steps (forward, loss, backward) of the flagship `scs` at batch 128;
- eval:  one forward pass of 2,048 images in evaluation mode (model.eval()), which keeps no
         backward caches and goes through in chunks of Sequential's EVAL_CHUNK images.
Inputs are random MNIST-like images (zeros where a uniform draw is below 0.5); memory does not
depend on the values.

Printed for each: the peak resident memory (VmHWM, the "high water mark" Linux keeps per process)
of the main process and of each worker process that ran batch chunks (minisc/parallel.py), and
their sum. The sum counts the pages of shared libraries (NumPy, OpenBLAS) once per process, so it
is an upper bound of what the machine had to give. The targets (issue "Speed, round two") are
under 300 MB for the training step and under 400 MB for the forward pass. Linux only (/proc).
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS_MB = {"train": 300, "eval": 400}

CHILD = r"""
import json, os, sys
sys.path.insert(0, sys.argv[1])
import numpy as np
from minisc import parallel
from minisc.losses import SoftmaxCrossEntropy
from minisc.models import build_model

def peak_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM in /proc/{pid}/status")

scenario = sys.argv[2]
model = build_model("scs", rng=0)
rng = np.random.default_rng(0)
if scenario == "train":
    x = rng.random((128, 1, 28, 28), dtype=np.float32)
    x[x < 0.5] = 0.0
    y = np.arange(128) % 10
    loss = SoftmaxCrossEntropy()
    for _ in range(3):
        loss.forward(model.forward(x), y)
        model.backward(loss.backward())
else:
    x = rng.random((2048, 1, 28, 28), dtype=np.float32)
    x[x < 0.5] = 0.0
    model.eval()
    model.forward(x)
workers = parallel._workers or []     # minisc's running worker processes (none in threads or alone)
print(json.dumps(dict(main=peak_mb(os.getpid()), workers=[peak_mb(w.proc.pid) for w in workers],
                      threads=parallel.get_num_threads(), mode=parallel.get_parallel_mode())))
"""


def measure(scenario, env):
    done = subprocess.run([sys.executable, "-c", CHILD, str(ROOT), scenario], env=env,
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise SystemExit(f"peak_memory.py: the {scenario} scenario failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=None,
                    help="BLAS threads and batch chunks (default: every CPU this process may use)")
    ap.add_argument("--mode", choices=("processes", "threads"), default=None,
                    help="where the chunks run (default: minisc's, processes on Linux)")
    args = ap.parse_args(argv)
    if not Path("/proc/self/status").exists():
        raise SystemExit("peak_memory.py reads /proc/<pid>/status, which only Linux has")
    env = dict(os.environ)
    if args.threads is not None:
        if args.threads < 1:
            ap.error("--threads must be >= 1")
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "MINISC_NUM_THREADS"):
            env[var] = str(args.threads)
    if args.mode is not None:
        env["MINISC_PARALLEL"] = args.mode
    names = {"train": "flagship training step, batch 128",
             "eval": "flagship forward of 2,048 images, evaluation mode"}
    for scenario in ("train", "eval"):
        r = measure(scenario, env)
        total = r["main"] + sum(r["workers"])
        parts = " + ".join(f"{mb:.0f}" for mb in [r["main"]] + r["workers"])
        where = (f"{r['threads']} chunk(s) in {r['mode']}" if r["threads"] > 1 else "one process")
        verdict = "met" if total < TARGETS_MB[scenario] else "missed"
        print(f"{names[scenario]:52s} {total:5.0f} MB  (main + workers: {parts}; {where}); "
              f"target < {TARGETS_MB[scenario]} MB: {verdict}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
