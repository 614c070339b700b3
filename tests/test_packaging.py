"""A normal install works: the wheel carries the embedded sample, and an installed minisc trains
from any folder and never writes into site-packages.

The wheel is built once per session from a copy of the repository (so the checkout gets no
build/ or .egg-info folders), offline (--no-build-isolation: the setuptools and wheel of the
dev extras), and installed into a fresh virtual environment with --no-deps; numpy, matplotlib
and tqdm come from the environment running the tests, through a .pth file, so nothing is
downloaded.
"""

import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIP_COPY = shutil.ignore_patterns(".git", ".venv", "venv", "build", "dist", "*.egg-info", "__pycache__",
                                   ".pytest_cache", ".ruff_cache", "runs", "output", "mnist", "fashion-mnist")


def _run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    for module in ("setuptools", "wheel"):
        try:
            __import__(module)
        except ImportError:
            pytest.skip(f"cannot build the wheel offline: {module} is not installed "
                        "(pip install -e '.[dev]' brings it)")
    src = tmp_path_factory.mktemp("src") / "minisc"
    shutil.copytree(ROOT, src, ignore=SKIP_COPY)
    dist = tmp_path_factory.mktemp("dist")
    proc = _run([sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps",
                 "--no-index", "-q", "-w", str(dist), str(src)])
    wheels = list(dist.glob("minisc-*.whl"))
    if proc.returncode != 0 or not wheels:
        pytest.skip(f"building the wheel is impossible here: {proc.stderr.strip()[-500:]}")
    return wheels[0]


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory):
    """A fresh virtual environment with the wheel installed; returns (python, env, workdir)."""
    env_dir = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
                .stdout.strip())
    # The runtime dependencies, borrowed from the environment running the tests.
    import matplotlib
    import numpy
    import tqdm
    dirs = {str(Path(m.__file__).resolve().parents[1]) for m in (numpy, matplotlib, tqdm)}
    (site / "borrowed_dependencies.pth").write_text("\n".join(sorted(dirs)) + "\n")
    proc = _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
                 "--no-index", "-q", str(wheel)])
    if proc.returncode != 0:   # an older pip without --python: install with the target's path
        proc = _run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q",
                     "--target", str(site), str(wheel)])
    assert proc.returncode == 0, proc.stderr
    home = tmp_path_factory.mktemp("home")
    env = {k: v for k, v in os.environ.items() if k not in ("MINISC_DATA", "PYTHONPATH", "VIRTUAL_ENV")}
    env.update(HOME=str(home), XDG_CACHE_HOME=str(home / "cache"))
    work = tmp_path_factory.mktemp("elsewhere")
    return python, env, work, site


def test_the_wheel_holds_the_sample_and_every_subpackage(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "minisc/_datasets/mnist_sample.npz" in names
    for folder in (ROOT / "minisc").rglob("*.py"):
        assert str(folder.relative_to(ROOT)) in names, f"{folder} is missing from the wheel"
    assert not any(n.startswith("datasets/") for n in names)       # no top-level 'datasets' package


def test_installed_minisc_finds_its_sample_from_any_folder(installed):
    python, env, work, site = installed
    code = ("import minisc, minisc.data as d\n"
            "x, y = d.load_mnist_sample()\n"
            "print(minisc.__file__); print(x.shape, y.shape); print(d.default_root('mnist'))\n")
    proc = _run([str(python), "-c", code], cwd=work, env=env)
    assert proc.returncode == 0, proc.stderr
    where, shapes, root = proc.stdout.splitlines()
    assert Path(where).resolve().is_relative_to(site.resolve())   # the wheel, not the checkout
    assert shapes == "(5000, 28, 28) (5000,)"
    # Downloads would go to the per-user folder, never into site-packages.
    assert Path(root) == Path(env["XDG_CACHE_HOME"]) / "minisc" / "mnist"
    env_with = dict(env, MINISC_DATA=str(work / "data"))
    proc = _run([str(python), "-c", "import minisc.data as d; print(d.default_root('mnist'))"],
                cwd=work, env=env_with)
    assert Path(proc.stdout.strip()) == work / "data" / "mnist"


def test_installed_minisc_trains_one_epoch_from_another_folder(installed):
    python, env, work, site = installed
    proc = _run([str(python), "-m", "minisc.train", "--data", "sample", "--model", "scs-tiny", "--quick",
                 "--no-progress", "--out", "run"], cwd=work, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "test accuracy:" in proc.stdout
    assert (work / "run" / "model.npz").is_file() and (work / "run" / "history.json").is_file()
    assert not (site / "datasets").exists()
