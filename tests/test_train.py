"""The training machinery: data loading, augmentation, schedule, reproducibility, the CLI."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import minisc
from minisc.models import MODELS, build_model
from minisc.train import evaluate, load_dataset, lr_at, random_shift, train

ROOT = Path(__file__).resolve().parents[1]


def test_named_models_sizes_and_shapes():
    sizes = {name: build_model(name, rng=0).n_params for name in MODELS}
    assert sizes["reference"] == 52_189
    assert sizes["scs-tiny"] <= 2_000
    assert abs(sizes["convnet"] - sizes["scs"]) / sizes["scs"] < 0.05    # a fair comparison
    x = np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32)
    for name in MODELS:
        assert build_model(name, rng=0).forward(x).shape == (2, 10), name
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        build_model("nope")


def test_random_shift_moves_whole_images_within_bounds():
    rng = np.random.default_rng(0)
    x = np.zeros((50, 1, 9, 9), np.float32)
    x[:, 0, 4, 4] = 1.0                                   # one lit pixel in the centre
    out = random_shift(x, 2, rng)
    assert out.shape == x.shape
    rows, cols = np.nonzero(out[:, 0].sum(axis=0))
    assert out.sum() == 50                                # nothing lost: the pixel stays inside
    assert rows.min() >= 2 and rows.max() <= 6 and cols.min() >= 2 and cols.max() <= 6
    assert len(set(zip(*np.nonzero(out[:, 0])[1:]))) > 10  # many different offsets used
    assert random_shift(x, 0, rng) is x


def test_lr_schedule_warms_up_then_decays_to_zero():
    lrs = [lr_at(s, 100, 10, 0.1) for s in range(100)]
    assert lrs[0] == pytest.approx(0.01) and lrs[9] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    assert lrs[-1] < 1e-3


def test_training_is_reproducible_and_learns_on_real_digits():
    data = load_dataset("sample", quick=True, log=lambda *a: None)
    assert data["x_train"].dtype == np.float32 and data["x_train"].shape[1:] == (1, 28, 28)
    runs = []
    for _ in range(2):
        model = build_model("scs-tiny", rng=0)
        hist = train(model, data["x_train"], data["y_train"], data["x_test"], data["y_test"],
                     epochs=4, lr=0.02, batch_size=32, shift=1, seed=3, progress=False,
                     log=lambda *a: None)
        runs.append(hist)
    assert runs[0]["train_loss"] == runs[1]["train_loss"]
    assert runs[0]["val_acc"][-1] > 0.4                   # far above chance (0.1) after 4 short epochs
    assert runs[0]["train_loss"][1] < runs[0]["train_loss"][0]
    loss, acc = evaluate(model, data["x_test"], data["y_test"])
    assert acc == pytest.approx(runs[1]["val_acc"][-1]) and np.isfinite(loss)


def test_label_smoothing_changes_the_training_loss_not_the_held_out_loss():
    """label_smoothing reaches the loss that trains the model (the same seed and data then take
    other steps), while the held-out loss stays plain cross-entropy; a bad value is refused
    before any training."""
    data = load_dataset("sample", quick=True, log=lambda *a: None)
    x, y = data["x_train"][:128], data["y_train"][:128]
    runs = {}
    for eps in (0.0, 0.2):
        model = build_model("scs-tiny", rng=0)
        runs[eps] = (model, train(model, x, y, x, y, epochs=1, lr=0.02, batch_size=32, seed=0,
                                  label_smoothing=eps, progress=False, log=lambda *a: None))
    smoothed_model, smoothed = runs[0.2]
    assert smoothed["train_loss"][0] != runs[0.0][1]["train_loss"][0]
    assert not np.array_equal(smoothed_model.layers[-1].params["w"], runs[0.0][0].layers[-1].params["w"])
    assert smoothed["val_loss"][0] == pytest.approx(evaluate(smoothed_model, x, y)[0])
    with pytest.raises(ValueError, match="label_smoothing must be a number from 0 up to"):
        train(build_model("scs-tiny", rng=0), x, y, epochs=1, label_smoothing=1.0, progress=False)


def test_train_cli_quick_writes_a_loadable_model(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "minisc.train", "--data", "sample", "--model", "scs-tiny",
                           "--quick", "--no-progress", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "test accuracy:" in proc.stdout
    model = minisc.load(out / "model.npz")
    assert model.n_params == build_model("scs-tiny").n_params
    x = np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32)
    assert model.forward(x).shape == (3, 10)
    history = json.loads((out / "history.json").read_text())
    assert len(history["val_acc"]) == 1
    assert sorted(p.name for p in out.iterdir()) == ["history.json", "model.npz"]
    # The model remembers how it was trained.
    meta = model.metadata
    assert (meta["model"], meta["data"], meta["epochs"], meta["epochs_done"], meta["quick"], meta["seed"]) == \
        ("scs-tiny", "sample", 1, 1, True, 0)
    assert meta["settings"]["lr"] == 0.03 and meta["final_test_accuracy"] == history["val_acc"][-1]


def test_nan_loss_stops_training_with_a_clear_message():
    model = build_model("scs-tiny", rng=0)
    model.layers[-1].params["w"][...] = np.nan
    x = np.random.default_rng(0).random((8, 1, 28, 28), dtype=np.float32)
    with pytest.raises((FloatingPointError, ValueError), match="NaN|nan"):
        train(model, x, np.arange(8) % 10, epochs=1, progress=False, log=lambda *a: None)


def test_auto_data_falls_back_to_the_sample_and_says_how_to_get_mnist(monkeypatch):
    from minisc import data as mdata

    def offline(*args, **kwargs):
        raise mdata.DownloadError("all mirrors failed (offline)")
    monkeypatch.setattr(mdata, "load_mnist", offline)
    said = []
    loaded = load_dataset("auto", log=said.append)
    assert loaded["name"] == "sample" and len(loaded["y_train"]) == 4_500 and len(loaded["y_test"]) == 500
    text = "\n".join(said)
    assert "python -m minisc.data download mnist" in text and "sample" in text


def test_auto_data_uses_full_mnist_when_present(monkeypatch):
    from minisc import data as mdata
    rng = np.random.default_rng(0)

    def fake(split, **kwargs):
        n = 120 if split == "train" else 40
        return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), (np.arange(n) % 10).astype(np.uint8)
    monkeypatch.setattr(mdata, "load_mnist", fake)
    loaded = load_dataset("auto", log=lambda *a: None)
    assert loaded["name"] == "mnist" and loaded["x_train"].shape == (120, 1, 28, 28)
    assert loaded["x_test"].dtype == np.float32 and loaded["x_test"].max() <= 1.0
    with pytest.raises(ValueError, match="unknown data set 'digits'"):
        load_dataset("digits")


def test_teacher_targets_cached_are_the_teachers_probabilities_for_the_augmented_batch():
    """Without shifts, TeacherTargets computes the teacher's logits once for every training
    image as it is and mirrored, and looks them up: the result must be what running the teacher
    on the batch the student sees gives. With shifts it runs the teacher on the batch."""
    from minisc.losses import softmax
    from minisc.train import TeacherTargets, random_flip
    data = load_dataset("sample", quick=True, log=lambda *a: None)
    x, y = data["x_train"][:200], data["y_train"][:200]
    teacher = build_model("scs-tiny", rng=1)
    rng = np.random.default_rng(0)
    idx = rng.permutation(200)[:64]
    for flip in (False, True, [0, 1, 2, 3]):
        targets = TeacherTargets(teacher, x, 2.0, shift=0, flip=flip)
        assert targets.cached is not None and (targets.cached[1] is None) == (flip is False)
        xb, mirrored = x[idx], None
        if flip is not False:
            xb, mirrored = random_flip(xb, rng, y[idx], None if flip is True else flip, return_mask=True)
            assert mirrored.any() and not mirrored.all()
        expected = softmax(teacher.predict(xb), temperature=2.0)
        np.testing.assert_allclose(targets.targets(idx, xb, mirrored), expected, rtol=1e-5, atol=1e-7)
    online = TeacherTargets(teacher, x, 1.0, shift=2, flip=True)
    xb = random_shift(x[idx], 2, rng)
    assert online.cached is None
    np.testing.assert_array_equal(online.targets(idx, xb, None), softmax(teacher.predict(xb)))
    assert teacher.training                 # predict() puts the mode back


def test_softmax_temperature():
    from minisc.losses import softmax
    z = np.array([[2.0, 0.0, 1000.0], [1.0, 1.0, 1.0]])
    np.testing.assert_allclose(softmax(z).sum(axis=1), 1)
    np.testing.assert_allclose(softmax(z)[0], [0, 0, 1])
    np.testing.assert_allclose(softmax(np.array([[np.log(4.0), 0.0]]), temperature=2.0), [[2 / 3, 1 / 3]])


def test_distillation_in_train_changes_the_steps_not_the_teacher_or_the_data_order():
    """A teacher with distill_weight 0 trains exactly as no teacher (the same shuffles and
    flips: the teacher takes nothing from the random stream); with weight 0.5 the steps differ;
    the teacher's weights are left as they were; bad settings are refused before training."""
    data = load_dataset("sample", quick=True, log=lambda *a: None)
    x, y = data["x_train"][:128], data["y_train"][:128]
    teacher = build_model("scs-tiny", rng=1)
    before = [{k: v.copy() for k, v in layer.params.items()} for layer in teacher.layers]
    runs = {}
    for key, extra in (("none", {}), ("w0", dict(teacher=teacher, distill_weight=0.0)),
                       ("w0.5", dict(teacher=teacher, distill_weight=0.5, distill_temperature=3.0)),
                       ("soft", dict(teacher=teacher, distill_weight=0.5, distill_temperature=3.0,
                                     distill_soften_student=True))):
        model = build_model("scs-tiny", rng=0)
        runs[key] = (model, train(model, x, y, x, y, epochs=1, lr=0.02, batch_size=32, seed=0, flip=True,
                                  progress=False, log=lambda *a: None, **extra))
    assert runs["w0"][1]["train_loss"] == runs["none"][1]["train_loss"]
    np.testing.assert_array_equal(runs["w0"][0].layers[-1].params["w"], runs["none"][0].layers[-1].params["w"])
    assert runs["w0.5"][1]["train_loss"] != runs["none"][1]["train_loss"]
    assert not np.array_equal(runs["w0.5"][0].layers[-1].params["w"], runs["none"][0].layers[-1].params["w"])
    # Hinton et al.'s form is another loss: other losses, other steps
    assert runs["soft"][1]["train_loss"] != runs["w0.5"][1]["train_loss"]
    assert not np.array_equal(runs["soft"][0].layers[-1].params["w"], runs["w0.5"][0].layers[-1].params["w"])
    for layer, saved in zip(teacher.layers, before):
        for k, v in layer.params.items():
            np.testing.assert_array_equal(v, saved[k])
    bad = [(dict(teacher=teacher, distill_temperature=0), "distill_temperature must be a number > 0"),
           (dict(teacher=teacher, distill_temperature=float("nan")), "distill_temperature must be a number > 0"),
           (dict(teacher=teacher, distill_weight=1.5), "distill_weight must be a number from 0 to 1"),
           (dict(teacher=teacher, distill_weight="0.5"), "distill_weight must be a number from 0 to 1"),
           (dict(teacher=teacher, distill_soften_student="yes"), "distill_soften_student must be True or False")]
    for extra, message in bad:
        with pytest.raises(ValueError, match=message):
            train(build_model("scs-tiny", rng=0), x, y, epochs=1, progress=False, **extra)
    with pytest.raises(TypeError, match="teacher must be a trained model"):
        train(build_model("scs-tiny", rng=0), x, y, epochs=1, progress=False, teacher="reference")


def test_a_teacher_named_by_a_recipe_is_trained_first_and_is_the_same_every_time():
    """teacher=dict(model, epochs, lr) trains that model first on the same images with the same
    seed and augmentation: the student's run is then exactly the one with that trained teacher
    passed in, so a resumed run, which trains it again, distils from the very same teacher."""
    from minisc.train import train_teacher
    data = load_dataset("sample", quick=True, log=lambda *a: None)
    x, y = data["x_train"][:96], data["y_train"][:96]
    spec = dict(model="scs-tiny", epochs=2, lr=0.02)
    common = dict(epochs=1, lr=0.02, batch_size=32, seed=3, flip=[0, 1, 2], progress=False,
                  log=lambda *a: None)
    teacher = train_teacher(spec, x, y, seed=3, batch_size=32, optimizer="adam", schedule="warmup-cosine",
                            shift=0, flip=[0, 1, 2], log=lambda *a: None)
    assert not teacher.training
    folded = train_teacher(spec, x, y, seed=3, batch_size=32, optimizer="adam", schedule="warmup-cosine",
                           shift=0, flip=[0, 1, 2], log=lambda *a: None, fold=True)
    assert "MaxAbsPool2D" not in [type(layer).__name__ for layer in folded.layers]
    named, given = build_model("scs-tiny", rng=0), build_model("scs-tiny", rng=0)
    by_name = train(named, x, y, teacher=spec, **common)
    by_model = train(given, x, y, teacher=teacher, **common)
    assert by_name["train_loss"] == by_model["train_loss"]
    np.testing.assert_array_equal(named.layers[0].params["w"], given.layers[0].params["w"])
    for bad in (dict(model="resnet", epochs=1, lr=0.01), dict(model="scs-tiny", epochs=1)):
        with pytest.raises(ValueError, match=r"a teacher given as a dict must be dict\(model=NAME, epochs=E, lr=LR\)"):
            train(build_model("scs-tiny", rng=0), x, y, teacher=bad, **common)
