"""Time a training step of minisc at two commits, side by side in one run.

    python benchmarks/ab_step.py 1b9711d              # that commit against the working tree
    python benchmarks/ab_step.py OLD NEW --model scs --batch 64 --rounds 8
    python benchmarks/ab_step.py OLD --model fashion-2764 --batch 100 --fold-pools

Each commit is checked out into a temporary folder (``git worktree``); then, round after
round, one fresh process per commit builds the same model from the same seed, warms up, and
times ``--steps`` training steps (forward, loss, backward; no optimizer). The two alternate, so
whatever else the machine does slows both alike. Printed: each round's medians, then the
median over rounds of each side and their ratio. Run it with nothing else running.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, statistics, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np
from minisc.losses import SoftmaxCrossEntropy
from minisc.models import build_model
model_name, batch, steps, fold = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1"
model = build_model(model_name, rng=0)
if fold:
    from minisc.models import fold_pools
    model = fold_pools(model)
loss_fn = SoftmaxCrossEntropy()
x = np.random.default_rng(0).random((batch, 1, 28, 28)).astype(np.float32)
x[x < 0.5] = 0.0                                   # MNIST-like blank background
y = np.arange(batch) % 10
times = []
for i in range(steps + 3):
    t = time.perf_counter()
    loss_fn.forward(model.forward(x), y)
    model.backward(loss_fn.backward())
    if i >= 3:
        times.append(time.perf_counter() - t)
print(json.dumps({"median_ms": 1000 * statistics.median(times)}))
"""


def checkout(rev, where):
    if rev is None:
        return ROOT
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(where), rev],
                   check=True, capture_output=True)
    return where


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("old", help="a commit (hash, tag, branch)")
    ap.add_argument("new", nargs="?", default=None, help="a commit; default: the working tree")
    ap.add_argument("--model", default="reference")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=15, help="timed steps per process")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2,
                    help="BLAS threads and minisc batch-chunk threads of every process")
    ap.add_argument("--fold-pools", action="store_true",
                    help="time the model with its pools folded into the SCS layers (minisc.models.fold_pools)")
    args = ap.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="minisc-ab-"))
    trees = {}
    try:
        trees["old"] = checkout(args.old, tmp / "old")
        trees["new"] = checkout(args.new, tmp / "new")
        env = dict(os.environ, OPENBLAS_NUM_THREADS=str(args.threads), OMP_NUM_THREADS=str(args.threads),
                   MINISC_NUM_THREADS=str(args.threads))
        results = {"old": [], "new": []}
        for r in range(args.rounds):
            for side in ("old", "new") if r % 2 == 0 else ("new", "old"):
                out = subprocess.run([sys.executable, "-c", CHILD, str(trees[side]), args.model,
                                      str(args.batch), str(args.steps), "1" if args.fold_pools else "0"],
                                     check=True, capture_output=True, text=True, env=env)
                results[side].append(json.loads(out.stdout)["median_ms"])
            print(f"round {r + 1}: old {results['old'][-1]:.1f} ms   new {results['new'][-1]:.1f} ms",
                  flush=True)
        old, new = (statistics.median(results[s]) for s in ("old", "new"))
        print(f"\n{args.model}{', pools folded' if args.fold_pools else ''}, batch {args.batch}, "
              f"{args.threads} BLAS threads, training step "
              f"(forward, loss, backward), median of {args.rounds} rounds:")
        print(f"  old ({args.old}): {old:.1f} ms")
        print(f"  new ({args.new or 'working tree'}): {new:.1f} ms")
        print(f"  new / old = {new / old:.3f}")
    finally:
        for side in ("old", "new"):
            if side in trees and trees[side] != ROOT:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(trees[side])],
                               capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
