"""The benchmark scripts must keep running: tiny, quick runs of each (bench_step, memory_ab, records, peak_memory)."""

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_step.py"


# one thread, and two threads with a batch big enough to be split into chunks
@pytest.mark.parametrize("threads,batch", [(1, 8), (2, 100)])
def test_bench_step_quick_run(threads, batch):
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--batch", str(batch), "--no-torch",
         "--threads", str(threads), "--record-images", "200"],
        capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    for expected in ("52,189 parameters", "training step: forward + loss + backward",
                     "forward only", "Adam update", "GFLOP per step", "peak resident memory",
                     "Scenario 2: one epoch", "Scenario 3: one epoch of the record network 'fashion-2764'"):
        assert expected in out, f"missing {expected!r} in:\n{out}"
    assert "the same, pools folded into the SCS layers" in out and "pools folded:" in out


def test_memory_ab_quick_run():
    script = SCRIPT.parent / "memory_ab.py"
    done = subprocess.run(
        [sys.executable, str(script), "--model", "scs-tiny", "--batch", "50", "--images", "200",
         "--rounds", "1", "--threads", "1"],
        capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    for expected in ("scs-tiny, batch 50, 200 images per epoch", "round 1: kept:", "glibc:",
                     "medians: kept"):
        assert expected in out, f"missing {expected!r} in:\n{out}"


def test_threads_vs_processes_quick_run():
    script = SCRIPT.parent / "threads_vs_processes.py"
    done = subprocess.run(
        [sys.executable, str(script), "--model", "scs-tiny", "--chunk", "20", "--images", "100",
         "--rounds", "1"],
        capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    for expected in ("scs-tiny, chunks of 20 images", "round 1: overhead", "neighbour",
                     "two processes side by side, each", "two threads side by side, each",
                     "minisc's chunk threads, a batch of 2 x 20",
                     "minisc's worker + this process, a batch of 2 x 20"):
        assert expected in out, f"missing {expected!r} in:\n{out}"


@pytest.mark.parametrize("fold", [False, True])
def test_records_quick_run(tmp_path, fold):
    import json

    import minisc

    script = SCRIPT.parent / "records.py"
    done = subprocess.run(
        [sys.executable, str(script), "mnist-1398", "--quick", "--data", "sample", "--threads", "1",
         "--out", str(tmp_path)]
        # the digits' recipe has no flips; --flip (all classes) and --flip-classes (some) override it
        + (["--fold-pools", "--flip"] if fold else ["--flip-classes", "1,7"])
        # and the other overrides reach the recipe that trains and is written down
        + (["--batch-size", "50", "--lr", "0.02", "--label-smoothing", "0.1"] if fold else []),
        capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "mnist-1398: 1,354 parameters" in done.stdout
    record = json.loads((tmp_path / "mnist-1398-seed0.json").read_text())
    assert record["recipe"]["flip"] == (True if fold else [1, 7])
    overrides = dict(batch_size=50, lr=0.02, label_smoothing=0.1) if fold else dict(batch_size=100, lr=0.03)
    assert {k: record["recipe"].get(k) for k in overrides} == overrides
    assert record["pools_folded"] is fold and len(record["history"]["epoch"]) == 1
    assert record["data"] == "sample"
    # the epoch's seconds, and in brackets those of its training steps alone
    assert "s (training " in done.stdout
    assert 0 < record["history"]["train_seconds"][0] <= record["epoch_seconds"][0]
    # trained folded or not, the file holds the network in the shape its builder gives it
    model = minisc.load(tmp_path / "mnist-1398-seed0.npz")
    built = minisc.models.build_model("mnist-1398")
    assert [(type(a), a.config()) for a in model.layers] == [(type(b), b.config()) for b in built.layers]
    assert [type(layer).__name__ for layer in model.layers].count("MaxAbsPool2D") == 4
    assert model.metadata["final_accuracy"] == record["final_accuracy"]


def test_records_quick_run_with_a_teacher(tmp_path):
    """--teacher trains the teacher first (its own epochs and learning rate, the student's seed
    and data), then the student distilled from it; the JSON says so, and the student's recipe
    carries the distillation settings. With --twin, the ConvNet twin gets the same teacher."""
    import json

    script = SCRIPT.parent / "records.py"
    done = subprocess.run(
        [sys.executable, str(script), "mnist-1398", "--quick", "--data", "sample", "--threads", "1",
         "--out", str(tmp_path), "--teacher", "scs-tiny", "--teacher-lr", "0.02",
         "--distill-weight", "0.7", "--distill-temperature", "3", "--soften-student", "--twin"],
        capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "teacher scs-tiny: 1,935 parameters, 1 epochs" in done.stdout
    assert "(the teacher's training included)" in done.stdout
    record = json.loads((tmp_path / "mnist-1398-seed0.json").read_text())
    distilling = ("teacher", "distill_weight", "distill_temperature", "distill_soften_student")
    assert {k: record["recipe"][k] for k in distilling} == \
        dict(teacher="scs-tiny", distill_weight=0.7, distill_temperature=3.0, distill_soften_student=True)
    teacher = record["teacher"]
    assert teacher["model"] == "scs-tiny" and teacher["n_params"] == 1935 and teacher["seconds"] > 0
    assert teacher["recipe"]["lr"] == 0.02 and teacher["recipe"]["epochs"] == 1
    assert 0 <= teacher["final_accuracy"] <= 1
    twin = json.loads((tmp_path / "mnist-1398-convnet-seed0.json").read_text())
    assert twin["teacher"]["model"] == "scs-tiny" and twin["teacher"]["recipe"] == teacher["recipe"]
    assert {k: twin["recipe"][k] for k in distilling} == \
        dict(teacher="scs-tiny", distill_weight=0.7, distill_temperature=3.0, distill_soften_student=True)


def test_records_teacher_overrides_leave_the_recipe_itself_alone():
    """records.py's teacher flags change the run's copy of a recipe, never minisc.models.RECIPES."""
    import argparse
    import importlib.util

    from minisc.models import RECIPES

    spec = importlib.util.spec_from_file_location("records", SCRIPT.parent / "records.py")
    records = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(records)
    before = {k: (dict(v) if isinstance(v, dict) else v) for k, v in RECIPES["fashion-1890"].items()}
    args = argparse.Namespace(no_teacher=False, teacher=None, teacher_epochs=3, teacher_lr=0.5,
                              distill_weight=None, distill_temperature=4.0, soften_student=None,
                              quick=True)
    recipe = dict(RECIPES["fashion-1890"])
    teacher = records.teacher_spec(args, recipe)
    assert teacher == dict(before["teacher"], epochs=1, lr=0.5)          # --quick: a 1-epoch teacher
    assert recipe["distill_temperature"] == 4.0 and recipe["teacher"] == before["teacher"]["model"]
    assert recipe["distill_soften_student"] is False                    # the recipe's form, not given
    assert RECIPES["fashion-1890"] == before


def test_records_trains_the_teacher_a_recipe_names_unless_told_not_to(tmp_path):
    """fashion-1890's recipe names a teacher, its ConvNet twin's does not: --twin trains the twin
    without one (and --no-teacher trains neither with one)."""
    import json

    from minisc.models import RECIPES

    script = SCRIPT.parent / "records.py"
    common = [sys.executable, str(script), "fashion-1890", "--quick", "--data", "sample", "--threads", "1",
              "--twin"]
    for extra in ([], ["--no-teacher"]):
        out = tmp_path / (extra[0][2:] if extra else "recipe")
        done = subprocess.run(common + extra + ["--out", str(out)], capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr[-2000:]
        record = json.loads((out / "fashion-1890-seed0.json").read_text())
        if extra:
            assert record["teacher"] is None and "teacher" not in record["recipe"]
        else:
            spec = RECIPES["fashion-1890"]["teacher"]
            assert record["teacher"]["model"] == spec["model"] and record["teacher"]["recipe"]["lr"] == spec["lr"]
            assert record["recipe"]["distill_weight"] == RECIPES["fashion-1890"]["distill_weight"]
        twin = json.loads((out / "fashion-1890-convnet-seed0.json").read_text())
        assert twin["teacher"] is None and "teacher" not in twin["recipe"]


def test_records_validation_run_keeps_its_own_files(tmp_path):
    """A validation run and a test run of the same seed must not overwrite each other."""
    import json

    script = SCRIPT.parent / "records.py"
    common = [sys.executable, str(script), "mnist-1398", "--quick", "--data", "sample",
              "--threads", "1", "--out", str(tmp_path)]
    for extra in (["--validation", "100"], []):
        done = subprocess.run(common + extra, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"mnist-1398-{kind}seed0.{ext}" for kind in ("", "validation-") for ext in ("json", "npz", "png")]
    assert json.loads((tmp_path / "mnist-1398-validation-seed0.json").read_text())["held_out"] == "validation"
    assert json.loads((tmp_path / "mnist-1398-seed0.json").read_text())["held_out"] == "test"


@pytest.mark.parametrize("flags, message", [
    (["--flip-classes", "0,x"], "expected class labels (integers >= 0) separated by commas"),
    (["--flip-classes", "0,-1"], "expected class labels"),
    (["--flip", "--flip-classes", "0,1"], "not allowed with argument --flip"),
    (["--label-smoothing", "1"], "argument --label-smoothing: expected a number from 0 up to (not including) 1"),
    (["--batch-size", "0"], "argument --batch-size: expected an integer >= 1, got 0"),
    (["--lr", "nan"], "argument --lr: expected a number > 0, got nan"),
    (["--teacher", "resnet"], "argument --teacher: expected one of convnet, fashion-1890"),
    (["--teacher", "reference", "--teacher-epochs", "0"], "argument --teacher-epochs: expected an integer >= 1"),
    (["--teacher", "reference", "--teacher-lr", "0"], "argument --teacher-lr: expected a number > 0"),
    (["--teacher", "reference", "--distill-weight", "1.5"], "argument --distill-weight: expected a number from 0 to 1"),
    (["--teacher", "reference", "--distill-temperature", "-1"],
     "argument --distill-temperature: expected a number > 0"),
])
def test_records_refuses_settings_it_cannot_use(flags, message):
    script = SCRIPT.parent / "records.py"
    done = subprocess.run([sys.executable, str(script), "fashion-1890", *flags],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and message in done.stderr, done.stderr


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak_memory.py reads /proc (Linux)")
@pytest.mark.parametrize("threads", [1, 2])
def test_peak_memory_prints_both_scenarios_with_each_process(threads):
    script = SCRIPT.parent / "peak_memory.py"
    done = subprocess.run([sys.executable, str(script), "--threads", str(threads), "--mode", "processes"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("flagship training step, batch 128")
    assert lines[1].startswith("flagship forward of 2,048 images, evaluation mode")
    for line in lines:
        parts = line.split("main + workers: ")[1].split(";")[0].split(" + ")
        assert len(parts) == threads            # the main process and threads - 1 workers
        total = float(line.split(" MB")[0].split()[-1])
        assert abs(total - sum(float(p) for p in parts)) <= len(parts)  # the sum, up to rounding
