"""Every numbered lesson runs from start to finish in quick mode, headless, and saves figures:
as a script and as a notebook.

As a script, each lesson runs in its own Python process, the way a student runs it
(``python lessons/NN_name.py --quick`` from the repository root), with the Agg backend and its
figures redirected to a temporary folder shared by all lessons (so lesson 7 opens the model
lesson 6 saved, as in class). As a notebook, each lesson is converted with Jupytext and
executed cell by cell with nbclient in a fresh kernel (MINISC_QUICK=1); those tests are
skipped, saying why, when jupytext, nbclient or ipykernel is missing (``pip install -e
".[dev]"`` installs them). New lessons are picked up by the glob.

These are the slowest tests of the suite. Skip them with ``python -m pytest -m "not lessons"``.
"""

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.lessons

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "lessons").glob("[0-9][0-9]_*.py"))
# Quick lessons take seconds on a quiet machine; these limits only catch a hang, generously
# enough for a busy shared machine.
TIMEOUT = 300                       # seconds per lesson run as a script
CELL_TIMEOUT = 300                  # seconds per notebook cell

# Lessons that print "nan" on purpose (lesson 4 shows the NaN that eps prevents). For them the
# check is reversed: the demonstration must actually happen.
SHOWS_NAN = {"04_backward_pass"}
NAN = re.compile(r"\bnan\b")        # how NumPy prints a NaN; prose says "NaN"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_the_lessons_are_found():
    names = [p.stem for p in LESSONS]
    for expected in ("01_the_data", "02_cosine_similarity", "03_forward_pass",
                     "04_backward_pass", "05_maxabs_pooling"):
        assert expected in names


@pytest.fixture(scope="module")
def shared_output(tmp_path_factory):
    """One output folder for every lesson of a run: lesson 7 finds lesson 6's model there."""
    return tmp_path_factory.mktemp("lesson_output")


def _check_figures(folder, tail):
    pngs = sorted(folder.glob("*.png"))
    assert pngs, f"no PNG in {folder}{tail}"
    for png in pngs:
        with open(png, "rb") as fh:
            assert fh.read(8) == PNG_SIGNATURE, f"{png.name} is not a PNG"
        assert png.stat().st_size > 2000, f"{png.name} is suspiciously small"


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_lesson_runs_quick_and_saves_figures(lesson, shared_output):
    tmp_path = shared_output
    env = dict(os.environ, MPLBACKEND="Agg", MINISC_OUTPUT=str(tmp_path), PYTHONIOENCODING="utf-8")
    env.pop("MINISC_FULL", None)
    env.pop("MINISC_QUICK", None)                  # --quick alone must be enough
    proc = subprocess.run([sys.executable, str(lesson.relative_to(ROOT)), "--quick"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    tail = f"\n--- stdout (end) ---\n{proc.stdout[-3000:]}\n--- stderr ---\n{proc.stderr[-3000:]}"
    assert proc.returncode == 0, f"{lesson.name} exited with {proc.returncode}{tail}"

    _check_figures(tmp_path / lesson.stem, tail)
    assert "saved figure:" in proc.stdout
    if lesson.stem == "06_train_scs":
        for name in ("training_curves", "kernels_at_epochs", "p_and_q"):
            assert (tmp_path / lesson.stem / f"{name}.png").is_file(), f"lesson 6 did not draw {name}"
        with open(tmp_path / lesson.stem / "kernels.gif", "rb") as fh:
            assert fh.read(6) in (b"GIF89a", b"GIF87a"), "lesson 6's animation is not a GIF"
    if lesson.stem == "07_inside_the_network":
        assert "loaded " in proc.stdout and "06_train_scs" in proc.stdout, (
            f"lesson 7 should open the model lesson 6 saved{tail}")
        assert "WARNING" in proc.stdout and "quick run" in proc.stdout, (
            f"lesson 7 must warn that lesson 6's quick model comes from a quick run{tail}")

    if lesson.stem in SHOWS_NAN:
        assert NAN.search(proc.stdout), f"{lesson.name} should demonstrate a nan{tail}"
    else:
        assert not NAN.search(proc.stdout), f"{lesson.name} printed a nan{tail}"
    assert "RuntimeWarning" not in proc.stderr, f"{lesson.name} raised a numerical warning{tail}"


def test_quick_mode_and_output_folder_come_from_the_environment(tmp_path):
    """MINISC_QUICK=1 works like --quick, and MINISC_OUTPUT chooses where figures go."""
    code = ("import _lesson, sys; "
            "print(_lesson.QUICK, _lesson.output_dir('lessons/99_demo.py'), _lesson.ROOT)")
    env = dict(os.environ, MPLBACKEND="Agg", MINISC_OUTPUT=str(tmp_path), MINISC_QUICK="1")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT / "lessons", env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    quick, folder, root = proc.stdout.split()
    assert quick == "True"
    assert Path(folder) == tmp_path / "99_demo" and Path(folder).is_dir()
    assert Path(root) == ROOT


def test_load_digits_gives_float_batches_of_every_class():
    """_lesson.load_digits: float32 (N, 1, 28, 28) in [0, 1], int64 labels, stratified, mixed."""
    code = """
import json, _lesson, numpy as np
x_tr, y_tr, x_va, y_va = _lesson.load_digits(n_train=300, n_val=100, verbose=False)
qx_tr, qy_tr, qx_va, qy_va = _lesson.load_digits(verbose=False)
print(json.dumps(dict(
    shapes=[x_tr.shape, x_va.shape], dtypes=[str(x_tr.dtype), str(y_tr.dtype)],
    lo=float(x_tr.min()), hi=float(x_tr.max()),
    counts=np.bincount(y_tr).tolist() + np.bincount(y_va).tolist(),
    first20=len(set(y_tr[:20].tolist())),
    quick=[len(qy_tr), len(qy_va)])))
"""
    env = dict(os.environ, MPLBACKEND="Agg", MINISC_QUICK="1")
    env.pop("MINISC_FULL", None)
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT / "lessons", env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got["shapes"] == [[300, 1, 28, 28], [100, 1, 28, 28]]
    assert got["dtypes"] == ["float32", "int64"]
    assert got["lo"] == 0.0 and got["hi"] == 1.0
    assert got["counts"] == [30] * 10 + [10] * 10
    assert got["first20"] >= 5                      # shuffled: not sorted by class
    assert got["quick"] == [500, 200]


def test_no_lesson_relies_on_dunder_file():
    """A notebook kernel has no __file__: lessons name themselves in _lesson.start()."""
    for lesson in LESSONS:
        text = lesson.read_text(encoding="utf-8")
        assert "__file__" not in text, f"{lesson.name} uses __file__"
        assert f'_lesson.start("{lesson.stem}"' in text, f"{lesson.name} should call _lesson.start"
        assert "# %% [markdown]" in text, f"{lesson.name} has no Markdown cell"


def test_lesson_flags_are_used_and_unknown_flags_refused(tmp_path):
    """start() turns keyword options into flags; a typo stops the lesson with a clear message."""
    code = ("import _lesson; out = _lesson.start('99_demo', lr=0.01, shift=2, epochs=None); "
            "print(_lesson.options.lr, _lesson.options.shift, _lesson.options.epochs, out.name)")
    env = dict(os.environ, MPLBACKEND="Agg", MINISC_OUTPUT=str(tmp_path))

    def run(*flags):
        return subprocess.run([sys.executable, "-c", code, *flags], cwd=ROOT / "lessons", env=env,
                              capture_output=True, text=True, timeout=60)

    assert run("--lr", "0.1", "--shift", "0", "--epochs", "3").stdout.split() == ["0.1", "0", "3", "99_demo"]
    assert run().stdout.split() == ["0.01", "2", "None", "99_demo"]
    bad = run("--shfit", "0")
    assert bad.returncode == 2 and "unrecognized arguments: --shfit" in bad.stderr
    assert "--shift" in bad.stderr                           # the usage line lists the real flags


def test_lesson_6_accepts_the_flags_of_its_try_this():
    """Every flag that lesson 6's "Try this" names is an option of the lesson."""
    text = (ROOT / "lessons" / "06_train_scs.py").read_text(encoding="utf-8")
    try_this = text[text.index("_lesson.try_this("):]
    flags = set(re.findall(r"--([a-z][a-z-]*)", try_this))
    assert {"epochs", "shift", "lr", "p-init", "seed"} <= flags
    start = re.search(r"_lesson\.start\((.*?)\)\n", text).group(1)
    for flag in flags:
        assert f"{flag.replace('-', '_')}=" in start, f"lesson 6 names --{flag} but does not accept it"


# ---------------------------------------------------------------------------------------------
# the lessons as notebooks
_NOTEBOOK_TOOLS = ("jupytext", "nbclient", "ipykernel")
_MISSING = [name for name in _NOTEBOOK_TOOLS if importlib.util.find_spec(name) is None]


@pytest.mark.skipif(bool(_MISSING), reason=f"notebook tools not installed: {', '.join(_MISSING)} "
                    "(pip install -e '.[dev]' installs them)")
@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_lesson_runs_as_a_notebook(lesson, tmp_path):
    import jupytext
    from nbclient import NotebookClient

    notebook = jupytext.read(lesson)
    markdown = [cell for cell in notebook.cells if cell.cell_type == "markdown"]
    assert len(markdown) >= 3, f"{lesson.name}: the prose should be Markdown cells"
    saved = {key: os.environ.get(key) for key in ("MPLBACKEND", "MINISC_QUICK", "MINISC_OUTPUT", "MINISC_FULL")}
    os.environ.update(MPLBACKEND="Agg", MINISC_QUICK="1", MINISC_OUTPUT=str(tmp_path))
    os.environ.pop("MINISC_FULL", None)
    try:                                   # the kernel inherits this environment
        client = NotebookClient(notebook, timeout=CELL_TIMEOUT, kernel_name="python3",
                                resources={"metadata": {"path": str(lesson.parent)}})
        client.execute()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    text = "".join(output.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                   for output in cell.get("outputs", []))
    assert "saved figure:" in text
    _check_figures(tmp_path / lesson.stem, "")

