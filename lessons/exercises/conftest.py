"""Shared test machinery for the exercises: which file is being graded.

Each test file names its exercise (``EXERCISE = "ex01_cosine_similarity"``) and asks for the
``ex`` fixture, which is that exercise's module, loaded from

- ``lessons/exercises/exNN_*.py``, the file you fill in (the default), or
- ``lessons/exercises/solutions/exNN_*.py``, the reference solution, when the environment
  variable ``MINISC_SOLUTIONS`` is set to 1.

The two files share a name, so they are loaded by path under distinct module names rather
than imported: the tests always know exactly which one they are grading.
"""

import importlib.util
import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]

# `python -m pytest` from the repository root finds minisc by itself; a bare `pytest`, run
# without `pip install -e .`, would not, so make the package in this checkout importable.
try:
    import minisc  # noqa: F401
except ImportError:
    sys.path.insert(0, str(REPO_ROOT))


def grading_solutions():
    """True when MINISC_SOLUTIONS asks for the reference solutions instead of your files."""
    return os.environ.get("MINISC_SOLUTIONS", "").strip().lower() in ("1", "true", "yes")


def exercise_path(name):
    """The file graded for exercise `name` (e.g. "ex01_cosine_similarity")."""
    folder = HERE / "solutions" if grading_solutions() else HERE
    return folder / f"{name}.py"


def load_exercise(name):
    """Load exercise `name` from its file (see the module docstring) and return the module."""
    path = exercise_path(name)
    if not path.is_file():
        raise FileNotFoundError(f"exercise file not found: {path}")
    kind = "solution" if grading_solutions() else "exercise"
    spec = importlib.util.spec_from_file_location(f"minisc_{kind}_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def ex(request):
    """The module under test, named by the test file's EXERCISE constant."""
    name = getattr(request.module, "EXERCISE", None)
    if name is None:
        raise RuntimeError(f"{request.module.__name__} must set EXERCISE = 'exNN_name'")
    return load_exercise(name)


def pytest_configure(config):
    # Short tracebacks unless asked otherwise (--tb=long): the failing line and its message,
    # rather than every docstring on the way to it.
    if config.option.tbstyle == "auto":
        config.option.tbstyle = "short"


def pytest_report_header(config):
    if grading_solutions():
        return "minisc exercises: grading the reference solutions (lessons/exercises/solutions/)"
    return ("minisc exercises: grading your files in lessons/exercises/ "
            "(MINISC_SOLUTIONS=1 grades the reference solutions instead)")
