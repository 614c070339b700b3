"""Training: a seeded, reproducible loop with a progress bar, and a command line around it.

    from minisc.train import train, evaluate, load_dataset
    data = load_dataset("sample")                      # or "mnist", "fashion-mnist", "auto"
    model = build_model("scs", rng=0)
    history = train(model, data["x_train"], data["y_train"], data["x_test"], data["y_test"])

From the command line::

    python -m minisc.train --data sample --model scs --epochs 30 --seed 0 --out runs/scs

trains, prints the test accuracy and saves ``runs/scs/model.npz`` (load it with
``minisc.load``) and ``runs/scs/history.json``.

Nothing is lost to an interruption. After every epoch the run's folder holds the model and the
history as of that epoch, plus ``resume_state.npz``: the optimizer's memory, the position in
the learning-rate schedule and the state of the random stream. Ctrl-C stops the run with a
one-line message, and ::

    python -m minisc.train --resume runs/scs

continues it exactly where it stopped: it ends with the same weights as a run never
interrupted. ``resume_state.npz`` is removed when the run has done all its epochs.

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
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from . import data as mdata
from .cli import OneLineParser, non_negative_int, positive_float, positive_int
from .files import atomic_write
from .layers import SharpCosSim2D
from .losses import SoftmaxCrossEntropy, check_labels, softmax
from .model import load as load_model
from .models import MODELS, RECIPES, build_model, fold_pools
from .optim import SGD, Adam
from .parallel import get_num_threads, set_num_threads

SCHEDULES = ("warmup-cosine", "one-cycle")
OPTIMIZERS = ("adam", "sgd")
MAX_SHIFT = 27          # a shift must leave part of a 28-pixel image in view
# The files of a run's folder.
MODEL_FILE, HISTORY_FILE, STATE_FILE = "model.npz", "history.json", "resume_state.npz"
# Each recipe's keyword arguments for train(): the recipe without its data set.
DEFAULTS = {name: {k: v for k, v in recipe.items() if k != "data"} for name, recipe in RECIPES.items()}


# --------------------------------------------------------------------------------------------
# data
def load_dataset(name="auto", quick=False, log=print, timeout=None):
    """Training and test data as float32 (N, 1, 28, 28) in [0, 1] and uint8 labels (N,).

    name:
      "sample"         the embedded 5,000 MNIST digits: its fixed 4,500-digit training part,
                       and its 500-digit validation part as the test set
      "mnist"          full MNIST: 60,000 training and 10,000 test digits (downloaded if missing)
      "fashion-mnist"  full Fashion-MNIST (also found where Debian's dataset-fashion-mnist puts it)
      "auto"           full MNIST if its files are on disk or can be downloaded, else the sample
    quick: keep only a few hundred images of each part (for smoke tests).
    timeout: deadline in seconds for downloading one file from one mirror (None: the
    loader's default; "auto" tries a short 10 s).

    Returns a dict with x_train, y_train, x_test, y_test, name, description.
    """
    if name == "auto":
        try:
            loaded = _load_full("mnist", download=True, quiet=True, timeout=timeout)
        except (mdata.DownloadError, OSError, ValueError) as err:
            log(f"data: full MNIST is not available here ({type(err).__name__}); using the "
                "embedded 5,000-digit sample instead.\n      To train on all 60,000 digits, run "
                "`python -m minisc.data download mnist` once (needs internet).")
            loaded = _load_sample()
    elif name == "sample":
        loaded = _load_sample()
    elif name in ("mnist", "fashion-mnist"):
        loaded = _load_full(name, download=True, quiet=False, timeout=timeout)
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


def _load_full(name, download, quiet, timeout=None):
    loader = mdata.load_mnist if name == "mnist" else mdata.load_fashion_mnist
    deadline = {} if timeout is None else {"timeout": timeout}
    if quiet:
        # "auto" must not hang a lesson: only quick, local attempts or one short download try.
        deadline.setdefault("timeout", 10)
    x_tr, y_tr = loader("train", download=download, **deadline)
    x_te, y_te = loader("test", download=download, **deadline)
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


def random_flip(x, rng, labels=None, classes=None, return_mask=False):
    """Mirror about half of the images left-right, each chosen at random: (N, C, H, W) -> same.

    With ``labels`` (one per image) and ``classes`` (a list of labels), only images of those
    classes are ever mirrored: the ones whose mirror image is still a likely picture of them.
    (Fashion-MNIST's shirts and bags, say, but not its shoes, which all point the same way.)
    With return_mask=True, also returns which images were mirrored, a boolean array (N,).
    """
    flip = rng.random(len(x)) < 0.5
    if classes is not None:
        flip &= np.isin(labels, classes)
    out = x.copy()
    out[flip] = x[flip, :, :, ::-1]
    return (out, flip) if return_mask else out


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


def _check_settings(epochs, batch_size, lr, optimizer, schedule, shift, flip, seed, label_smoothing,
                    distill_weight=0.5, distill_temperature=2.0, distill_soften_student=False):
    """Every training setting in range, or a ValueError naming it and what is expected."""
    def whole(v):
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

    def number(v):
        return isinstance(v, (int, float, np.floating)) and not isinstance(v, bool) and math.isfinite(v)
    flip_ok = isinstance(flip, (bool, np.bool_)) or (
        isinstance(flip, (list, tuple)) and all(whole(c) and c >= 0 for c in flip))
    problems = [
        (not (whole(epochs) and epochs >= 1), f"epochs must be an integer >= 1, got {epochs!r}"),
        (not (whole(batch_size) and batch_size >= 1),
         f"batch_size must be an integer >= 1, got {batch_size!r}"),
        (not (number(lr) and lr > 0), f"lr must be a number > 0, got {lr!r}"),
        (optimizer not in OPTIMIZERS, f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}"),
        (schedule not in SCHEDULES, f"schedule must be one of {SCHEDULES}, got {schedule!r}"),
        (not (whole(shift) and 0 <= shift <= MAX_SHIFT),
         f"shift must be an integer from 0 to {MAX_SHIFT} (pixels), got {shift!r}"),
        (not flip_ok, "flip must be True, False or a list of the class labels (integers >= 0) "
                      f"whose images may be mirrored, got {flip!r}"),
        (not (whole(seed) and seed >= 0), f"seed must be an integer >= 0, got {seed!r}"),
        (not (number(label_smoothing) and 0 <= label_smoothing < 1),
         f"label_smoothing must be a number from 0 up to (not including) 1, got {label_smoothing!r}"),
        (not (number(distill_weight) and 0 <= distill_weight <= 1),
         f"distill_weight must be a number from 0 to 1, got {distill_weight!r}"),
        (not (number(distill_temperature) and distill_temperature > 0),
         f"distill_temperature must be a number > 0, got {distill_temperature!r}"),
        (not isinstance(distill_soften_student, (bool, np.bool_)),
         f"distill_soften_student must be True or False, got {distill_soften_student!r}"),
    ]
    for bad, message in problems:
        if bad:
            raise ValueError(f"train: {message}")


@contextmanager
def _interrupts_deferred():
    """Hold back Ctrl-C while the block runs, then deliver it.

    The three files of a checkpoint must describe the same epoch; each is written atomically,
    but a Ctrl-C between two of them would leave a model of epoch 5 beside a history of epoch 4.
    Signal handlers can only be set from the main thread; elsewhere the block runs as is. A
    Ctrl-C that was ignored before the block (a run started with nohup or `&`) stays ignored.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: pending.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if pending and previous is not signal.SIG_IGN:
        if callable(previous):                  # the handler it would have reached: let it act
            previous(pending[0], None)
        raise KeyboardInterrupt


def _write_checkpoint(folder, model, history, metadata, state, opt_state, finished):
    """Model, history and (unless the run is finished) the resume state of one epoch."""
    folder = Path(folder)
    meta = dict(metadata or {}, epochs_done=len(history["epoch"]),
                final_test_accuracy=history["val_acc"][-1])
    if finished:
        (folder / STATE_FILE).unlink(missing_ok=True)
    else:
        arrays = {f"optimizer/{k}": v for k, v in opt_state.items()}
        arrays["__state__"] = np.array(json.dumps(state))
        with atomic_write(folder / STATE_FILE) as f:
            np.savez(f, **arrays)
    model.save(folder / MODEL_FILE, metadata=meta)
    save_history(history, folder / HISTORY_FILE)


def read_resume_state(folder):
    """(state dict, optimizer state dict, history) saved in a run's folder, or a ValueError."""
    folder = Path(folder)
    path = folder / STATE_FILE
    if not path.is_file():
        raise ValueError(f"{folder} holds no {STATE_FILE}: it is not an interrupted run "
                         "(a finished run has none left; a new run needs no --resume)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            state = json.loads(str(npz["__state__"]))
            opt_state = {k.split("/", 1)[1]: npz[k] for k in npz.files if k.startswith("optimizer/")}
        history = json.loads((folder / HISTORY_FILE).read_text())
    except (OSError, ValueError, KeyError) as err:
        raise ValueError(f"{folder}: cannot read the checkpoint ({type(err).__name__}: {err})") from None
    if len(history.get("epoch", [])) != state.get("epoch"):
        raise ValueError(f"{folder}: {HISTORY_FILE} has {len(history.get('epoch', []))} epochs but "
                         f"{STATE_FILE} says {state.get('epoch')}; the checkpoint is inconsistent")
    return state, opt_state, history


class TeacherTargets:
    """A trained teacher's class probabilities, softened by a temperature, for distillation.

    targets(idx, xb, mirrored) -> (len(idx), classes): the teacher's softmax(logits / T) for the
    training images idx as the student sees them, xb, of which the rows ``mirrored`` are mirror
    images. A teacher is only run forward, in evaluation mode, and never trained.

    Without random shifts an image reaches the student in one of two forms, as it is or
    mirrored, so the teacher's logits for both forms of every training image are computed once,
    before the first epoch (two passes over the training set, or one without flips), and
    looked up after that: exactly what running the teacher on every batch would give, for a
    fraction of the time. With shifts, every batch is new and the teacher runs on it.
    """

    def __init__(self, teacher, x_train, temperature, shift, flip):
        if not hasattr(teacher, "predict"):
            raise TypeError(f"train: teacher must be a trained model (with forward() and predict()), "
                            f"got {type(teacher).__name__}")
        self.teacher, self.temperature = teacher, float(temperature)
        self.cached = None
        if shift == 0:
            plain = teacher.predict(x_train)
            mirrored = teacher.predict(x_train[..., ::-1]) if flip else None     # flip: as train's
            self.cached = (plain, mirrored)

    def targets(self, idx, xb, mirrored):
        if self.cached is None:
            logits = self.teacher.predict(xb)
        else:
            plain, flipped = self.cached                        # (N_train, classes) each
            logits = plain[idx]                                 # (B, classes), a copy
            if mirrored is not None and mirrored.any():         # mirrored: (B,) booleans
                logits[mirrored] = flipped[idx[mirrored]]       # those rows: the mirror's logits
        return softmax(logits, self.temperature)


TEACHER_KEYS = ("model", "epochs", "lr")


def train_teacher(spec, x_train, y_train, *, seed=0, log=print, progress=False, fold=False, **settings):
    """The teacher a recipe names, trained: spec = dict(model=NAME, epochs=E, lr=LR).

    It is built with the student's seed and trained on the student's images with the student's
    batch size, optimizer, schedule and augmentation (``settings``), for its own epochs at its
    own peak learning rate. Same seed, data and thread count: the same teacher, to the bit, so
    a resumed run trains the very teacher it started with. fold=True trains it with its pools
    folded into its SCS layers (minisc.models.fold_pools: faster, the same numbers but for
    near-ties). Returned in evaluation mode."""
    if not (isinstance(spec, dict) and set(spec) == set(TEACHER_KEYS) and spec["model"] in MODELS):
        raise ValueError(f"train: a teacher given as a dict must be dict(model=NAME, epochs=E, lr=LR) "
                         f"with NAME one of {sorted(MODELS)}; got {spec!r}")
    teacher = build_model(spec["model"], rng=seed)
    if fold:
        teacher = fold_pools(teacher)
    log(f"training the teacher first: {spec['model']}, {spec['epochs']} epochs at peak lr {spec['lr']}")
    start = time.perf_counter()
    history = train(teacher, x_train, y_train, epochs=spec["epochs"], lr=spec["lr"], seed=seed,
                    progress=progress, log=lambda *a: None, **settings)
    log(f"teacher {spec['model']} ({teacher.n_params:,} parameters): {spec['epochs']} epochs in "
        f"{time.perf_counter() - start:.0f} s, accuracy on its training batches "
        f"{history['train_acc'][-1]:.4f}")
    teacher.eval()
    return teacher


def train(model, x_train, y_train, x_val=None, y_val=None, *, epochs=10, batch_size=64, lr=0.01,
          optimizer="adam", schedule="warmup-cosine", shift=0, flip=False, label_smoothing=0.0,
          teacher=None, distill_weight=0.5, distill_temperature=2.0, distill_soften_student=False,
          seed=0, progress=True,
          save_path=None, callback=None, log=print, checkpoint_dir=None, metadata=None,
          resume=False):
    """Train ``model`` with mini-batch gradient descent; returns the history.

    x_train: float32 (N, 1, H, W); y_train: int labels (N,); x_val, y_val likewise (optional,
    evaluated after every epoch). optimizer: "adam" or "sgd" (momentum 0.9). schedule:
    "warmup-cosine" or "one-cycle" (lr is then the peak rate). shift: random translation of up
    to this many pixels per image (data augmentation; 0 = off); flip: mirror a random half of
    every batch left-right (True), or only of the images whose labels are in a list (flip=[0, 1]
    mirrors about half of the classes 0 and 1, never the rest). label_smoothing: train towards
    (1 - eps) * onehot + eps / classes instead of onehot (see SoftmaxCrossEntropy; the losses in
    the history are then the smoothed ones for training, plain cross-entropy for x_val).
    teacher: a trained model to distil from (knowledge distillation), or a recipe's
    dict(model=NAME, epochs=E, lr=LR) naming one to train first (train_teacher): the target becomes
    (1 - distill_weight) * (the label's target) + distill_weight * the teacher's
    softmax(logits / distill_temperature) for the same, augmented, image (see
    SoftmaxCrossEntropy and TeacherTargets; the teacher is not changed). distill_soften_student:
    Hinton et al.'s form instead, the teacher's part matched by the student's own softmax
    softened by the same temperature, that part's loss scaled by temperature**2
    (SoftmaxCrossEntropy's student_temperature). seed
    drives the shuffling and the augmentation, so a run is reproducible, with or without a
    teacher: the same seed shuffles and mirrors the same images either way. save_path: if given,
    the final model is saved there (atomically).
    callback: if given, ``callback(epoch, model, history)`` is called after every epoch.
    checkpoint_dir: if given, after every epoch the model (with ``metadata`` plus epochs_done
    and final_test_accuracy), the history and the resume state are written there.
    resume: continue the run whose checkpoint is in ``checkpoint_dir`` (``model`` must hold
    its weights, e.g. minisc.load of its model.npz); the settings must be the run's own.

    Returns a dict of per-epoch lists: epoch, train_loss, train_acc, val_loss, val_acc, lr,
    seconds (cumulative wall time), train_seconds (the epoch's training steps alone: no scoring
    of x_val, no checkpoint), and p and q of every SCS layer (one entry per SCS layer, in model
    order, per epoch).
    """
    _check_settings(epochs, batch_size, lr, optimizer, schedule, shift, flip, seed, label_smoothing,
                    distill_weight, distill_temperature, distill_soften_student)
    if distill_weight == 0:
        teacher = None                      # nothing of a teacher would reach the target
    flip_classes = None if isinstance(flip, (bool, np.bool_)) else list(flip)
    x_train = np.asarray(x_train)
    if x_train.ndim != 4:
        raise ValueError(f"train: expected x_train of shape (N, C, H, W), got {x_train.shape}")
    # Labels must be integers: float labels would be truncated (3.7 -> class 3) without a word.
    y_train = check_labels(y_train, len(x_train), "train (y_train)").astype(np.int64)
    if x_val is not None:
        y_val = check_labels(y_val, len(x_val), "train (y_val)").astype(np.int64)
    if resume and checkpoint_dir is None:
        raise ValueError("train: resume=True needs the checkpoint_dir of the run to continue")
    rng = np.random.default_rng(seed)
    if isinstance(teacher, dict):
        teacher = train_teacher(teacher, x_train, y_train, seed=seed, log=log, progress=progress,
                                batch_size=batch_size, optimizer=optimizer, schedule=schedule,
                                shift=shift, flip=flip)
    loss_fn = SoftmaxCrossEntropy(label_smoothing, distill_weight if teacher is not None else 0.0,
                                  distill_temperature if distill_soften_student else 1.0)
    teacher_targets = None if teacher is None else TeacherTargets(
        teacher, x_train, distill_temperature, shift, flip)
    opt = Adam(model, lr=lr) if optimizer == "adam" else SGD(model, lr=lr, momentum=0.9)
    steps_per_epoch = math.ceil(len(y_train) / batch_size)
    total_steps = epochs * steps_per_epoch
    warmup = min(steps_per_epoch, total_steps // 5)
    history = {k: [] for k in ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds",
                               "train_seconds", "p", "q")}
    step, first_epoch, seconds_before = 0, 1, 0.0
    if resume:
        # Pick up exactly where the checkpoint left off: the optimizer's memory, the step (the
        # schedule's position) and the random stream (the next shuffles and shifts).
        state, opt_state, history = read_resume_state(checkpoint_dir)
        if state["optimizer"] != optimizer or state["epochs"] != epochs \
                or state["steps_per_epoch"] != steps_per_epoch:
            raise ValueError(f"train: {checkpoint_dir} was a run of {state['epochs']} epochs of "
                             f"{state['steps_per_epoch']} steps with {state['optimizer']}; resume it "
                             "with the same settings and data")
        opt.load_state_dict(opt_state)
        rng.bit_generator.state = state["rng"]
        step, first_epoch = state["step"], state["epoch"] + 1
        seconds_before = history["seconds"][-1] if history["seconds"] else 0.0
        # (a checkpoint written before train_seconds was kept has none for its epochs)
        history.setdefault("train_seconds", [None] * len(history["epoch"]))
    start = time.perf_counter() - seconds_before
    saved_epoch = None           # the last epoch whose checkpoint this call has written
    try:
        tqdm = _tqdm(progress)
        for epoch in range(first_epoch, epochs + 1):
            epoch_start = time.perf_counter()
            order = rng.permutation(len(y_train))
            seen, loss_sum, correct = 0, 0.0, 0
            bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch}/{epochs}", leave=False, unit="batch")
            for b in bar:
                idx = order[b * batch_size:(b + 1) * batch_size]
                xb = random_shift(x_train[idx], shift, rng)
                yb = y_train[idx]
                mirrored = None
                if flip:
                    xb, mirrored = random_flip(xb, rng, yb, flip_classes, return_mask=True)
                if schedule == "one-cycle":
                    opt.lr, beta1 = one_cycle_at(step, total_steps, lr)
                    if isinstance(opt, Adam):
                        opt.betas = (beta1, opt.betas[1])
                else:
                    opt.lr = lr_at(step, total_steps, warmup, lr)
                logits = model.forward(xb)
                soft = None if teacher_targets is None else teacher_targets.targets(idx, xb, mirrored)
                loss = loss_fn.forward(logits, yb, soft)
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
            train_seconds = time.perf_counter() - epoch_start
            val_loss, val_acc = evaluate(model, x_val, y_val) if x_val is not None else (None, None)
            history["epoch"].append(epoch)
            history["train_loss"].append(loss_sum / seen)
            history["train_acc"].append(correct / seen)
            history["val_loss"].append(val_loss)
            history["val_acc"].append(val_acc)
            history["lr"].append(opt.lr)
            history["seconds"].append(time.perf_counter() - start)
            history["train_seconds"].append(train_seconds)
            p_now, q_now = scs_layer_state(model)
            history["p"].append(p_now)
            history["q"].append(q_now)
            msg = (f"epoch {epoch:3d}/{epochs}  loss {loss_sum / seen:.4f}  train acc {correct / seen:.4f}")
            if val_acc is not None:
                msg += f"  test loss {val_loss:.4f}  test acc {val_acc:.4f}"
            log(msg + f"  ({history['seconds'][-1]:.0f} s)")
            if checkpoint_dir is not None:
                state = {"epoch": epoch, "step": step, "epochs": epochs, "steps_per_epoch": steps_per_epoch,
                         "optimizer": optimizer, "rng": rng.bit_generator.state}
                # A Ctrl-C while the files are written waits until all of them describe this epoch.
                with _interrupts_deferred():
                    _write_checkpoint(checkpoint_dir, model, history, metadata, state, opt.state_dict(),
                                      finished=epoch == epochs)
                    saved_epoch = epoch
            if callback is not None:
                callback(epoch, model, history)
    except KeyboardInterrupt as stop:
        # Tell the caller which epoch the checkpoint folder holds now, for its message.
        stop.checkpoint_epoch = saved_epoch
        raise
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
def shift_type(text):
    value = non_negative_int(text)
    if value > MAX_SHIFT:
        raise argparse.ArgumentTypeError(f"expected an integer from 0 to {MAX_SHIFT} (pixels), got {text}")
    return value


def smoothing_type(text):
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a number from 0 up to (not including) 1, e.g. 0.1; "
                                         f"got {text!r}")
    return value


def weight_type(text):
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, e.g. 0.5; got {text!r}")
    return value


# The flags that set how a run trains. --resume takes them from the run itself, so giving one
# with it is a contradiction, refused rather than silently ignored.
_RUN_FLAGS = ("model", "data", "epochs", "lr", "batch_size", "schedule", "shift", "flip",
              "label_smoothing", "teacher", "distill_weight", "distill_temperature",
              "distill_soften_student", "seed", "out", "quick", "threads")
_DISTILL_FLAGS = ("teacher", "distill_weight", "distill_temperature", "distill_soften_student")


def _parser():
    parser = OneLineParser(
        prog="python -m minisc.train",
        description="Train a minisc network on 28x28 digits or clothes, print its test accuracy and save it. "
                    "After every epoch the model and history are saved in --out; Ctrl-C stops cleanly and "
                    "--resume continues the run.")
    parser.add_argument("--model", default=None, choices=sorted(MODELS), help="default: scs")
    parser.add_argument("--data", default=None, choices=["sample", "mnist", "fashion-mnist", "auto"],
                        help="default: the model's recipe (minisc.models.RECIPES)")
    parser.add_argument("--epochs", type=positive_int, default=None, help="default: the model's recipe")
    parser.add_argument("--lr", type=positive_float, default=None, help="(peak) learning rate")
    parser.add_argument("--batch-size", type=positive_int, default=None)
    parser.add_argument("--schedule", default=None, choices=SCHEDULES)
    parser.add_argument("--shift", type=shift_type, default=None, help="random shift augmentation, pixels")
    parser.add_argument("--flip", default=None, action=argparse.BooleanOptionalAction,
                        help="random left-right flips (clothes only: digits are not symmetric)")
    parser.add_argument("--label-smoothing", type=smoothing_type, default=None, metavar="EPS",
                        help="train towards (1 - EPS) * onehot + EPS / classes (default: the recipe's, "
                             "usually 0)")
    parser.add_argument("--teacher", default=None, metavar="MODEL.npz",
                        help="distil from this trained model (a file saved by minisc, e.g. an earlier "
                             "run's model.npz): train towards its class probabilities as well as the labels")
    parser.add_argument("--distill-weight", type=weight_type, default=None, metavar="A",
                        help="with --teacher: the teacher's share of the target (default 0.5)")
    parser.add_argument("--distill-temperature", type=positive_float, default=None, metavar="T",
                        help="with --teacher: the temperature that softens its probabilities (default 2)")
    parser.add_argument("--distill-soften-student", default=None, action=argparse.BooleanOptionalAction,
                        help="with --teacher: match them with the student's probabilities softened by "
                             "the same temperature, that part of the loss scaled by T^2 (Hinton et al.'s "
                             "form; default: the recipe's, else off)")
    parser.add_argument("--seed", type=non_negative_int, default=None, help="default: 0")
    parser.add_argument("--out", default=None, help="folder for model.npz and history.json (default: runs/latest)")
    parser.add_argument("--quick", action="store_true", default=None,
                        help="tiny data and (unless --epochs says otherwise) 1 epoch: a smoke test")
    parser.add_argument("--resume", metavar="DIR", default=None,
                        help="continue the interrupted run saved in DIR, with its own settings")
    parser.add_argument("--timeout", type=positive_float, default=None, metavar="SECONDS",
                        help="deadline for downloading one data file from one mirror")
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="threads minisc splits each batch across (default: every CPU; a run "
                             "repeats bit for bit with the same seed and thread count)")
    parser.add_argument("--no-progress", action="store_true")
    return parser


def _check_out(parser, out):
    """--out must be a folder we can write in, or not exist yet (it is then created)."""
    if out.exists() and not out.is_dir():
        parser.error(f"argument --out: {out} is a file; expected a folder for model.npz and history.json "
                     "(an existing one, or a new name)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        parser.error(f"argument --out: cannot create the folder {out} ({err.strerror or err})")
    if not os.access(out, os.W_OK | os.X_OK):
        parser.error(f"argument --out: the folder {out} is not writable; expected a folder you can write in")


def _check_teacher_file(parser, path, flag="argument --teacher"):
    """--teacher must name a model file minisc can load (and a resumed run's must still be there)."""
    if not Path(path).is_file():
        parser.error(f"{flag}: {path} is not a file; expected a model saved by minisc, "
                     "e.g. runs/scs/model.npz")
    try:
        teacher = load_model(path)
    except (ValueError, OSError) as err:
        parser.error(f"{flag}: cannot load {path}: {err}")
    if teacher.input_shape != (1, 28, 28) or tuple(teacher.output_shapes()[-1]) != (10,):
        parser.error(f"{flag}: {path} does not take 28x28 images to 10 class scores (it takes "
                     f"{teacher.input_shape} to {tuple(teacher.output_shapes()[-1])}); a teacher "
                     "must, like the student")


def _plan(parser, args):
    """(model name, data, quick, seed, settings, out, resuming) for this invocation, all checked."""
    if args.resume is None:
        name = args.model or "scs"
        settings = dict(RECIPES[name])
        for key in ("data", "epochs", "lr", "batch_size", "schedule", "shift", "flip", "label_smoothing",
                    *_DISTILL_FLAGS):
            if getattr(args, key) is not None:
                settings[key] = getattr(args, key)
        if "teacher" not in settings and any(getattr(args, k) is not None for k in _DISTILL_FLAGS[1:]):
            parser.error("arguments --distill-weight, --distill-temperature and "
                         "--distill-soften-student need --teacher MODEL.npz, the trained model to "
                         "distil from")
        if isinstance(settings.get("teacher"), str):         # a file; a recipe's teacher is a dict
            _check_teacher_file(parser, settings["teacher"])
        if args.quick and isinstance(settings.get("teacher"), dict):
            settings["teacher"] = dict(settings["teacher"], epochs=1)   # a smoke test: a 1-epoch teacher
        if args.quick and args.epochs is None:
            settings["epochs"] = 1
        out = Path(args.out or "runs/latest")
        _check_out(parser, out)
        return name, settings.pop("data"), bool(args.quick), args.seed or 0, settings, out, False
    given = [f"--{k.replace('_', '-')}" for k in _RUN_FLAGS if getattr(args, k) is not None]
    if given:
        parser.error(f"argument --resume: continues a run with its own settings; drop {', '.join(given)}")
    out = Path(args.resume)
    if not (out / MODEL_FILE).is_file() or not (out / STATE_FILE).is_file():
        what = "a finished run (nothing left to do)" if (out / MODEL_FILE).is_file() else "not a run's folder"
        parser.error(f"argument --resume: {out} is {what}; expected the folder of an interrupted run, "
                     f"holding {MODEL_FILE} and {STATE_FILE}")
    try:
        meta = load_model(out / MODEL_FILE).metadata
        name, data, quick, seed, settings = (meta[k] for k in ("model", "data", "quick", "seed", "settings"))
    except (ValueError, KeyError) as err:
        parser.error(f"argument --resume: cannot continue {out}: {err}")
    if isinstance(settings.get("teacher"), str):             # the run's teacher file, still there?
        _check_teacher_file(parser, settings["teacher"], "argument --resume: the run's teacher")
    return name, data, quick, seed, settings, out, True


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    name, data_name, quick, seed, settings, out, resuming = _plan(parser, args)
    done = load_model(out / MODEL_FILE).metadata["epochs_done"] if resuming else 0
    try:
        return _run(args, name, data_name, quick, seed, settings, out, resuming, done)
    except KeyboardInterrupt as stop:
        last = getattr(stop, "checkpoint_epoch", None) or done
        if last == settings["epochs"]:
            print(f"\nstopped by Ctrl-C after the last epoch was saved: the finished run is in {out}/",
                  file=sys.stderr)
        elif last:
            print(f"\nstopped by Ctrl-C; the checkpoint after epoch {last} of {settings['epochs']} is in "
                  f"{out}/ ({MODEL_FILE}, {HISTORY_FILE}); continue with: python -m minisc.train "
                  f"--resume {out}", file=sys.stderr)
        else:
            print(f"\nstopped by Ctrl-C before the first epoch was done; nothing was written to {out}/",
                  file=sys.stderr)
        return 130                      # the usual exit status after Ctrl-C


def _run(args, name, data_name, quick, seed, settings, out, resuming, done):
    try:
        data = load_dataset(data_name, quick=quick, timeout=args.timeout)
    except (mdata.DownloadError, mdata.CorruptDataError, OSError) as err:
        print(f"error: cannot load the data: {err}", file=sys.stderr)
        return 1
    if resuming:
        model = load_model(out / MODEL_FILE)
        print(f"resuming {out} after epoch {done} of {settings['epochs']}")
        # the thread count of the interrupted run, so that the continuation adds its sums in
        # the same order (files from before threads existed ran on one)
        set_num_threads(model.metadata.get("threads", 1))
    else:
        if args.threads is not None:
            set_num_threads(args.threads)
        model = build_model(name, rng=seed)
        if (out / STATE_FILE).exists():
            print(f"note: {out} holds an interrupted run; this new run replaces it once its first epoch is "
                  f"done (to continue that one instead: python -m minisc.train --resume {out})")
    print(model.summary())
    print(f"training: {settings}, seed {seed}")
    metadata = {"model": name, "data": data_name, "epochs": settings["epochs"], "quick": quick,
                "seed": seed, "settings": settings, "threads": get_num_threads()}
    # --teacher names a file, and train() wants the model itself; a recipe's teacher,
    # dict(model, epochs, lr), train() trains first (the same teacher again on --resume).
    teacher = ({"teacher": load_model(settings["teacher"])} if isinstance(settings.get("teacher"), str)
               else {})
    history = train(model, data["x_train"], data["y_train"], data["x_test"], data["y_test"],
                    seed=seed, progress=not args.no_progress, checkpoint_dir=out, metadata=metadata,
                    resume=resuming, **dict(settings, **teacher))
    print(f"test accuracy: {history['val_acc'][-1]:.4f} on {len(data['y_test']):,} held-out images "
          f"({data['description']}); training took {history['seconds'][-1]:.0f} s")
    print(f"saved model:   {out / MODEL_FILE}  (minisc.load it)")
    print(f"saved history: {out / HISTORY_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
