"""Training steps with and without minisc's allocator setting (minisc/memory.py), side by side.

    python benchmarks/memory_ab.py                                  # fashion-2764, batch 100
    python benchmarks/memory_ab.py --model reference --batch 128 --threads 2 --rounds 5

Round after round, two fresh processes take turns: one imports minisc as it is (freed memory
kept for the next step), one with ``MINISC_KEEP_MEMORY=0`` (glibc's own settings). Each trains
the same model from the same seed for one epoch of ``--images`` images (Fashion-MNIST training
images when they are on this machine, else the shipped MNIST sample, repeated) with Adam, the
way a real run does, data set in memory, and prints milliseconds per step and page faults per
step. The medians over rounds and their ratio come last. Run it with nothing else running.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The data and the epoch loop are bench_step.py's (record_data, run_epoch_minisc).
CHILD = r"""
import json, resource, sys
sys.path.insert(0, sys.argv[1])
sys.path.insert(0, sys.argv[1] + "/benchmarks")
from bench_step import record_data, run_epoch_minisc
from minisc.memory import freed_memory_kept
from minisc.models import build_model
model_name, batch, n_images = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
_, x, y = record_data(n_images)
model = build_model(model_name, rng=0)
steps = -(-n_images // batch)
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
seconds = run_epoch_minisc(model, x, y, batch)
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
print(json.dumps({"ms": 1000 * seconds / steps, "faults": faults / steps,
                  "kept": freed_memory_kept()}))
"""


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="fashion-2764")
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--images", type=int, default=6000, help="images per epoch (default 6000)")
    ap.add_argument("--threads", type=int, default=None,
                    help="threads for BLAS and minisc's batch chunks (default: the machine's)")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    if args.batch < 1 or args.images < args.batch or args.rounds < 1:
        ap.error("need --batch >= 1, --images >= --batch and --rounds >= 1")

    env = dict(os.environ)
    if args.threads is not None:
        for key in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MINISC_NUM_THREADS"):
            env[key] = str(args.threads)
    sides = {"kept": dict(env, MINISC_KEEP_MEMORY="1"), "glibc": dict(env, MINISC_KEEP_MEMORY="0")}
    print(f"{args.model}, batch {args.batch}, {args.images} images per epoch, "
          f"threads: {args.threads or 'default'}; {args.rounds} round{'s' if args.rounds != 1 else ''}")
    results = {side: [] for side in sides}
    for r in range(args.rounds):
        line = []
        for side, side_env in sides.items():
            out = subprocess.run([sys.executable, "-c", CHILD, str(ROOT), args.model,
                                  str(args.batch), str(args.images)],
                                 env=side_env, capture_output=True, text=True, check=True)
            res = json.loads(out.stdout.strip().splitlines()[-1])
            results[side].append(res)
            line.append(f"{side}: {res['ms']:6.1f} ms, {res['faults']:7.0f} faults a step")
        print(f"  round {r + 1}: " + "   ".join(line), flush=True)
    ms = {side: statistics.median(res["ms"] for res in results[side]) for side in sides}
    faults = {side: statistics.median(res["faults"] for res in results[side]) for side in sides}
    if not all(res["kept"] for res in results["kept"]):
        print("  (this C library took no setting: both sides ran with its defaults)")
    print(f"medians: kept {ms['kept']:.1f} ms ({faults['kept']:.0f} faults a step), glibc's "
          f"defaults {ms['glibc']:.1f} ms ({faults['glibc']:.0f}); kept / defaults "
          f"{ms['kept'] / ms['glibc']:.2f}")


if __name__ == "__main__":
    main()
