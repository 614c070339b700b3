"""The training command line checks everything before it works, and Ctrl-C loses nothing.

Bad input costs one line on stderr (what was wrong, what is expected), exit status 2 and no
traceback, before any data is loaded or any file written. Most cases run main() in-process
(cheap); one runs the real command to see exactly what a learner sees.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import minisc
from minisc import train as mtrain
from minisc.models import build_model

ROOT = Path(__file__).resolve().parents[1]


def _refused(capsys, argv):
    """Run main(argv), expect a usage error; return its one line."""
    with pytest.raises(SystemExit) as info:
        mtrain.main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("python -m minisc.train: error: ")
    return err


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if main() gets as far as loading data."""
    def boom(*args, **kwargs):
        raise AssertionError("main() started work before refusing its arguments")
    monkeypatch.setattr(mtrain, "load_dataset", boom)


@pytest.mark.parametrize("argv, expected", [
    (["--epochs", "0"], "argument --epochs: expected an integer >= 1, got 0"),
    (["--epochs", "-1"], "argument --epochs: expected an integer >= 1, got -1"),
    (["--epochs", "two"], "argument --epochs: expected an integer >= 1, got 'two'"),
    (["--batch-size", "0"], "argument --batch-size: expected an integer >= 1, got 0"),
    (["--lr", "0"], "argument --lr: expected a number > 0, got 0"),
    (["--lr", "-0.1"], "argument --lr: expected a number > 0, got -0.1"),
    (["--lr", "nan"], "argument --lr: expected a number > 0, got 'nan'"),
    (["--seed", "-1"], "argument --seed: expected an integer >= 0, got -1"),
    (["--shift", "-2"], "argument --shift: expected an integer >= 0, got -2"),
    (["--shift", "40"], "argument --shift: expected an integer from 0 to 27 (pixels), got 40"),
    (["--timeout", "0"], "argument --timeout: expected a number > 0, got 0"),
    (["--label-smoothing", "1"], "argument --label-smoothing: expected a number from 0 up to (not "
                                 "including) 1, e.g. 0.1; got '1'"),
    (["--label-smoothing", "-0.1"], "argument --label-smoothing: expected a number from 0 up to"),
    (["--label-smoothing", "nan"], "argument --label-smoothing: expected a number from 0 up to"),
    (["--distill-weight", "1.5"], "argument --distill-weight: expected a number from 0 to 1, e.g. 0.5; got '1.5'"),
    (["--distill-temperature", "0"], "argument --distill-temperature: expected a number > 0, got 0"),
    (["--distill-weight", "0.5"], "arguments --distill-weight, --distill-temperature and "
                                  "--distill-soften-student need --teacher"),
    (["--distill-soften-student"], "arguments --distill-weight, --distill-temperature and "
                                   "--distill-soften-student need --teacher"),
    (["--teacher", "no/such/model.npz"], "argument --teacher: no/such/model.npz is not a file; expected a "
                                         "model saved by minisc"),
])
def test_bad_numbers_are_refused_in_one_line(capsys, no_work, tmp_path, argv, expected):
    err = _refused(capsys, [*argv, "--out", str(tmp_path / "run")])
    assert expected in err
    assert not (tmp_path / "run").exists()


def test_out_naming_a_file_is_refused_before_training(capsys, no_work, tmp_path):
    target = tmp_path / "model.npz"
    target.write_bytes(b"precious")
    err = _refused(capsys, ["--out", str(target)])
    assert f"argument --out: {target} is a file; expected a folder" in err
    assert target.read_bytes() == b"precious"


def test_a_previous_run_survives_a_refused_one(capsys, no_work, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.npz").write_bytes(b"trained for an hour")
    (run / "history.json").write_text("{}")
    for argv in (["--epochs", "0"], ["--epochs", "-1"], ["--batch-size", "0"]):
        _refused(capsys, [*argv, "--out", str(run)])
    assert (run / "model.npz").read_bytes() == b"trained for an hour"
    assert (run / "history.json").read_text() == "{}"


def test_resume_refuses_what_it_cannot_continue(capsys, no_work, tmp_path):
    err = _refused(capsys, ["--resume", str(tmp_path)])
    assert "is not a run's folder; expected the folder of an interrupted run" in err
    err = _refused(capsys, ["--resume", str(tmp_path), "--epochs", "5"])
    assert "continues a run with its own settings; drop --epochs" in err
    err = _refused(capsys, ["--resume", str(tmp_path), "--threads", "1"])
    assert "continues a run with its own settings; drop --threads" in err
    err = _refused(capsys, ["--threads", "0"])
    assert "argument --threads: expected an integer >= 1, got 0" in err
    minisc.Sequential([minisc.Flatten()]).save(tmp_path / "model.npz")
    err = _refused(capsys, ["--resume", str(tmp_path)])
    assert "is a finished run (nothing left to do)" in err


def test_the_real_command_prints_one_line_and_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "minisc.train", "--batch-size", "0", "--out", str(tmp_path / "r")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stdout == "" and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == ("python -m minisc.train: error: argument --batch-size: expected an integer >= 1, "
                                   "got 0 (see python -m minisc.train --help)")


@pytest.mark.skipif(os.name != "posix", reason="sends a real SIGINT to a child process (POSIX)")
def test_ctrl_c_keeps_a_checkpoint_and_resume_finishes_the_run(tmp_path):
    """A real SIGINT after epoch 1 of a real run, then --resume. The run has 20 short epochs, so
    that the interrupt lands well before the end however fast the machine is."""
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "minisc.train", "--model", "scs-tiny", "--quick", "--epochs", "20",
           "--no-progress", "--out", str(run)]
    # The child must start with Ctrl-C's default action, as a command typed in a terminal does.
    # A process that a non-interactive shell starts in the background (`cmd &`, nohup, many CI
    # runners) inherits SIGINT *ignored*, passes that on to its own children, and a Python
    # started that way installs no KeyboardInterrupt handler: the run would never stop.
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 240
        while not (run / "resume_state.npz").exists():          # the checkpoint of epoch 1
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no checkpoint after 240 s"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, f"the run did not stop on Ctrl-C (exit status {proc.returncode}): {err}"
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    found = re.fullmatch(rf"stopped by Ctrl-C; the checkpoint after epoch (\d+) of 20 is in "
                         rf"{re.escape(str(run))}/ \(model.npz, history.json\); "
                         rf"continue with: python -m minisc.train --resume {re.escape(str(run))}", lines[0])
    assert found, lines[0]
    done = int(found.group(1))
    assert 1 <= done < 20
    assert minisc.load(run / "model.npz").metadata["epochs_done"] == done
    assert len(json.loads((run / "history.json").read_text())["epoch"]) == done

    assert mtrain.main(["--resume", str(run), "--no-progress"]) == 0
    model = minisc.load(run / "model.npz")
    meta = model.metadata
    assert set(meta) == {"model", "data", "epochs", "epochs_done", "quick", "seed", "settings",
                         "threads", "final_test_accuracy"}
    assert meta["threads"] == minisc.get_num_threads()          # the resumed run used the same
    assert (meta["model"], meta["data"], meta["epochs"], meta["epochs_done"], meta["quick"], meta["seed"]) == \
        ("scs-tiny", "sample", 20, 20, True, 0)
    history = json.loads((run / "history.json").read_text())
    assert history["epoch"] == list(range(1, 21)) and meta["final_test_accuracy"] == history["val_acc"][-1]
    assert sorted(p.name for p in run.iterdir()) == ["history.json", "model.npz"]
    assert np.isfinite(model.forward(np.zeros((1, 1, 28, 28), np.float32))).all()


@pytest.mark.skipif(os.name != "posix", reason="raises a real SIGINT (POSIX)")
def test_a_ctrl_c_during_a_checkpoint_waits_for_it_and_an_ignored_one_stays_ignored():
    before = signal.getsignal(signal.SIGINT)
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)      # as in a terminal
        finished = []
        with pytest.raises(KeyboardInterrupt):
            with mtrain._interrupts_deferred():
                signal.raise_signal(signal.SIGINT)
                finished.append("the block ran to its end")
        assert finished and signal.getsignal(signal.SIGINT) is signal.default_int_handler

        signal.signal(signal.SIGINT, signal.SIG_IGN)                  # as under nohup or `&`
        with mtrain._interrupts_deferred():
            signal.raise_signal(signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)


def test_threads_flag_runs_a_recipe_with_class_flips(tmp_path):
    """--threads on a new run (not only on --resume), and a recipe whose flips are a class list."""
    before = minisc.get_num_threads()
    try:
        assert mtrain.main(["--model", "fashion-1890", "--quick", "--data", "sample", "--threads", "1",
                            "--no-progress", "--out", str(tmp_path / "r")]) == 0
    finally:
        minisc.set_num_threads(before)
    meta = minisc.load(tmp_path / "r" / "model.npz").metadata
    assert meta["threads"] == 1
    assert list(meta["settings"]["flip"]) == [0, 1, 2, 3, 4, 6, 8]
    # its recipe's teacher was trained first, for one epoch in a smoke test
    assert meta["settings"]["teacher"] == dict(minisc.models.RECIPES["fashion-1890"]["teacher"], epochs=1)


def test_a_teacher_file_that_is_not_a_model_is_refused(capsys, no_work, tmp_path):
    junk = tmp_path / "notes.npz"
    junk.write_bytes(b"not a model")
    err = _refused(capsys, ["--teacher", str(junk), "--out", str(tmp_path / "run")])
    assert f"argument --teacher: cannot load {junk}" in err
    assert not (tmp_path / "run").exists()
    err = _refused(capsys, ["--resume", str(tmp_path), "--teacher", str(junk)])
    assert "continues a run with its own settings; drop --teacher" in err


def test_teacher_flag_distils_from_a_saved_model(tmp_path):
    """--teacher MODEL.npz: a quick run distilled from a saved model; the settings name the file
    and the distillation settings, so the run says how it was trained."""
    teacher = tmp_path / "teacher.npz"
    build_model("scs-tiny", rng=3).save(teacher)
    assert mtrain.main(["--model", "scs-tiny", "--quick", "--data", "sample", "--no-progress",
                        "--teacher", str(teacher), "--distill-weight", "0.8", "--distill-soften-student",
                        "--out", str(tmp_path / "r")]) == 0
    settings = minisc.load(tmp_path / "r" / "model.npz").metadata["settings"]
    assert settings["teacher"] == str(teacher) and settings["distill_weight"] == 0.8
    assert settings["distill_soften_student"] is True


def test_a_teacher_of_another_shape_or_a_vanished_one_is_refused(capsys, no_work, tmp_path):
    odd = tmp_path / "odd.npz"
    minisc.Sequential([minisc.Flatten(), minisc.Dense(64, 3, rng=0)], input_shape=(1, 8, 8)).save(odd)
    err = _refused(capsys, ["--teacher", str(odd), "--out", str(tmp_path / "run")])
    assert f"argument --teacher: {odd} does not take 28x28 images to 10 class scores" in err
    # a run distilled from a file that is gone by the time it is resumed
    run, teacher = tmp_path / "run2", tmp_path / "teacher.npz"
    build_model("scs-tiny", rng=3).save(teacher)
    run.mkdir()
    model = build_model("scs-tiny", rng=0)
    model.metadata = dict(model="scs-tiny", data="sample", quick=True, seed=0, epochs_done=0,
                          settings=dict(mtrain.RECIPES["scs-tiny"], teacher=str(teacher)))
    model.save(run / "model.npz")
    (run / mtrain.STATE_FILE).write_text("{}")
    teacher.unlink()
    err = _refused(capsys, ["--resume", str(run)])
    assert f"argument --resume: the run's teacher: {teacher} is not a file" in err
