"""Why two threads do less than two processes: the same training steps, four ways, side by side.

    python benchmarks/threads_vs_processes.py                 # fashion-2764, chunks of 50
    python benchmarks/threads_vs_processes.py --model scs --chunk 64 --rounds 5

minisc splits a batch into chunks that go through the network on threads of their own
(minisc/parallel.py). NumPy lets go of Python's global interpreter lock (GIL) inside its loops
over large arrays, so those loops do run at the same time. Everything else, the Python lines of
every layer and NumPy's own work of checking arguments and making each result array, holds
the lock: only one thread at a time can do it, and handing the lock back and forth costs more
on top. This script measures how much that costs. Each round starts fresh processes for:

  overhead    one process, one thread, batches of 2: a step of almost nothing but that fixed
              cost, the part that holds the lock
  alone       one process, one thread, batches of --chunk
  processes   two processes side by side, each one thread, batches of --chunk
  neighbour   one process, one thread training on batches of --chunk, and beside it a thread
              that only runs one large NumPy `exp` after another, letting go of the lock: what
              sharing a process and two cores costs when only one thread runs Python
  threads     one process, two Python threads side by side, each training its own model on
              batches of --chunk (minisc's chunks off): the lock is all they share
  chunks      one process, minisc's two chunk threads, batches of 2 x --chunk
  workers     one process and minisc's worker process, one chunk each, batches of 2 x --chunk

and prints milliseconds per step (per chunk of --chunk images for the side-by-side cases, per
batch of 2 x --chunk for `chunks` and `workers`). If the lock is the whole story, `threads` and `chunks` lose
to `processes` about what the `overhead` step costs, or more: while one thread runs its Python
lines, the other waits for the lock; `workers` should be close to `processes`. Run it with
nothing else running.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# One child process: trains `copies` models, each on a thread of its own (1: the main thread),
# for one epoch of `images` images in batches of `batch`, and prints ms per step of each.
# The data and the epoch loop are bench_step.py's (record_data, run_epoch_minisc).
CHILD = r"""
import json, sys, threading
sys.path.insert(0, sys.argv[1])
sys.path.insert(0, sys.argv[1] + "/benchmarks")
from bench_step import record_data, run_epoch_minisc
from minisc import parallel
from minisc.models import build_model
parallel.MIN_CHUNK = parallel.MIN_CHUNK_THREADS = 1     # split whatever the chunk size
model_name, batch, n_images, copies = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
_, x, y = record_data(n_images)
neighbour = None
if sys.argv[6] == "1":                      # a thread of GIL-free NumPy work beside the training
    import numpy as np
    done = threading.Event()
    def exp_loop():
        parallel._worker_start()
        a = np.linspace(-1, 1, 1_000_000, dtype=np.float32)
        b = np.empty_like(a)
        while not done.is_set():
            np.exp(a, out=b)
    neighbour = threading.Thread(target=exp_loop)
    neighbour.start()
steps = -(-n_images // batch)
ms = [None] * copies
def train(i):
    if copies > 1:
        parallel._worker_start()          # this thread's BLAS on one core, as a chunk's is
    model = build_model(model_name, rng=i)
    model.forward(x[:batch])                # starts minisc's workers (if any) before the clock
    ms[i] = 1000 * run_epoch_minisc(model, x, y, batch) / steps
if copies == 1:
    train(0)
else:
    threads = [threading.Thread(target=train, args=(i,)) for i in range(copies)]
    for t in threads: t.start()
    for t in threads: t.join()
if neighbour is not None:
    done.set()
    neighbour.join()
print(json.dumps(ms))
"""

CASES = ("overhead", "alone", "neighbour", "processes", "threads", "chunks", "workers")


def run_case(case, model, chunk, images, env):
    """Milliseconds per step of one case (the mean over the side-by-side copies)."""
    def child(batch, copies, n_images, minisc_threads, neighbour=False, mode="threads"):
        child_env = dict(env, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
                         MINISC_NUM_THREADS=str(minisc_threads), MINISC_PARALLEL=mode)
        return subprocess.Popen([sys.executable, "-c", CHILD, str(ROOT), model, str(batch),
                                 str(n_images), str(copies), "1" if neighbour else "0"],
                                env=child_env, stdout=subprocess.PIPE, text=True)

    if case == "overhead":
        procs = [child(2, 1, max(2, images // 25), 1)]
    elif case == "alone":
        procs = [child(chunk, 1, images, 1)]
    elif case == "neighbour":
        procs = [child(chunk, 1, images, 1, neighbour=True)]
    elif case == "processes":
        procs = [child(chunk, 1, images, 1), child(chunk, 1, images, 1)]
    elif case == "threads":
        procs = [child(chunk, 2, images, 1)]
    else:                                   # one batch of 2 x chunk, split in two
        procs = [child(2 * chunk, 1, 2 * images, 2, mode="processes" if case == "workers" else "threads")]
    ms = []
    for proc in procs:
        out, _ = proc.communicate()
        if proc.returncode:
            raise SystemExit(f"the {case!r} child failed (exit code {proc.returncode})")
        ms += json.loads(out.strip().splitlines()[-1])
    return statistics.mean(ms)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="fashion-2764")
    ap.add_argument("--chunk", type=int, default=50, help="images per chunk (default 50)")
    ap.add_argument("--images", type=int, default=3000,
                    help="images per epoch of each copy (default 3000)")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    if args.chunk < 1 or args.images < args.chunk or args.rounds < 1:
        ap.error("need --chunk >= 1, --images >= --chunk and --rounds >= 1")

    print(f"{args.model}, chunks of {args.chunk} images, {args.images} images per epoch; "
          f"{args.rounds} round{'s' if args.rounds != 1 else ''}")
    results = {case: [] for case in CASES}
    for r in range(args.rounds):
        for case in CASES:
            results[case].append(run_case(case, args.model, args.chunk, args.images,
                                          dict(os.environ)))
        print(f"  round {r + 1}: " + "  ".join(f"{case} {results[case][-1]:.1f}" for case in CASES),
              "(ms a step)", flush=True)
    med = {case: statistics.median(v) for case, v in results.items()}
    print("medians, ms a step:")
    print(f"  overhead (batches of 2, one thread)          {med['overhead']:6.1f}")
    print(f"  alone (one thread)                           {med['alone']:6.1f}")
    print(f"  one thread, a GIL-free NumPy thread beside   {med['neighbour']:6.1f}")
    print(f"  two processes side by side, each             {med['processes']:6.1f}")
    print(f"  two threads side by side, each               {med['threads']:6.1f}"
          f"   (+{med['threads'] - med['processes']:.1f} against processes)")
    print(f"  minisc's chunk threads, a batch of 2 x {args.chunk:<4d}  {med['chunks']:6.1f}"
          f"   (+{med['chunks'] - med['processes']:.1f} against processes)")
    print(f"  minisc's worker + this process, a batch of 2 x {args.chunk:<4d} {med['workers']:5.1f}"
          f"   (+{med['workers'] - med['processes']:.1f} against processes)")


if __name__ == "__main__":
    main()
