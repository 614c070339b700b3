"""The classroom exercises in lessons/exercises can never silently break.

Their tests run in a separate pytest process, twice:

- against the reference solutions (MINISC_SOLUTIONS=1): every test must pass, and exactly as
  many as expected, so a test that stops being collected is noticed too;
- against the exercise files as they are: every test of an exercise that is still blank must
  fail, each with the exercise's own NotImplementedError. That proves the blanks are blanks
  and that every test can fail. An exercise someone has filled in is graded, not judged:
  its tests must run (all of them), whatever they report.

In a student copy written by lessons/exercises/handout.py there is no solutions/ folder: the
checks that need it are skipped (saying so), and the suite passes with the exercises blank
or filled in. The teacher's kit itself is tested here too: a handout has no solutions, no
answers and no git history, and grade.py scores a blank copy 0 and a copy with the worked
answers pasted in full marks.

The main suite never collects lessons/exercises itself (pyproject.toml sets testpaths), so
the blanks cannot make it fail; the last test checks that.
"""

import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXERCISES = REPO / "lessons" / "exercises"
SOLUTIONS = EXERCISES / "solutions"
HAS_SOLUTIONS = SOLUTIONS.is_dir()
NO_SOLUTIONS = ("a student copy: lessons/exercises/solutions/ is not here "
                "(lessons/exercises/handout.py leaves it out)")

# Number of tests (after parametrization) per exercise. Adding a test means updating this.
EXPECTED_TESTS = {
    "ex01_cosine_similarity": 19,
    "ex02_maxabs_pool": 16,
    "ex03_scs_grad_p": 14,
    "ex04_dense_backward": 12,
    "ex05_scs_layer_backward": 10,
}
BLANK_MARK = "# ---- YOUR CODE HERE ----"


def _still_blank(name):
    """True when every blank of exercise ``name`` still raises its NotImplementedError."""
    text = (EXERCISES / f"{name}.py").read_text(encoding="utf-8")
    blanks = text.count(BLANK_MARK)
    return blanks >= 1 and text.count(f'raise NotImplementedError("{name[:4]}:') == blanks


def _run_exercise_tests(report_dir, solutions):
    """Run `python -m pytest lessons/exercises` from the repo root; return (process, results).

    results: a list of (exercise name, test name, outcome, message) from pytest's JUnit XML
    report, outcome being "passed", "failed", "error" or "skipped".
    """
    env = {k: v for k, v in os.environ.items() if k not in ("MINISC_SOLUTIONS", "PYTEST_ADDOPTS")}
    if solutions:
        env["MINISC_SOLUTIONS"] = "1"
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"            # only pytest itself: fast, predictable
    report = report_dir / ("solutions.xml" if solutions else "blanks.xml")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "lessons/exercises", "-q", "-p", "no:cacheprovider",
         f"--junitxml={report}"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    if not report.is_file():
        pytest.fail(f"the exercise tests did not run:\n{proc.stdout}\n{proc.stderr}")
    results = []
    for case in ET.parse(report).getroot().iter("testcase"):
        module = case.get("classname", "").rsplit(".", 1)[-1]
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            child = case.find(tag)
            if child is not None:
                outcome = "failed" if tag == "failure" else tag
                message = child.get("message", "")
                break
        results.append((module.removeprefix("test_"), case.get("name"), outcome, message))
    return proc, results


@pytest.fixture(scope="module")
def solution_run(tmp_path_factory):
    if not HAS_SOLUTIONS:
        pytest.skip(NO_SOLUTIONS)
    return _run_exercise_tests(tmp_path_factory.mktemp("exercises"), solutions=True)


@pytest.fixture(scope="module")
def blank_run(tmp_path_factory):
    return _run_exercise_tests(tmp_path_factory.mktemp("exercises"), solutions=False)


def test_exercise_tests_pass_against_the_solutions(solution_run):
    proc, results = solution_run
    not_passed = [(ex, name, outcome, msg) for ex, name, outcome, msg in results if outcome != "passed"]
    assert proc.returncode == 0 and not not_passed, (
        f"exercise tests fail against the reference solutions: {not_passed}\n{proc.stdout[-3000:]}")
    assert Counter(ex for ex, *_ in results) == Counter(EXPECTED_TESTS), (
        "unexpected number of exercise tests per exercise (update EXPECTED_TESTS if you added "
        f"some): {dict(Counter(ex for ex, *_ in results))}")
    total = sum(EXPECTED_TESTS.values())
    summary = proc.stdout.strip().splitlines()[-1]
    assert re.search(rf"\b{total} passed\b", summary), f"expected '{total} passed', got: {summary}"


def test_untouched_exercises_fail_with_their_not_implemented_errors(blank_run):
    proc, results = blank_run
    assert Counter(ex for ex, *_ in results) == Counter(EXPECTED_TESTS), (
        f"every exercise's tests must run: {dict(Counter(ex for ex, *_ in results))}")
    blank = {name for name in EXPECTED_TESTS if _still_blank(name)}
    if blank:
        assert proc.returncode == 1, f"pytest should report failures for the blanks:\n{proc.stdout[-3000:]}"
    for ex, name, outcome, message in results:
        if ex not in blank:
            continue                                        # filled in: graded, not judged here
        tag = ex[:4]                                        # "ex01"
        assert outcome == "failed", f"{ex}::{name} should fail on the untouched exercise, got {outcome}"
        assert message.startswith(f"NotImplementedError: {tag}:"), (
            f"{ex}::{name} should fail with the exercise's own NotImplementedError "
            f"('{tag}: ... is still a blank'), got: {message[:300]}")


@pytest.mark.parametrize("name", sorted(EXPECTED_TESTS))
def test_each_exercise_has_blanks_a_solution_and_tests(name):
    exercise = (EXERCISES / f"{name}.py").read_text(encoding="utf-8")
    assert (EXERCISES / f"test_{name}.py").is_file()
    raises = exercise.count(f'raise NotImplementedError("{name[:4]}:')
    assert raises <= exercise.count(BLANK_MARK), f"{name}: a NotImplementedError outside a blank"
    readme = (EXERCISES / "README.md").read_text(encoding="utf-8")
    assert f"{name}.py" in readme, f"lessons/exercises/README.md should list {name}.py"
    if HAS_SOLUTIONS:
        # in the repository the exercises are as handed out: blank, with their task stated
        assert raises >= 1 and _still_blank(name), f"{name}.py should be blank in the repository"
        assert "Your task" in exercise and "python -m pytest lessons/exercises/test_" in exercise
        solution = (SOLUTIONS / f"{name}.py").read_text(encoding="utf-8")
        assert BLANK_MARK not in solution and "NotImplementedError" not in solution


def test_main_suite_does_not_collect_the_exercises():
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    node_ids = [line for line in proc.stdout.splitlines() if "::" in line]
    assert any(line.startswith("tests/test_exercises.py::") for line in node_ids), (
        f"could not list the main suite's tests:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    stray = [line for line in node_ids if line.startswith("lessons/")]
    assert not stray, f"`python -m pytest` collects the exercises' blanks: {stray[:5]}"


# ---------------------------------------------------------------------------------------------
# the teacher's kit: handout.py and grade.py
def _grade(*dirs):
    proc = subprocess.run([sys.executable, str(EXERCISES / "grade.py"), *map(str, dirs)],
                          cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout.splitlines()


def _filled_in(handout, folder, names=None):
    """A copy of ``handout`` in ``folder`` with the worked answers of ``names`` (default all) pasted in."""
    shutil.copytree(handout, folder)
    for path in SOLUTIONS.glob("ex[0-9][0-9]_*.py"):
        if names is None or path.stem in names:
            shutil.copy2(path, folder / "lessons" / "exercises" / path.name)
    return folder


@pytest.fixture(scope="module")
def handout(tmp_path_factory):
    out = tmp_path_factory.mktemp("handout") / "alice"
    proc = subprocess.run([sys.executable, str(EXERCISES / "handout.py"), str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def test_handout_has_no_solutions_no_answers_and_no_history(handout):
    assert not (handout / "lessons" / "exercises" / "solutions").exists()
    assert not (handout / "lessons" / "answers.md").exists()
    assert not (handout / ".git").exists()
    for name in EXPECTED_TESTS:
        assert (handout / "lessons" / "exercises" / f"{name}.py").is_file()
        assert (handout / "lessons" / "exercises" / f"test_{name}.py").is_file()
    assert (handout / "tests" / "test_exercises.py").is_file() and (handout / "minisc" / "__init__.py").is_file()
    solution_text = {p.read_text(encoding="utf-8") for p in SOLUTIONS.glob("*.py")} if HAS_SOLUTIONS else set()
    for path in handout.rglob("*.py"):
        assert path.read_text(encoding="utf-8") not in solution_text, f"{path} is a solution"
    again = subprocess.run([sys.executable, str(EXERCISES / "handout.py"), str(handout)],
                           cwd=REPO, capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and "not empty" in again.stderr       # never overwrites a copy


def test_grade_scores_a_blank_copy_zero(handout):
    lines = _grade(handout)
    expected = [f"alice: {name[:4]}: 0/{n} passed" for name, n in sorted(EXPECTED_TESTS.items())]
    assert lines == expected + [f"alice: total 0/{sum(EXPECTED_TESTS.values())} passed"]


@pytest.mark.skipif(not HAS_SOLUTIONS, reason=NO_SOLUTIONS)
def test_grade_gives_full_marks_to_the_worked_answers_and_never_runs_the_solutions(handout, tmp_path):
    bob = _filled_in(handout, tmp_path / "bob")
    partly = _filled_in(handout, tmp_path / "carol", names={"ex03_scs_grad_p"})   # the rest blank
    lines = _grade(bob, partly)
    total = sum(EXPECTED_TESTS.values())
    expected_bob = [f"bob: {name[:4]}: {n}/{n} passed" for name, n in sorted(EXPECTED_TESTS.items())]
    assert lines[:len(EXPECTED_TESTS) + 1] == expected_bob + [f"bob: total {total}/{total} passed"]
    carol = lines[len(EXPECTED_TESTS) + 1:]
    n3 = EXPECTED_TESTS["ex03_scs_grad_p"]
    assert "carol: ex03: {0}/{0} passed".format(n3) in carol and "carol: ex01: 0/19 passed" in carol
    assert carol[-1] == f"carol: total {n3}/{total} passed"


@pytest.mark.skipif(not HAS_SOLUTIONS, reason=NO_SOLUTIONS)
def test_exercise_checks_pass_in_a_handout_copy_blank_and_filled_in(handout, tmp_path):
    """The part of the main suite that knows about solutions passes in a student copy."""
    filled = _filled_in(handout, tmp_path / "filled")
    env = {k: v for k, v in os.environ.items() if k not in ("MINISC_SOLUTIONS", "PYTEST_ADDOPTS")}
    env["PYTHONPATH"] = str(REPO)                      # minisc, as installed for this repository
    for copy in (handout, filled):
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "tests/test_exercises.py", "-q", "-p", "no:cacheprovider",
             "-k", "not grade and not handout_copy and not main_suite_does_not_collect"],
            cwd=copy, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"in {copy.name}:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}"
        assert "skipped" in proc.stdout.splitlines()[-1], "the solution checks should be skipped, saying why"
