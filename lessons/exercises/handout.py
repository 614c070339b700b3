"""Write a student copy of the repository: no solutions, no answers, no git history.

    python lessons/exercises/handout.py OUT_DIR

OUT_DIR must not exist yet (or be empty). The copy holds every file of the repository that
git tracks (or, outside a git checkout, every file except build products, virtual
environments, downloaded data sets and lesson output), minus

- lessons/exercises/solutions/   the reference solutions,
- lessons/answers.md             the worked answers and the answers to every "Try this",

and it is not a git repository, so no earlier commit can give the solutions away. The main
test suite passes in the copy, with the exercises blank or filled in (tests/test_exercises.py
skips what needs the solutions). Grade the copies students hand back with grade.py.
"""

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# What a student copy leaves out (paths relative to the repository root).
LEFT_OUT = ("lessons/exercises/solutions/", "lessons/answers.md")
# Never copied when the file list does not come from git.
SKIPPED_DIRS = {".git", ".venv", "venv", "output", "runs", "build", "dist", "__pycache__",
                ".pytest_cache", ".ruff_cache", ".ipynb_checkpoints"}
SKIPPED_PATHS = ("datasets/mnist/", "datasets/fashion-mnist/")


def _left_out(relative):
    return any(relative == item or relative.startswith(item) for item in LEFT_OUT)


def repository_files(repo=REPO):
    """Relative paths (str, '/'-separated) of the files a copy of ``repo`` starts from."""
    if (repo / ".git").exists() and shutil.which("git"):
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=repo, capture_output=True, check=True)
        names = [name for name in listed.stdout.decode("utf-8").split("\0") if name]
        return sorted(name for name in names if (repo / name).is_file())
    found = []
    for folder, dirs, files in os.walk(repo):
        dirs[:] = [d for d in dirs if d not in SKIPPED_DIRS and not d.endswith(".egg-info")]
        for name in files:
            relative = (Path(folder) / name).relative_to(repo).as_posix()
            if not relative.startswith(SKIPPED_PATHS) and not name.endswith((".pyc", ".tmp")):
                found.append(relative)
    return sorted(found)


def write_handout(out_dir, repo=REPO):
    """Copy the student files of ``repo`` into ``out_dir``; returns (copied, left out) lists."""
    out_dir = Path(out_dir).resolve()
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} exists and is not empty; choose a new folder")
    if out_dir == repo or repo in out_dir.parents:
        raise ValueError(f"write the copy outside the repository, not into {out_dir}")
    copied, left_out = [], []
    for relative in repository_files(repo):
        if _left_out(relative):
            left_out.append(relative)
            continue
        target = out_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(repo / relative, target)
        copied.append(relative)
    return copied, left_out


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python lessons/exercises/handout.py",
        description="Write a student copy of the repository without solutions, answers or git history.")
    parser.add_argument("out_dir", help="a new (or empty) folder for the copy")
    args = parser.parse_args(argv)
    try:
        copied, left_out = write_handout(args.out_dir)
    except (FileExistsError, ValueError) as err:
        parser.error(str(err))
    print(f"wrote {len(copied)} files to {Path(args.out_dir).resolve()}")
    print(f"left out {len(left_out)} files: " + ", ".join(sorted({
        item for item in LEFT_OUT for name in left_out if name.startswith(item) or name == item})))
    print("The copy is not a git repository: no history that holds the solutions.")
    print("Students: python3 -m venv .venv && . .venv/bin/activate && pip install -e \".[dev]\"")
    print("Grade what they hand back: python lessons/exercises/grade.py DIR [DIR ...]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
