"""What every lesson shares: quick mode, where figures go, headings, and the digits.

A lesson starts with ``import _lesson`` (the lesson's own folder is on ``sys.path`` when you
run ``python lessons/03_forward_pass.py``, so this file is found from the repository root or
from inside ``lessons/``). Importing it

- puts this checkout's ``minisc`` first on ``sys.path``, so the lessons use the code you are
  reading and editing, installed or not;
- picks a Matplotlib backend: when there is no display (Linux without ``DISPLAY`` or
  ``WAYLAND_DISPLAY``) or in quick mode, the file-only "Agg" backend, so lessons run on
  servers and in tests; a ``MPLBACKEND`` you set yourself always wins.

Every lesson is also a notebook: ``# %% [markdown]`` cells hold the prose, ``# %%`` cells the
code. Nothing here relies on the lesson's ``__file__`` (a notebook kernel has none): a lesson
names itself in ``start("06_train_scs")``, and quick mode also comes from the environment.

The API, kept small on purpose:

    QUICK                      True with ``--quick`` on the command line or MINISC_QUICK=1
    FULL                       True with ``--full`` on the command line or MINISC_FULL=1
    IN_NOTEBOOK                True inside a notebook kernel (command-line flags are ignored)
    ROOT                       the repository root (a pathlib.Path)
    GRADCHECK_THRESHOLD        the worst relative error gradcheck accepts as a right gradient
    start(name, **options)     check the command line, return the lesson's figure folder;
                               extra options (e.g. lr=0.01) become flags (--lr) of the lesson
    options                    the parsed options of start() (an argparse.Namespace)
    output_dir(name)           the figure folder of lesson ``name``, created
    save(fig, name, out_dir)   write name.png, print its path, close or keep it for finish()
    finish()                   show the kept figures (only with a display), say where all went
    section(title)             print a heading (in a script; a notebook has its own headings)
    say(text)                  print a (triple-quoted, indented) explanation, dedented
    try_this(*ideas)           print the "Try this" list that ends a lesson
    rng(seed=0)                a seeded numpy Generator
    load_digits(...)           float32 digits for a network, from the embedded sample or MNIST
    evaluate(model, x, y)      (loss, accuracy), in inference mode when the model has one
    thin(data, step)           in quick mode, every step-th digit of a load_dataset() dict
"""

import argparse
import importlib
import os
import re
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

if (ROOT / "minisc" / "__init__.py").is_file() and str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


IN_NOTEBOOK = "ipykernel" in sys.modules     # a kernel's sys.argv holds its own arguments


def _flag(option, env_var):
    on_command_line = not IN_NOTEBOOK and option in sys.argv[1:]
    return on_command_line or os.environ.get(env_var, "").strip().lower() in ("1", "true", "yes")


QUICK = _flag("--quick", "MINISC_QUICK")
FULL = _flag("--full", "MINISC_FULL")


# One threshold for every "is this gradient right?" in the lessons: minisc.gradcheck's own.
# gradcheck compares the backward pass with central differences in float64; a right backward
# agrees to ~1e-7 or better, a wrong one is off by 1e-3 to 1 (lesson 4, step 1 explains it).
GRADCHECK_THRESHOLD = importlib.import_module("minisc.gradcheck").THRESHOLD


# ---------------------------------------------------------------------------------------------
# Matplotlib: choose a backend *before* pyplot is imported anywhere.
def _in_notebook():
    return IN_NOTEBOOK


def _has_display():
    if sys.platform.startswith("linux") or sys.platform.startswith("freebsd"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True                      # macOS and Windows always have a screen to draw on


import matplotlib  # noqa: E402

if not os.environ.get("MPLBACKEND") and "matplotlib.pyplot" not in sys.modules \
        and not _in_notebook() and (QUICK or not _has_display()):
    matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

_FILE_ONLY = {"agg", "cairo", "pdf", "pgf", "ps", "svg", "template"}


def _show_mode():
    """'window' (plt.show opens windows), 'notebook' (figures appear by themselves) or 'files'."""
    backend = matplotlib.get_backend().lower()
    if "inline" in backend:
        return "notebook"
    if backend in _FILE_ONLY or QUICK:
        return "files"
    return "window"


_kept = []            # figures waiting for finish() to show them
_saved_dirs = []      # output folders used, for finish()'s last words


# ---------------------------------------------------------------------------------------------
# starting a lesson: its command line and its output folder
options = argparse.Namespace()


def start(name, **extra):
    """Begin lesson ``name`` (e.g. "06_train_scs"): check its flags, return its figure folder.

    Every lesson accepts --quick and --full. Keyword arguments add options with their
    defaults: ``start("06_train_scs", lr=0.01, shift=2)`` accepts ``--lr 0.1 --shift 0``
    (underscores become dashes: p_init -> --p-init; the type is the default's type, and a
    default of None takes an int). An unknown flag stops the lesson with a message that
    lists the known ones. The values land in ``_lesson.options`` (``options.lr``).

    In a notebook the command line belongs to the kernel: the defaults are used; edit them
    in the cell that calls start().
    """
    parser = argparse.ArgumentParser(prog=f"python lessons/{name}.py",
                                     description=f"Lesson {name}. Figures go to output/{name}/.")
    parser.add_argument("--quick", action="store_true",
                        help="a few seconds: fewer digits and steps (or MINISC_QUICK=1)")
    parser.add_argument("--full", action="store_true", help="use the full MNIST (or MINISC_FULL=1)")
    for key, default in extra.items():
        kind = int if default is None else type(default)
        parser.add_argument("--" + key.replace("_", "-"), dest=key, type=kind, default=default,
                            help=f"default: {default}")
    parsed = parser.parse_args([] if IN_NOTEBOOK else sys.argv[1:])
    options.__dict__.clear()
    options.__dict__.update({k: v for k, v in vars(parsed).items() if k in extra})
    return output_dir(name)


def output_dir(lesson):
    """The folder for a lesson's figures: ``<repo>/output/<lesson name>/``, created.

    lesson : the lesson's name, e.g. "03_forward_pass" (a path works too: its name without
    ".py" is used). Set the environment variable MINISC_OUTPUT to use another parent folder
    than ``<repo>/output``.
    """
    parent = os.environ.get("MINISC_OUTPUT")
    parent = Path(parent).expanduser().resolve() if parent else ROOT / "output"
    folder = parent / Path(str(lesson)).stem
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _shown_path(path):
    """path relative to the current folder when it lies below it (shorter to read)."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


def save(fig, name, out_dir):
    """Save ``fig`` as ``<out_dir>/<name>.png`` (110 dpi) and print where it went.

    With a screen, the figure stays open and finish() shows it; otherwise it is closed.
    Returns the path of the PNG.
    """
    path = Path(out_dir) / (name if name.endswith(".png") else f"{name}.png")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    print(f"saved figure: {_shown_path(path)}")
    if path.parent not in _saved_dirs:
        _saved_dirs.append(path.parent)
    mode = _show_mode()
    if mode == "window":
        _kept.append(fig)
    elif mode == "files":
        plt.close(fig)
    # in a notebook the figure appears below the cell and is closed there
    return path


def finish():
    """End a lesson: show the figures kept by save() (when there is a screen), or say where
    they are. Blocks until you close the figure windows."""
    for folder in _saved_dirs:
        print(f"\nAll figures of this lesson are in {_shown_path(folder)}")
    if _kept and _show_mode() == "window":
        print("Showing the figures: close their windows to end the lesson.")
        plt.show()
    _kept.clear()


# ---------------------------------------------------------------------------------------------
# printing
def section(title):
    """Print a heading for the next step of a lesson (a notebook shows its Markdown heading)."""
    if not IN_NOTEBOOK:
        print(f"\n{'=' * 78}\n{title}\n{'=' * 78}")


def say(text, width=90):
    """Print an explanation written as an indented triple-quoted string.

    A blank line comes first; the common indent is removed and each paragraph (separated by blank lines) is re-wrapped
    to ``width`` columns, so numbers filled in by f-strings never leave ragged lines.
    Paragraphs indented further than the rest (code, formulas, tables) are printed as written.
    """
    paragraphs = textwrap.dedent(text).strip("\n").split("\n\n")
    for paragraph in paragraphs:
        print()
        if paragraph.startswith((" ", "\t")):
            print(paragraph)
        else:
            # keep short formulas such as "p > 1" on one line: glue the operator to its neighbours
            glued = re.sub(r" ([<>=]=?|[-+*/]) ", "\xa0\\1\xa0", " ".join(paragraph.split()))
            print(textwrap.fill(glued, width=width).replace("\xa0", " "))


def try_this(*ideas):
    """Print the numbered "Try this" experiments that close a lesson."""
    section("Try this")
    for i, idea in enumerate(ideas, 1):
        lines = textwrap.wrap(textwrap.dedent(idea).strip(), width=74)
        print(f"{i}. " + "\n   ".join(lines))


# ---------------------------------------------------------------------------------------------
# randomness and data
def rng(seed=0):
    """A numpy random Generator; the same seed gives the same lesson every run."""
    return np.random.default_rng(seed)


def _stratified_head(labels, n, n_classes=10):
    """Indices of the first ~n/n_classes examples of each class (in the given order)."""
    per_class = max(1, n // n_classes)
    keep = [np.flatnonzero(labels == k)[:per_class] for k in range(n_classes)]
    return np.sort(np.concatenate(keep))


def load_digits(n_train=None, n_val=None, *, full=None, standardize=False, seed=0, verbose=True):
    """Digits ready for a network: float32 images (N, 1, 28, 28) and int64 labels (N,).

    Parameters
    ----------
    n_train, n_val : int, optional
        Keep about this many training / validation digits, the same number of each class.
        Default: all of them, or 500 / 200 in quick mode.
    full : bool, optional
        Use the full MNIST (downloaded once with ``python -m minisc.data download mnist``):
        its first 55,000 training digits for training and the last 5,000 for validation.
        Default: the FULL flag (``--full`` or MINISC_FULL=1). When the files are missing and
        cannot be downloaded, the embedded sample is used instead, with a note.
    standardize : passed to ``minisc.data.to_float`` (False: pixels in [0, 1]).
    seed : the fixed shuffle. Both splits come in one shuffled order, so any slice such as
        ``x_train[:16]`` holds a mix of classes (the files themselves are sorted by class).
    verbose : print which digits are used and how to get more.

    Returns
    -------
    x_train (N, 1, 28, 28) float32, y_train (N,) int64, x_val (M, 1, 28, 28), y_val (M,)

    The default is the embedded sample: 5,000 real MNIST training digits that ship with
    minisc, split once and for all into 4,500 for training and 500 for validation (see
    ``datasets/README.md``).
    """
    from minisc import data

    full = FULL if full is None else full
    source = None                    # set once the digits are loaded
    if full:
        try:
            images, labels = data.load_mnist("train")
            tr_img, tr_lab = images[:55000], labels[:55000]
            va_img, va_lab = images[55000:], labels[55000:]
            source = "full MNIST: its first 55,000 training digits, the last 5,000 held out for validation"
        except (OSError, data.DownloadError, data.CorruptDataError) as exc:
            print(f"Could not load the full MNIST ({type(exc).__name__}); "
                  "using the embedded sample instead.")
    if source is None:
        tr_img, tr_lab = data.load_mnist_sample("train")
        va_img, va_lab = data.load_mnist_sample("validation")
        source = "the embedded MNIST sample: 4,500 training and 500 validation digits"

    if n_train is None and QUICK:
        n_train = 500
    if n_val is None and QUICK:
        n_val = 200
    if n_train is not None and n_train < len(tr_lab):
        idx = _stratified_head(tr_lab, n_train)
        tr_img, tr_lab = tr_img[idx], tr_lab[idx]
    if n_val is not None and n_val < len(va_lab):
        idx = _stratified_head(va_lab, n_val)
        va_img, va_lab = va_img[idx], va_lab[idx]

    shuffle = np.random.default_rng(seed)
    order_tr, order_va = shuffle.permutation(len(tr_lab)), shuffle.permutation(len(va_lab))
    x_train = data.to_float(tr_img[order_tr], standardize=standardize)
    x_val = data.to_float(va_img[order_va], standardize=standardize)
    y_train = tr_lab[order_tr].astype(np.int64)
    y_val = va_lab[order_va].astype(np.int64)
    if verbose:
        print(f"Data: {source}.")
        print(f"Using {len(y_train):,} training and {len(y_val):,} validation digits"
              f"{' (quick mode)' if QUICK else ''}, images {x_train.shape[1:]} float32.")
        if not source.startswith("full"):
            print("Full MNIST (60,000 + 10,000 digits): python -m minisc.data download mnist, "
                  "then add --full.")
    return x_train, y_train, x_val, y_val


def evaluate(model, x, y):
    """(mean cross-entropy loss, accuracy) of ``model`` on x, y: minisc.train.evaluate, run in
    inference mode (``model.eval()``, which keeps no backward caches) when the model has it,
    and switched back to training mode afterwards."""
    from minisc.train import evaluate as _evaluate

    switches = [model] if hasattr(model, "eval") else list(getattr(model, "layers", []))
    switches = [m for m in switches if hasattr(m, "eval") and hasattr(m, "train")]
    for m in switches:
        m.eval()
    try:
        return _evaluate(model, x, y)
    finally:
        for m in switches:
            m.train()


def thin(data, step=2):
    """In quick mode, keep every ``step``-th training and test digit of a ``load_dataset`` dict
    (all classes stay: the subsets are taken in the file's order, which is by class); outside
    quick mode, return ``data`` as it is. For lessons that train several networks."""
    if not QUICK:
        return data
    out = dict(data)
    for key in ("x_train", "y_train", "x_test", "y_test"):
        out[key] = data[key][::step]
    out["description"] = data["description"] + f", every {step}th digit"
    return out
