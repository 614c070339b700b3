"""Train a parameter-efficiency record model with its recipe, and measure it honestly.

    python benchmarks/records.py fashion-2764 --seed 0
    python benchmarks/records.py mnist-1398 --seed 1 --twin        # and its ConvNet twin
    python benchmarks/records.py mnist-1398 --twin-only            # the ConvNet twin alone
    python benchmarks/records.py fashion-1890 --validation 5000    # tune on a validation split
    python benchmarks/records.py fashion-2764 --validation 10000 --shift 2   # ...with another recipe
    python benchmarks/records.py fashion-1890 --validation 10000 --flip   # ...or with flips
    python benchmarks/records.py fashion-1890 --validation 10000 --flip-classes 0,1,2,3,4,6,8
                                                        # ...mirroring clothes but not shoes
    python benchmarks/records.py fashion-1890 --validation 10000 --label-smoothing 0.1
                                                        # ...or training towards smoothed labels
    python benchmarks/records.py fashion-1890 --validation 10000 --teacher reference
                                                        # ...or distilled from a larger network
    python benchmarks/records.py fashion-2764 --fold-pools        # the same network, trained faster
    python benchmarks/records.py mnist-1398 --quick --data sample  # a smoke test, offline

For each model it prints the parameter count, then after every epoch the held-out accuracy and
the seconds the epoch took, and in brackets those of its training steps alone, without the
scoring of the held-out images (what a PyTorch training loop that scores after its timer stops
reports as an epoch); at the end the accuracy after the *last* epoch, which is the figure
the parameter-efficiency leaderboard (brohrer/parameter_efficiency_leaderboard) reports, never
the best epoch's. It writes, into --out (default runs/records/):

    NAME-seedS.json   the recipe, the parameter count and the per-epoch history
    NAME-seedS.png    held-out accuracy against epoch, with the target line
    NAME-seedS.npz    the trained model (minisc.load it), in the shape build_model(NAME) gives
                      it, pools apart, even when trained with --fold-pools

(NAME-validation-seedS.* with --validation, so that a validation run and a test run of the
same seed never overwrite each other.)

Held-out set: the official test set by default. Anything you *tune* (recipe, widths, p_init...)
must be chosen with --validation N instead, which holds out the last N training images and
never touches the test set.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))          # run from a checkout without installing

TARGETS = {"fashion-mnist": 0.90, "mnist": 0.99, "sample": 0.99}
RECORD_MODELS = ("fashion-2764", "fashion-1890", "mnist-1398")


def class_list(text):
    """'0,1,2' -> [0, 1, 2]: class labels for --flip-classes."""
    try:
        labels = [int(part) for part in text.split(",")]
    except ValueError:
        labels = None
    if not labels or min(labels) < 0:
        raise argparse.ArgumentTypeError(f"expected class labels (integers >= 0) separated by commas, "
                                         f"e.g. 0,1,2; got {text!r}")
    return labels


def parse_args(argv=None):
    # No NumPy yet: --threads must be in the environment before NumPy (and BLAS) start.
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", choices=RECORD_MODELS)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--twin", action="store_true", help="also train the model's ConvNet twin")
    ap.add_argument("--twin-only", action="store_true", help="train only the model's ConvNet twin")
    ap.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs")
    ap.add_argument("--shift", type=int, default=None, metavar="PIXELS",
                    help="override the recipe's random shifts (0: none)")
    flips = ap.add_mutually_exclusive_group()
    flips.add_argument("--flip", default=None, action=argparse.BooleanOptionalAction,
                       help="override the recipe's random left-right flips")
    flips.add_argument("--flip-classes", type=class_list, default=None, metavar="LABELS",
                       help="mirror only the images of these classes, e.g. 0,1,2 (see minisc.train.random_flip)")
    ap.add_argument("--batch-size", type=int, default=None, metavar="N",
                    help="override the recipe's batch size")
    ap.add_argument("--lr", type=float, default=None, help="override the recipe's (peak) learning rate")
    ap.add_argument("--label-smoothing", type=float, default=None, metavar="EPS",
                    help="override the recipe's label smoothing (0 = plain cross-entropy)")
    teachers = ap.add_mutually_exclusive_group()
    teachers.add_argument("--teacher", default=None, metavar="MODEL",
                          help="distil from this model of minisc.models (e.g. reference), trained first on "
                               "the same data with the same seed and augmentation; its time counts in the total. "
                               "With --twin or --twin-only the ConvNet twin gets the same teacher")
    teachers.add_argument("--no-teacher", action="store_true",
                          help="train without the teacher the recipe names, if any")
    ap.add_argument("--teacher-epochs", type=int, default=None, metavar="N",
                    help="the teacher's epochs (default: the recipe's, else 15)")
    ap.add_argument("--teacher-lr", type=float, default=None,
                    help="the teacher's peak learning rate (default: the recipe's, else 0.01)")
    ap.add_argument("--distill-weight", type=float, default=None, metavar="A",
                    help="the teacher's share of the target, from 0 to 1 (default: the recipe's, else 0.5)")
    ap.add_argument("--distill-temperature", type=float, default=None, metavar="T",
                    help="the temperature that softens the teacher's probabilities (default: the "
                         "recipe's, else 2)")
    ap.add_argument("--soften-student", default=None, action=argparse.BooleanOptionalAction,
                    help="Hinton et al.'s form of distillation: the student's probabilities softened by "
                         "the same temperature where they meet the teacher's, that part of the loss scaled "
                         "by T^2 (default: the recipe's, else off)")
    ap.add_argument("--validation", type=int, default=0, metavar="N",
                    help="hold out the last N training images and report on them, not on the test set")
    ap.add_argument("--data", choices=("mnist", "fashion-mnist", "sample"), default=None,
                    help="train and test on another data set than the recipe's (sample: the "
                         "embedded MNIST digits, for a smoke test that needs no download)")
    ap.add_argument("--threads", type=int, default=None,
                    help="threads for BLAS and for minisc's batch chunks (set before NumPy starts; "
                         "default: every CPU this process may use)")
    ap.add_argument("--fold-pools", action="store_true",
                    help="train the same network with each SCS layer and its max-abs pool as one layer "
                         "(minisc.models.fold_pools: the pool taken before the sharpening, faster)")
    ap.add_argument("--out", default="runs/records")
    ap.add_argument("--quick", action="store_true", help="a few hundred images, 1 epoch: a smoke test")
    args = ap.parse_args(argv)
    if args.batch_size is not None and args.batch_size < 1:
        ap.error(f"argument --batch-size: expected an integer >= 1, got {args.batch_size}")
    if args.lr is not None and not args.lr > 0:       # (also refuses nan)
        ap.error(f"argument --lr: expected a number > 0, got {args.lr}")
    if args.label_smoothing is not None and not 0 <= args.label_smoothing < 1:
        ap.error(f"argument --label-smoothing: expected a number from 0 up to (not including) 1, "
                 f"e.g. 0.1; got {args.label_smoothing}")
    if args.teacher_epochs is not None and args.teacher_epochs < 1:
        ap.error(f"argument --teacher-epochs: expected an integer >= 1, got {args.teacher_epochs}")
    if args.teacher_lr is not None and not args.teacher_lr > 0:
        ap.error(f"argument --teacher-lr: expected a number > 0, got {args.teacher_lr}")
    if args.distill_weight is not None and not 0 <= args.distill_weight <= 1:
        ap.error(f"argument --distill-weight: expected a number from 0 to 1, got {args.distill_weight}")
    if args.distill_temperature is not None and not args.distill_temperature > 0:
        ap.error(f"argument --distill-temperature: expected a number > 0, got {args.distill_temperature}")
    return args


def run(name, args, data, out):
    import numpy as np

    from minisc import get_num_threads, get_parallel_mode
    from minisc.models import RECIPES, build_model, fold_pools, unfold_pools
    from minisc.train import evaluate, train

    recipe = dict(RECIPES[name])
    data_name = args.data or recipe["data"]
    del recipe["data"]              # the rest of the recipe is train()'s keyword arguments
    if args.epochs is not None:
        recipe["epochs"] = args.epochs
    if args.shift is not None:
        recipe["shift"] = args.shift
    if args.flip is not None:
        recipe["flip"] = args.flip
    if args.flip_classes is not None:
        recipe["flip"] = args.flip_classes
    for key in ("batch_size", "lr", "label_smoothing"):
        if getattr(args, key) is not None:
            recipe[key] = getattr(args, key)
    if args.quick:
        recipe["epochs"] = 1
    teacher, teacher_record = None, None
    spec = teacher_spec(args, recipe)
    if spec is not None:
        teacher, teacher_record = trained_teacher(args, spec, recipe, data)
    model = build_model(name, rng=args.seed)
    if args.fold_pools:
        model = fold_pools(model)
    threads, parallel_mode = get_num_threads(), get_parallel_mode()
    print(f"\n{name}: {model.n_params:,} parameters; recipe {recipe}; seed {args.seed}; "
          f"{threads} thread(s)" + (f", batch chunks in {parallel_mode}" if threads > 1 else "")
          + (", pools folded into the SCS layers" if args.fold_pools else ""),
          flush=True)
    epoch_seconds = []
    last = [time.perf_counter()]

    def report(epoch, model, history):
        now = time.perf_counter()
        epoch_seconds.append(now - last[0])
        print(f"epoch {epoch:3d}  held-out accuracy {history['val_acc'][-1]:.4f}  "
              f"train loss {history['train_loss'][-1]:.4f}  {epoch_seconds[-1]:.1f} s "
              f"(training {history['train_seconds'][-1]:.1f} s)", flush=True)
        # An epoch's seconds: its training steps and the scoring of the held-out images that
        # follows them; not this report.
        last[0] = time.perf_counter()

    settings = dict(recipe, teacher=teacher) if teacher is not None else recipe
    history = train(model, data["x_train"], data["y_train"], data["x_test"], data["y_test"],
                    seed=args.seed, progress=False, log=lambda *a: None, callback=report, **settings)
    # The teacher's training is part of the recipe, so its minutes count in the total.
    total_minutes = (sum(epoch_seconds) + (teacher_record["seconds"] if teacher_record else 0)) / 60
    _, final = evaluate(model, data["x_test"], data["y_test"])
    target = TARGETS[data_name]
    print(f"{name}: {model.n_params:,} parameters, {data['held_out']} accuracy after the last epoch "
          f"{final:.4f} (target {target:.2f}: {'met' if final >= target else 'missed'}); "
          f"{np.median(epoch_seconds):.1f} s per epoch (median; training steps alone "
          f"{np.median(history['train_seconds']):.1f} s), {total_minutes:.1f} min in all"
          + (" (the teacher's training included)" if teacher_record else ""), flush=True)

    split = "-validation" if data["held_out"] == "validation" else ""
    stem = out / f"{name}{split}-seed{args.seed}"
    record = dict(model=name, n_params=model.n_params, seed=args.seed, recipe=recipe, data=data_name,
                  held_out=data["held_out"], final_accuracy=final, target=target,
                  epoch_seconds=epoch_seconds, threads=threads, parallel_mode=parallel_mode,
                  pools_folded=args.fold_pools, teacher=teacher_record,
                  history=history)
    stem.with_suffix(".json").write_text(json.dumps(record, indent=1))
    command = "python benchmarks/records.py " + " ".join(sys.argv[1:])
    if args.fold_pools:                 # saved in the shape build_model(name) gives, pools apart
        model = unfold_pools(model)
    model.save(stem.with_suffix(".npz"), metadata=dict(
        model=name, data=data_name, seed=args.seed, recipe=recipe, held_out=data["held_out"],
        final_accuracy=final, epochs_done=len(history["epoch"]), quick=args.quick, command=command))
    plot(record, stem.with_suffix(".png"))
    print(f"wrote {stem}.json, .npz and .png", flush=True)
    return record


def teacher_spec(args, recipe):
    """The teacher to distil from, dict(model, epochs, lr), or None; ``recipe`` is updated in
    place to name it (or to drop it, with --no-teacher). The recipe's teacher, if it names one,
    with the flags' overrides; --teacher names one for a recipe without. The ConvNet twins'
    recipes name none, so a twin is trained without a teacher unless --teacher gives it one,
    the same as its SCS model's: then both are trained with the same recipe."""
    spec = recipe.pop("teacher", None)
    spec = None if spec is None else dict(spec)     # a copy: RECIPES itself stays as it is
    weight = recipe.pop("distill_weight", 0.5)
    temperature = recipe.pop("distill_temperature", 2.0)
    soften = recipe.pop("distill_soften_student", False)
    if args.no_teacher:
        return None
    if args.teacher is not None:
        spec = dict(spec or dict(epochs=15, lr=0.01), model=args.teacher)
    if spec is None:
        return None
    if args.teacher_epochs is not None:
        spec["epochs"] = args.teacher_epochs
    if args.teacher_lr is not None:
        spec["lr"] = args.teacher_lr
    if args.quick:
        spec["epochs"] = 1
    recipe.update(teacher=spec["model"],
                  distill_weight=weight if args.distill_weight is None else args.distill_weight,
                  distill_temperature=(temperature if args.distill_temperature is None
                                       else args.distill_temperature),
                  distill_soften_student=soften if args.soften_student is None else args.soften_student)
    return spec


def trained_teacher(args, spec, recipe, data):
    """The teacher for distillation, trained by minisc.train.train_teacher on the student's
    training images with the student's seed, batch size and augmentation (pools folded with
    --fold-pools), then scored on the held-out images. Returns it and a summary for the JSON."""
    from minisc.train import evaluate, train_teacher

    settings = {k: v for k, v in recipe.items() if k in ("batch_size", "optimizer", "schedule", "shift",
                                                           "flip")}
    start = time.perf_counter()
    teacher = train_teacher(spec, data["x_train"], data["y_train"], seed=args.seed, log=lambda *a: None,
                            fold=args.fold_pools, **settings)
    seconds = time.perf_counter() - start
    _, accuracy = evaluate(teacher, data["x_test"], data["y_test"])
    print(f"teacher {spec['model']}: {teacher.n_params:,} parameters, {spec['epochs']} epochs in "
          f"{seconds / 60:.1f} min, {data['held_out']} accuracy {accuracy:.4f}", flush=True)
    return teacher, dict(model=spec["model"], n_params=teacher.n_params,
                         recipe=dict(settings, epochs=spec["epochs"], lr=spec["lr"]),
                         seconds=seconds, final_accuracy=accuracy)


def plot(record, path):
    """Held-out accuracy after every epoch (all of them, from the first), and the target line."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hist = record["history"]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot(hist["epoch"], [100 * a for a in hist["val_acc"]], label=f"{record['model']}")
    ax.axhline(100 * record["target"], color="k", ls="--", lw=1, label=f"target {100 * record['target']:.0f}%")
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"{record['held_out']} accuracy (%)")
    ax.set_ylim(max(0, min(100 * min(hist["val_acc"]), 100 * record["target"]) - 2), 100)
    ax.set_title(f"{record['model']}, {record['n_params']:,} parameters, seed {record['seed']}: "
                 f"{100 * record['final_accuracy']:.2f}% after the last epoch", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        if "numpy" in sys.modules:
            raise RuntimeError("records.py: --threads must be set before NumPy is imported")
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "MINISC_NUM_THREADS"):
            os.environ[var] = str(args.threads)
    from minisc.models import MODELS, RECIPES
    from minisc.train import load_dataset

    if args.teacher is not None and args.teacher not in MODELS:
        print(f"records.py: error: argument --teacher: expected one of {', '.join(sorted(MODELS))}; "
              f"got {args.teacher!r}", file=sys.stderr)
        return 2

    data = load_dataset(args.data or RECIPES[args.model]["data"], quick=args.quick)
    if args.validation:
        n = args.validation
        data = dict(data, x_test=data["x_train"][-n:], y_test=data["y_train"][-n:],
                    x_train=data["x_train"][:-n], y_train=data["y_train"][:-n], held_out="validation")
    else:
        data["held_out"] = "test"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    records = [] if args.twin_only else [run(args.model, args, data, out)]
    if args.twin or args.twin_only:
        records.append(run(args.model + "-convnet", args, data, out))
    return 0 if records else 1


if __name__ == "__main__":
    sys.exit(main())
