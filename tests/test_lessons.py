"""Every numbered lesson runs from start to finish in quick mode, headless, and saves figures.

Each lesson runs in its own Python process, the way a student runs it
(``python lessons/NN_name.py --quick`` from the repository root), with the Agg backend and
its figures redirected to a temporary folder. New lessons are picked up by the glob.

These are the slowest tests of the suite. Skip them with ``python -m pytest -m "not lessons"``.
"""

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
TIMEOUT = 120                       # seconds per lesson in quick mode

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


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_lesson_runs_quick_and_saves_figures(lesson, tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg", MINISC_OUTPUT=str(tmp_path), PYTHONIOENCODING="utf-8")
    env.pop("MINISC_FULL", None)
    env.pop("MINISC_QUICK", None)                  # --quick alone must be enough
    proc = subprocess.run([sys.executable, str(lesson.relative_to(ROOT)), "--quick"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    tail = f"\n--- stdout (end) ---\n{proc.stdout[-3000:]}\n--- stderr ---\n{proc.stderr[-3000:]}"
    assert proc.returncode == 0, f"{lesson.name} exited with {proc.returncode}{tail}"

    folder = tmp_path / lesson.stem
    pngs = sorted(folder.glob("*.png"))
    assert pngs, f"{lesson.name} saved no PNG in {folder}{tail}"
    for png in pngs:
        with open(png, "rb") as fh:
            assert fh.read(8) == PNG_SIGNATURE, f"{png.name} is not a PNG"
        assert png.stat().st_size > 2000, f"{png.name} is suspiciously small"
    assert "saved figure:" in proc.stdout

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
