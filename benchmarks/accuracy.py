"""Accuracy targets: train the named networks with their default settings and print the figures.

    python benchmarks/accuracy.py                         # scs and scs-tiny on the MNIST sample
    python benchmarks/accuracy.py --models scs convnet --seeds 0 1 2
    python benchmarks/accuracy.py --data fashion-mnist --epochs 10   # full Fashion-MNIST

For each model and seed it trains exactly what ``python -m minisc.train`` trains (same defaults
from ``minisc.train.DEFAULTS``, unless --epochs is given), then prints the wall-clock training
time and the test accuracy:

- with ``--data sample`` (default) training uses the sample's 4,500-digit training part only;
  accuracy is measured on the sample's 500-digit validation part and, when the full MNIST
  test files are on disk (``python -m minisc.data download mnist``), on all 10,000 MNIST test
  digits as well;
- with ``--data mnist`` or ``--data fashion-mnist``: the full training set and its test set.

The targets: on the sample, the flagship ``scs`` in under 3 minutes on a 2-core CPU at
>= 97.5% on held-out real digits, ``scs-tiny`` (<= 2,000 parameters) at >= 96%.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from a checkout, installed or not
from minisc import data as mdata
from minisc.models import build_model
from minisc.train import DEFAULTS, evaluate, load_dataset, train


def mnist_test_set():
    """The 10,000 MNIST test digits if their files are on disk, else None (no download)."""
    try:
        x, y = mdata.load_mnist("test", download=False)
    except (FileNotFoundError, OSError, ValueError):
        return None
    return mdata.to_float(x), y


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="sample", choices=["sample", "mnist", "fashion-mnist"])
    ap.add_argument("--models", nargs="+", default=["scs", "scs-tiny"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--epochs", type=int, default=None, help="override the model's default")
    ap.add_argument("--quick", action="store_true", help="tiny data, 1 epoch (a smoke test)")
    args = ap.parse_args(argv)

    data = load_dataset(args.data, quick=args.quick)
    extra = mnist_test_set() if args.data == "sample" and not args.quick else None
    if args.data == "sample":
        print("held-out sets: the sample's 500 validation digits"
              + (" and the 10,000 MNIST test digits" if extra else
                 " (full MNIST test files not found: `python -m minisc.data download mnist` adds them)"))
    rows = []
    for name in args.models:
        settings = dict(DEFAULTS[name])
        if args.epochs is not None:
            settings["epochs"] = args.epochs
        if args.quick:
            settings["epochs"] = 1
        for seed in args.seeds:
            model = build_model(name, rng=seed)
            start = time.perf_counter()
            hist = train(model, data["x_train"], data["y_train"], seed=seed, progress=False,
                         log=lambda *a: None, **settings)
            seconds = time.perf_counter() - start
            _, acc = evaluate(model, data["x_test"], data["y_test"])
            acc_full = evaluate(model, *extra)[1] if extra else None
            finite = all(np.isfinite(hist["train_loss"]))
            rows.append((name, seed, model.n_params, settings["epochs"], seconds, acc, acc_full, finite))
            line = (f"{name:10s} seed {seed}  {model.n_params:6,d} params  {settings['epochs']:3d} epochs  "
                    f"{seconds:6.1f} s  test acc {acc:.4f} ({len(data['y_test']):,} images)")
            if acc_full is not None:
                line += f"  MNIST test acc {acc_full:.4f} (10,000 digits)"
            print(line + ("" if finite else "  NaN in the loss!"), flush=True)

    print("\nsummary (median over seeds)")
    for name in args.models:
        r = [row for row in rows if row[0] == name]
        med = statistics.median
        text = (f"  {name:10s} {r[0][2]:6,d} params: {med([x[4] for x in r]):6.1f} s, "
                f"test acc {med([x[5] for x in r]):.4f} (min {min(x[5] for x in r):.4f})")
        if r[0][6] is not None:
            text += f", MNIST test acc {med([x[6] for x in r]):.4f}"
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
