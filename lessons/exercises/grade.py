"""Grade the exercises of a class: one line per student and exercise, and a total.

    python lessons/exercises/grade.py DIR [DIR ...]

Each DIR is a student's copy of the repository (as written by handout.py, then filled in).
For every student, the exercise files ``DIR/lessons/exercises/exNN_*.py`` are graded by *this*
repository's tests (``lessons/exercises/test_exNN_*.py`` and ``conftest.py`` next to this
script) and this repository's minisc, in a temporary folder: a student who edits a test or
minisc cannot change the grade. The reference solutions are never run: the tests load the
student's files only (MINISC_SOLUTIONS is removed from the environment).

Output, for example:

    alice: ex01: 19/19 passed
    alice: ex02: 3/16 passed
    ...
    alice: total 71/71 passed
    bob: ex01: 0/19 passed
    ...

An exercise file that is missing counts 0 passed. The exit status is 0 when every student
could be graded (whatever the scores), 2 when a folder does not look like a copy.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
TIMEOUT = 600                      # seconds for one student's whole run


def exercise_names():
    """["ex01_cosine_similarity", ...]: every exercise this repository has tests for."""
    return sorted(p.stem.removeprefix("test_") for p in HERE.glob("test_ex[0-9][0-9]_*.py"))


def _results(report):
    """{exercise: (passed, total)} from a JUnit XML report."""
    counts = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        module = case.get("classname", "").rsplit(".", 1)[-1].removeprefix("test_")
        failed = any(case.find(tag) is not None for tag in ("failure", "error", "skipped"))
        passed, total = counts.get(module, (0, 0))
        counts[module] = (passed + (not failed), total + 1)
    return counts


def grade(student_dir):
    """{exercise: (passed, total)} for one student's copy."""
    student_exercises = Path(student_dir) / "lessons" / "exercises"
    names = exercise_names()
    with tempfile.TemporaryDirectory(prefix="minisc-grade-") as tmp:
        tmp = Path(tmp)
        shutil.copy2(HERE / "conftest.py", tmp / "conftest.py")
        for name in names:
            shutil.copy2(HERE / f"test_{name}.py", tmp / f"test_{name}.py")
            submitted = student_exercises / f"{name}.py"
            if submitted.is_file():
                shutil.copy2(submitted, tmp / f"{name}.py")
        env = {k: v for k, v in os.environ.items() if k not in ("MINISC_SOLUTIONS", "PYTEST_ADDOPTS")}
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in [env.get("PYTHONPATH")] if p])
        report = tmp / "report.xml"
        try:
            subprocess.run([sys.executable, "-m", "pytest", str(tmp), "-q", "-p", "no:cacheprovider",
                            f"--junitxml={report}", f"--rootdir={tmp}"],
                           cwd=tmp, env=env, capture_output=True, text=True, timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            pass                       # whatever finished is not reported: everything counts 0
        counts = _results(report) if report.is_file() else {}
    totals = _expected_totals()
    return {name: (counts.get(name, (0, 0))[0], totals[name]) for name in names}


_TOTALS = {}


def _expected_totals():
    """{exercise: number of tests}, collected once from this repository's tests."""
    if not _TOTALS:
        env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        proc = subprocess.run([sys.executable, "-m", "pytest", str(HERE), "--collect-only", "-q",
                               "-p", "no:cacheprovider", f"--rootdir={HERE}"],
                              cwd=HERE, env=env, capture_output=True, text=True, timeout=300)
        for line in proc.stdout.splitlines():
            if "::" in line:
                module = Path(line.split("::")[0]).stem.removeprefix("test_")
                _TOTALS[module] = _TOTALS.get(module, 0) + 1
        for name in exercise_names():
            _TOTALS.setdefault(name, 0)
    return _TOTALS


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python lessons/exercises/grade.py",
                                     description="Grade the exercises in students' copies of the repository.")
    parser.add_argument("dirs", nargs="+", metavar="DIR", help="a student's copy of the repository")
    args = parser.parse_args(argv)
    bad = [d for d in args.dirs if not (Path(d) / "lessons" / "exercises").is_dir()]
    if bad:
        print(f"not a copy of the repository (no lessons/exercises/): {', '.join(bad)}", file=sys.stderr)
        return 2
    for student_dir in args.dirs:
        student = Path(student_dir).resolve().name
        scores = grade(student_dir)
        for name, (passed, total) in scores.items():
            print(f"{student}: {name[:4]}: {passed}/{total} passed")
        passed = sum(p for p, _ in scores.values())
        total = sum(t for _, t in scores.values())
        print(f"{student}: total {passed}/{total} passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
