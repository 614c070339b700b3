"""The classroom exercises in lessons/exercises can never silently break.

Their tests run in a separate pytest process, twice:

- against the reference solutions (MINISC_SOLUTIONS=1): every test must pass, and exactly as
  many as expected, so a test that stops being collected is noticed too;
- against the untouched exercise files: every test must fail, each with the exercise's own
  NotImplementedError. That proves the blanks are blanks and that every test can fail.

The main suite never collects lessons/exercises itself (pyproject.toml sets testpaths), so
the blanks cannot make it fail; the last test checks that.
"""

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXERCISES = REPO / "lessons" / "exercises"

# Number of tests (after parametrization) per exercise. Adding a test means updating this.
EXPECTED_TESTS = {
    "ex01_cosine_similarity": 17,
    "ex02_maxabs_pool": 16,
    "ex03_scs_grad_p": 13,
    "ex04_dense_backward": 11,
    "ex05_scs_layer_backward": 9,
}
BLANK_MARK = "# ---- YOUR CODE HERE ----"


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
    assert proc.returncode == 1, f"pytest should report failures for the blanks:\n{proc.stdout[-3000:]}"
    assert Counter(ex for ex, *_ in results) == Counter(EXPECTED_TESTS)
    for ex, name, outcome, message in results:
        tag = ex[:4]                                        # "ex01"
        assert outcome == "failed", f"{ex}::{name} should fail on the untouched exercise, got {outcome}"
        assert message.startswith(f"NotImplementedError: {tag}:"), (
            f"{ex}::{name} should fail with the exercise's own NotImplementedError "
            f"('{tag}: ... is still a blank'), got: {message[:300]}")


@pytest.mark.parametrize("name", sorted(EXPECTED_TESTS))
def test_each_exercise_has_blanks_a_solution_and_tests(name):
    exercise = (EXERCISES / f"{name}.py").read_text(encoding="utf-8")
    solution = (EXERCISES / "solutions" / f"{name}.py").read_text(encoding="utf-8")
    assert (EXERCISES / f"test_{name}.py").is_file()
    n_blanks = exercise.count(BLANK_MARK)
    assert n_blanks >= 1 and exercise.count(f'raise NotImplementedError("{name[:4]}:') == n_blanks
    assert "Your task" in exercise and "python -m pytest lessons/exercises/test_" in exercise
    assert BLANK_MARK not in solution and "NotImplementedError" not in solution
    readme = (EXERCISES / "README.md").read_text(encoding="utf-8")
    assert f"{name}.py" in readme, f"lessons/exercises/README.md should list {name}.py"


def test_main_suite_does_not_collect_the_exercises():
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    node_ids = [line for line in proc.stdout.splitlines() if "::" in line]
    assert any(line.startswith("tests/test_exercises.py::") for line in node_ids), (
        f"could not list the main suite's tests:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    stray = [line for line in node_ids if line.startswith("lessons/")]
    assert not stray, f"`python -m pytest` collects the exercises' blanks: {stray[:5]}"
