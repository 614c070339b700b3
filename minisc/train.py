"""Training: a seeded, reproducible loop with a progress bar, and a command line around it.

    from minisc.train import train, evaluate, load_dataset
    data = load_dataset("sample")                      # or "mnist", "fashion-mnist", "auto"
    model = build_model("scs", rng=0)
    history = train(model, data["x_train"], data["y_train"], data["x_test"], data["y_test"])

From the command line::

    python -m minisc.train --data sample --model scs --epochs 30 --seed 0 --out runs/scs

trains, prints the test accuracy and saves ``runs/scs/model.npz`` (load it with
``minisc.load``) and ``runs/scs/history.json``.

One epoch = one pass over the shuffled training set in mini-batches; after each epoch the
model is evaluated on the held-out set. Two learning-rate schedules:

- "warmup-cosine": a linear warm-up over the first epoch, then a cosine curve down to zero:
  large steps while the network is far from a solution, small ones to settle at the end;
- "one-cycle" (Leslie Smith's, as PyTorch's OneCycleLR does it by default): from lr/25 up to
  lr over the first 30% of the steps, then a cosine down to lr/25e4, while Adam's beta1 moves
  the other way, 0.95 -> 0.85 -> 0.95. The record networks are trained with it.

Each model's recipe (``minisc.models.RECIPES``) says which data, epochs, batch size, schedule
and augmentation it is trained with; the command line runs it and lets any flag override it.
"""

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from . import data as mdata
from .files import atomic_write
from .layers import SharpCosSim2D
from .losses import SoftmaxCrossEntropy
from .models import MODELS, RECIPES, build_model
from .optim import SGD, Adam

SCHEDULES = ("warmup-cosine", "one-cycle")
# Each recipe's keyword arguments for train(): the recipe without its data set.
DEFAULTS = {name: {k: v for k, v in recipe.items() if k != "data"} for name, recipe in RECIPES.items()}


# --------------------------------------------------------------------------------------------
# data
def load_dataset(name="auto", quick=False, log=print):
    """Training and test data as float32 (N, 1, 28, 28) in [0, 1] and uint8 labels (N,).

    name:
      "sample"         the embedded 5,000 MNIST digits: its fixed 4,500-digit training part,
                       and its 500-digit validation part as the test set
      "mnist"          full MNIST: 60,000 training and 10,000 test digits (downloaded if missing)
      "fashion-mnist"  full Fashion-MNIST (also found where Debian's dataset-fashion-mnist puts it)
      "auto"           full MNIST if its files are on disk or can be downloaded, else the sample
    quick: keep only a few hundred images of each part (for smoke tests).

    Returns a dict with x_train, y_train, x_test, y_test, name, description.
    """
    if name == "auto":
        try:
            loaded = _load_full("mnist", download=True, quiet=True)
        except (mdata.DownloadError, OSError, ValueError) as err:
            log(f"data: full MNIST is not available here ({type(err).__name__}); using the "
                "embedded 5,000-digit sample instead.\n      To train on all 60,000 digits, run "
                "`python -m minisc.data download mnist` once (needs internet).")
            loaded = _load_sample()
    elif name == "sample":
        loaded = _load_sample()
    elif name in ("mnist", "fashion-mnist"):
        loaded = _load_full(name, download=True, quiet=False)
    else:
        raise ValueError(f"load_dataset: unknown data set {name!r}; choose sample, mnist, "
                         "fashion-mnist or auto")
    if quick:
        rng = np.random.default_rng(0)
        for part, n in (("train", 600), ("test", 300)):
            keep = np.sort(rng.permutation(len(loaded[f"y_{part}"]))[:n])
            loaded[f"x_{part}"] = loaded[f"x_{part}"][keep]
            loaded[f"y_{part}"] = loaded[f"y_{part}"][keep]
        loaded["description"] += " (quick mode: a small subset)"
    log(f"data: {loaded['description']}: {len(loaded['y_train']):,} training and "
        f"{len(loaded['y_test']):,} test images")
    return loaded


def _load_sample():
    x_tr, y_tr = mdata.load_mnist_sample("train")
    x_te, y_te = mdata.load_mnist_sample("validation")
    return dict(x_train=mdata.to_float(x_tr), y_train=y_tr, x_test=mdata.to_float(x_te), y_test=y_te,
                name="sample", description="MNIST sample (embedded), validation part as test set")


def _load_full(name, download, quiet):
    loader = mdata.load_mnist if name == "mnist" else mdata.load_fashion_mnist
    if quiet:
        # "auto" must not hang a lesson: only quick, local attempts or one short download try.
        x_tr, y_tr = loader("train", download=download, progress=True, timeout=10)
    else:
        x_tr, y_tr = loader("train", download=download)
    x_te, y_te = loader("test", download=download)
    label = "MNIST" if name == "mnist" else "Fashion-MNIST"
    return dict(x_train=mdata.to_float(x_tr), y_train=y_tr, x_test=mdata.to_float(x_te), y_test=y_te,
                name=name, description=f"full {label}")


def random_shift(x, max_shift, rng):
    """Move every image by its own random offset of up to max_shift pixels (zeros fill in).

    x: (N, C, H, W) -> (N, C, H, W). Vectorized: the padded batch is viewed as all its
    H x W windows, (N, C, 2s+1, 2s+1, H, W), and each image picks one window by fancy indexing.
    """
    if max_shift <= 0:
        return x
    s = int(max_shift)
    n, _, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (s, s), (s, s)))
    views = sliding_window_view(xp, (h, w), axis=(2, 3))      # (N, C, 2s+1, 2s+1, H, W)
    dy = rng.integers(0, 2 * s + 1, n)
    dx = rng.integers(0, 2 * s + 1, n)
    return views[np.arange(n), :, dy, dx]                     # (N, C, H, W)


def random_flip(x, rng):
    """Mirror about half of the images left-right, each chosen at random: (N, C, H, W) -> same."""
    flip = rng.random(len(x)) < 0.5
    out = x.copy()
    out[flip] = x[flip, :, :, ::-1]
    return out


# --------------------------------------------------------------------------------------------
# evaluation and training
def evaluate(model, x, y, batch_size=500):
    """(mean cross-entropy loss, accuracy) of model on x (N, 1, 28, 28), y (N,).

    Runs in evaluation mode (no backward caches); the model's mode is restored afterwards."""
    loss_fn = SoftmaxCrossEntropy()
    total_loss, correct = 0.0, 0
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    try:
        for i in range(0, len(y), batch_size):
            logits = model.forward(x[i:i + batch_size])
            total_loss += loss_fn.forward(logits, y[i:i + batch_size]) * len(logits)
            correct += int(np.sum(np.argmax(logits, axis=1) == y[i:i + batch_size]))
    finally:
        if was_training:
            model.train()
    return total_loss / len(y), correct / len(y)


def lr_at(step, total_steps, warmup_steps, base_lr):
    """Linear warm-up to base_lr, then cosine decay to 0 at total_steps."""
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    t = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return base_lr * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


def one_cycle_at(step, total_steps, max_lr, pct_start=0.3, div=25.0, final_div=1e4,
                 beta1_range=(0.85, 0.95)):
    """(learning rate, Adam beta1) at a step of the one-cycle schedule.

    The rate climbs from max_lr/div to max_lr over the first pct_start of the steps, then falls
    to max_lr/(div*final_div); both phases follow half a cosine. beta1 mirrors it, from high to
    low and back. These are the defaults of PyTorch's OneCycleLR, which the records used.
    """
    def cos_from_to(a, b, t):                       # t in [0, 1]: a -> b along half a cosine
        return b + (a - b) * 0.5 * (1 + math.cos(math.pi * t))

    lo_beta, hi_beta = beta1_range
    start, end = max_lr / div, max_lr / (div * final_div)
    up = max(1.0, pct_start * total_steps - 1)      # the step at which lr peaks
    if step <= up:
        t = step / up
        return cos_from_to(start, max_lr, t), cos_from_to(hi_beta, lo_beta, t)
    t = min(1.0, (step - up) / max(1.0, total_steps - 1 - up))
    return cos_from_to(max_lr, end, t), cos_from_to(lo_beta, hi_beta, t)


def scs_layer_state(model):
    """p (a list per SCS layer) and q (a float per SCS layer), for the training history."""
    layers = [layer for layer in model.layers if isinstance(layer, SharpCosSim2D)]
    return ([layer.params["p"].tolist() for layer in layers],
            [float(layer.params["q"][0]) for layer in layers])


def train(model, x_train, y_train, x_val=None, y_val=None, *, epochs=10, batch_size=64, lr=0.01,
          optimizer="adam", schedule="warmup-cosine", shift=0, flip=False, seed=0, progress=True,
          save_path=None, callback=None, log=print):
    """Train ``model`` with mini-batch gradient descent; returns the history.

    x_train: float32 (N, 1, H, W); y_train: int labels (N,); x_val, y_val likewise (optional,
    evaluated after every epoch). optimizer: "adam" or "sgd" (momentum 0.9). schedule:
    "warmup-cosine" or "one-cycle" (lr is then the peak rate). shift: random translation of up
    to this many pixels per image (data augmentation; 0 = off); flip: mirror a random half of
    every batch left-right. seed drives the shuffling and the augmentation, so a run is
    reproducible. save_path: if given, the final model is saved there (atomically).
    callback: if given, ``callback(epoch, model, history)`` is called after every epoch.

    Returns a dict of per-epoch lists: epoch, train_loss, train_acc, val_loss, val_acc, lr,
    seconds (cumulative wall time), and p and q of every SCS layer (one entry per SCS layer,
    in model order, per epoch).
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"train: schedule must be one of {SCHEDULES}, got {schedule!r}")
    x_train = np.asarray(x_train)
    y_train = np.asarray(y_train).astype(np.int64)
    if x_train.ndim != 4 or len(x_train) != len(y_train):
        raise ValueError(f"train: expected x_train (N, C, H, W) and y_train (N,), got {x_train.shape} "
                         f"and {y_train.shape}")
    if x_val is not None:
        y_val = np.asarray(y_val).astype(np.int64)
    rng = np.random.default_rng(seed)
    loss_fn = SoftmaxCrossEntropy()
    opt = Adam(model, lr=lr) if optimizer == "adam" else SGD(model, lr=lr, momentum=0.9)
    steps_per_epoch = math.ceil(len(y_train) / batch_size)
    total_steps = epochs * steps_per_epoch
    warmup = min(steps_per_epoch, total_steps // 5)
    history = {k: [] for k in ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds",
                               "p", "q")}
    start = time.perf_counter()
    step = 0
    tqdm = _tqdm(progress)
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(y_train))
        seen, loss_sum, correct = 0, 0.0, 0
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch}/{epochs}", leave=False, unit="batch")
        for b in bar:
            idx = order[b * batch_size:(b + 1) * batch_size]
            xb = random_shift(x_train[idx], shift, rng)
            if flip:
                xb = random_flip(xb, rng)
            yb = y_train[idx]
            if schedule == "one-cycle":
                opt.lr, beta1 = one_cycle_at(step, total_steps, lr)
                if isinstance(opt, Adam):
                    opt.betas = (beta1, opt.betas[1])
            else:
                opt.lr = lr_at(step, total_steps, warmup, lr)
            logits = model.forward(xb)
            loss = loss_fn.forward(logits, yb)
            if not math.isfinite(loss):
                raise FloatingPointError(
                    f"train: the loss became {loss} at epoch {epoch}, step {b} (learning rate "
                    f"{opt.lr:.3g}); try a smaller lr")
            model.backward(loss_fn.backward())
            opt.step()
            step += 1
            seen += len(yb)
            loss_sum += loss * len(yb)
            correct += int(np.sum(np.argmax(logits, axis=1) == yb))
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
        val_loss, val_acc = evaluate(model, x_val, y_val) if x_val is not None else (None, None)
        history["epoch"].append(epoch)
        history["train_loss"].append(loss_sum / seen)
        history["train_acc"].append(correct / seen)
        history["val_loss"].append(val_loss)
        history["val_acc"].append(val_acc)
        history["lr"].append(opt.lr)
        history["seconds"].append(time.perf_counter() - start)
        p_now, q_now = scs_layer_state(model)
        history["p"].append(p_now)
        history["q"].append(q_now)
        msg = (f"epoch {epoch:3d}/{epochs}  loss {loss_sum / seen:.4f}  train acc {correct / seen:.4f}")
        if val_acc is not None:
            msg += f"  test loss {val_loss:.4f}  test acc {val_acc:.4f}"
        log(msg + f"  ({history['seconds'][-1]:.0f} s)")
        if callback is not None:
            callback(epoch, model, history)
    if save_path is not None:
        model.save(save_path)
    return history


def _tqdm(enabled):
    if enabled:
        try:
            from tqdm.auto import tqdm
            return tqdm
        except ImportError:  # pragma: no cover - tqdm is a dependency, but stay usable without
            pass
    return lambda it, **kw: it


def save_history(history, path):
    """Write the history dict as JSON (atomically)."""
    with atomic_write(path, mode="w") as f:
        json.dump(history, f, indent=1)
    return Path(path)


# --------------------------------------------------------------------------------------------
# command line
def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m minisc.train",
        description="Train a minisc network on 28x28 digits or clothes, print its test accuracy and save it.")
    parser.add_argument("--model", default="scs", choices=sorted(MODELS))
    parser.add_argument("--data", default=None, choices=["sample", "mnist", "fashion-mnist", "auto"],
                        help="default: the model's recipe (minisc.models.RECIPES)")
    parser.add_argument("--epochs", type=int, default=None, help="default: the model's recipe")
    parser.add_argument("--lr", type=float, default=None, help="(peak) learning rate")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--schedule", default=None, choices=SCHEDULES)
    parser.add_argument("--shift", type=int, default=None, help="random shift augmentation, pixels")
    parser.add_argument("--flip", default=None, action=argparse.BooleanOptionalAction,
                        help="random left-right flips (clothes only: digits are not symmetric)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/latest", help="folder for model.npz and history.json")
    parser.add_argument("--quick", action="store_true", help="tiny data and 1 epoch: a smoke test")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    settings = dict(RECIPES[args.model])
    for key in ("data", "epochs", "lr", "batch_size", "schedule", "shift", "flip"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    if args.quick:
        settings["epochs"] = 1
    data = load_dataset(settings.pop("data"), quick=args.quick)
    model = build_model(args.model, rng=args.seed)
    print(model.summary())
    print(f"training: {settings}, seed {args.seed}")
    out = Path(args.out)
    history = train(model, data["x_train"], data["y_train"], data["x_test"], data["y_test"],
                    seed=args.seed, progress=not args.no_progress, save_path=out / "model.npz",
                    **settings)
    save_history(history, out / "history.json")
    print(f"test accuracy: {history['val_acc'][-1]:.4f} on {len(data['y_test']):,} held-out images "
          f"({data['description']}); training took {history['seconds'][-1]:.0f} s")
    print(f"saved model:   {out / 'model.npz'}  (minisc.load it)")
    print(f"saved history: {out / 'history.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
