"""No silent wrong answers, nothing lost: the probes of a careful user, each with its answer.

Every case here used to give a quietly wrong result, a confusing error or lost work; each now
gives the right answer or an error that names what was wrong and what is expected.
"""

import json
import os
import stat
import warnings

import numpy as np
import pytest

import minisc
from minisc import Dense, Flatten, MaxAbsPool2D, Sequential, SharpCosSim2D, SoftmaxCrossEntropy, Standardize
from minisc.files import atomic_write
from minisc.layers.scs import P_MAX, P_MIN, Q_MIN
from minisc.train import read_resume_state, train


def small_model(rng=0):
    return Sequential([SharpCosSim2D(1, 3, 3, rng=rng), MaxAbsPool2D(2), Flatten(), Dense(3 * 5 * 5, 4, rng=rng)],
                      input_shape=(1, 12, 12))


def quiet(*args):
    pass


# ---------------------------------------------------------------------------------------------
# Answers that used to be silently wrong
# ---------------------------------------------------------------------------------------------

def test_scs_is_scale_invariant_even_where_squares_overflow_float32():
    # (1e20)**2 overflows float32; the patch norm must be computed without squaring that.
    layer = SharpCosSim2D(1, 3, 3, rng=0)
    x = np.random.default_rng(0).random((2, 1, 6, 6), dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # the float32 overflow is caught and redone, not warned about
        big = layer.forward(x * np.float32(1e20)).copy()
    reference = layer.forward(x * np.float32(1e10)).copy()   # q (0.1) is negligible at both scales
    assert np.abs(reference).max() > 0.1
    np.testing.assert_allclose(big, reference, rtol=1e-5, atol=1e-6)


def test_accuracy_with_a_column_of_labels_is_refused_not_wrong():
    logits = np.eye(8, 10)
    labels = np.arange(8)
    assert minisc.accuracy(logits, labels) == 1.0
    with pytest.raises(ValueError, match=r"expected 8 labels of shape \(N,\).*got shape \(8, 1\).*ravel"):
        minisc.accuracy(logits, labels[:, None])


def test_float_labels_are_refused_not_truncated():
    with pytest.raises(TypeError, match="labels must be integers.*astype"):
        minisc.accuracy(np.eye(3), np.array([0.0, 1.0, 2.7]))
    x = np.zeros((4, 1, 12, 12), np.float32)
    with pytest.raises(TypeError, match=r"train \(y_train\): labels must be integers"):
        train(small_model(), x, np.array([0.0, 1.0, 2.9, 3.0]), epochs=1, progress=False, log=quiet)


@pytest.mark.parametrize("kwargs, message", [
    (dict(optimizer="adamw"), r"optimizer must be one of \('adam', 'sgd'\), got 'adamw'"),
    (dict(epochs=0), "epochs must be an integer >= 1"),
    (dict(batch_size=0), "batch_size must be an integer >= 1"),
    (dict(lr=0.0), "lr must be a number > 0"),
    (dict(lr=float("nan")), "lr must be a number > 0"),
    (dict(seed=-1), "seed must be an integer >= 0"),
    (dict(shift=-1), "shift must be an integer from 0 to 27"),
    (dict(flip="yes"), "flip must be True, False or a list of the class labels"),
    (dict(flip=[0, -1]), r"flip must be True, False or a list .*got \[0, -1\]"),
])
def test_train_refuses_settings_it_would_misuse(kwargs, message):
    x = np.zeros((4, 1, 12, 12), np.float32)
    with pytest.raises(ValueError, match=message):
        train(small_model(), x, np.arange(4), progress=False, log=quiet, **kwargs)


@pytest.mark.parametrize("mean, std, message", [
    (np.nan, 1.0, "mean must be a finite number"),
    (np.inf, 1.0, "mean must be a finite number"),
    (0.0, np.nan, "std must be a finite number > 0"),
    (0.0, np.inf, "std must be a finite number > 0"),
    (0.0, 0.0, "std must be a finite number > 0"),
])
def test_standardize_refuses_constants_that_poison_every_output(mean, std, message):
    with pytest.raises(ValueError, match=message):
        Standardize(mean=mean, std=std)


def test_loss_backward_before_forward_says_so():
    with pytest.raises(RuntimeError, match=r"backward\(\) called before forward\(\)"):
        SoftmaxCrossEntropy().backward()


# ---------------------------------------------------------------------------------------------
# Model files: load refuses what is wrong, save refuses what load would refuse
# ---------------------------------------------------------------------------------------------

def _rewrite(src, dst, change):
    with np.load(src) as f:
        arrays = {k: f[k] for k in f.files}
    change(arrays)
    np.savez(dst, **arrays)
    return dst


def _set(key, value):
    def change(arrays):
        arrays[key] = np.asarray(value, dtype=arrays[key].dtype).reshape(arrays[key].shape)
    return change


def _edit_meta(edit):
    def change(arrays):
        meta = json.loads(str(arrays["__minisc__"]))
        edit(meta)
        arrays["__minisc__"] = np.array(json.dumps(meta))
    return change


@pytest.mark.parametrize("key, value, message", [
    ("0.p", [-5.0, 2.0, 2.0], rf"'0.p'.*values from -5 to 2; expected values in \[{P_MIN:g}, {P_MAX:g}\]"),
    ("0.p", [2.0, 2.0, 10.5], r"'0.p'.*values from 2 to 10.5; expected values in \[0.1, 10\]"),
    ("0.q", [0.0], rf"'0.q'.*expected values in \[{Q_MIN:g}, inf\]"),
    ("3.b", [0.0, np.nan, 0.0, 0.0], r"'3.b'.*1 NaN or infinite value"),
    ("0.w", np.full((3, 1, 3, 3), np.inf), r"'0.w'.*27 NaN or infinite value"),
])
def test_load_refuses_out_of_range_and_non_finite_parameters(tmp_path, key, value, message):
    path = small_model().save(tmp_path / "good.npz")
    bad = _rewrite(path, tmp_path / "bad.npz", _set(key, value))
    with pytest.raises(ValueError, match=message) as info:
        minisc.load(bad)
    assert str(bad) in str(info.value)


@pytest.mark.parametrize("key, value", [("p", 20.0), ("p", np.nan), ("q", -1.0)])
def test_save_refuses_what_load_would_refuse_and_writes_nothing(tmp_path, key, value):
    model = small_model()
    model.layers[0].params[key][0] = value
    with pytest.raises(ValueError, match=rf"Sequential.save: .*'0.{key}'"):
        model.save(tmp_path / "model.npz")
    assert list(tmp_path.iterdir()) == []


def test_a_numpy_array_renamed_npz_is_named_for_what_it_is(tmp_path):
    path = tmp_path / "weights.npz"
    with open(path, "wb") as f:
        np.save(f, np.zeros(3))
    with pytest.raises(ValueError, match=r"weights.npz is a single NumPy array \(.npy format\), not a minisc"):
        minisc.load(path)


def test_random_bytes_never_relay_numpys_allow_pickle_advice(tmp_path):
    path = tmp_path / "noise.npz"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ValueError) as info:
        minisc.load(path)
    message = str(info.value)
    assert "noise.npz" in message and "not a readable minisc model file" in message
    assert "pickle" not in message.lower()


def test_a_pickled_entry_is_refused_without_the_advice(tmp_path):
    path = small_model().save(tmp_path / "model.npz")
    doctored = _rewrite(path, tmp_path / "pickled.npz",
                        lambda a: a.__setitem__("3.b", np.array([{"x": 1}], dtype=object)))
    with pytest.raises(ValueError) as info:
        minisc.load(doctored)
    assert "pickled.npz" in str(info.value) and "allow_pickle" not in str(info.value)


def test_a_huge_layer_in_a_crafted_file_is_refused_before_it_is_built(tmp_path, monkeypatch):
    path = small_model().save(tmp_path / "model.npz")

    def huge(meta):
        meta["layers"][3]["config"] = {"n_inputs": 10**7, "n_outputs": 8_000}    # 298 GiB
    crafted = _rewrite(path, tmp_path / "huge.npz", _edit_meta(huge))

    def never(*args, **kwargs):
        raise AssertionError("Dense was built before the file was checked")
    monkeypatch.setattr(Dense, "__init__", never)
    with pytest.raises(ValueError, match=r"huge.npz: layer 3 \(Dense.*would hold at least 80,000,000,000 "
                                         r"parameters, but the file has 304 values"):
        minisc.load(crafted)


def test_a_bad_input_shape_is_reported_with_the_file_name(tmp_path):
    path = small_model().save(tmp_path / "model.npz")
    for shape in ([1, 28, 28], "abc", [1, -3, 12]):
        bad = _rewrite(path, tmp_path / "shape.npz", _edit_meta(lambda m, s=shape: m.__setitem__("input_shape", s)))
        with pytest.raises(ValueError, match=r"minisc.load: .*shape.npz: the saved input_shape"):
            minisc.load(bad)


def test_metadata_round_trips_and_old_files_still_load(tmp_path):
    model = small_model()
    facts = {"model": "small", "epochs": 3, "settings": {"lr": 0.01, "flip": False}, "final_test_accuracy": 0.5}
    path = model.save(tmp_path / "model.npz", metadata=facts)
    loaded = minisc.load(path)
    assert loaded.metadata == facts
    assert minisc.load(loaded.save(tmp_path / "again.npz")).metadata == facts   # kept on re-save
    old = _rewrite(path, tmp_path / "old.npz", _edit_meta(lambda m: m.pop("metadata")))
    assert minisc.load(old).metadata == {}
    with pytest.raises(ValueError, match="metadata must hold only JSON values"):
        model.save(tmp_path / "x.npz", metadata={"when": object()})
    with pytest.raises(ValueError, match="metadata must hold only JSON values"):
        model.save(tmp_path / "x.npz", metadata={"acc": float("nan")})
    assert not (tmp_path / "x.npz").exists()


# ---------------------------------------------------------------------------------------------
# Files honour the umask
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_written_files_get_the_mode_the_umask_asks_for(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        path = small_model().save(tmp_path / "model.npz")
        assert stat.S_IMODE(path.stat().st_mode) == mode
        small_model(rng=1).save(path)                     # re-saving keeps it shareable
        assert stat.S_IMODE(path.stat().st_mode) == mode
        with atomic_write(tmp_path / "history.json", mode="w") as f:
            f.write("{}")
        assert stat.S_IMODE((tmp_path / "history.json").stat().st_mode) == mode
    finally:
        os.umask(old)


# ---------------------------------------------------------------------------------------------
# Checkpoints: an interrupted run resumed ends exactly where an uninterrupted one does
# ---------------------------------------------------------------------------------------------

def _toy_data():
    rng = np.random.default_rng(5)
    x = rng.random((40, 1, 12, 12), dtype=np.float32)
    y = np.arange(40) % 4
    return x, y, x[:12], y[:12]


@pytest.mark.parametrize("settings", [
    dict(optimizer="adam", schedule="one-cycle", shift=1, flip=True),
    dict(optimizer="sgd", schedule="warmup-cosine", shift=2, flip=False),
    dict(optimizer="adam", schedule="one-cycle", shift=0, flip=[0, 2]),
])
def test_a_resumed_run_ends_with_exactly_the_weights_of_an_uninterrupted_one(tmp_path, settings):
    x, y, xv, yv = _toy_data()
    common = dict(epochs=4, batch_size=8, lr=0.02, seed=7, progress=False, log=quiet, **settings)

    straight = small_model()
    history = train(straight, x, y, xv, yv, **common)

    class Stop(KeyboardInterrupt):
        pass

    def ctrl_c_after_epoch_2(epoch, model, history):
        if epoch == 2:
            raise Stop
    run = tmp_path / "run"
    with pytest.raises(Stop):
        train(small_model(), x, y, xv, yv, checkpoint_dir=run, metadata={"note": "toy"},
              callback=ctrl_c_after_epoch_2, **common)
    assert sorted(p.name for p in run.iterdir()) == ["history.json", "model.npz", "resume_state.npz"]
    saved = minisc.load(run / "model.npz")
    assert saved.metadata["epochs_done"] == 2 and saved.metadata["note"] == "toy"
    state, opt_state, saved_history = read_resume_state(run)
    assert state["epoch"] == 2 and len(saved_history["epoch"]) == 2 and opt_state

    resumed = minisc.load(run / "model.npz")
    history2 = train(resumed, x, y, xv, yv, checkpoint_dir=run, resume=True, **common)
    for a, b in zip(straight.layers, resumed.layers, strict=True):
        for key in a.params:
            np.testing.assert_array_equal(a.params[key], b.params[key])      # bit for bit
    assert history2["train_loss"] == history["train_loss"] and history2["epoch"] == [1, 2, 3, 4]
    assert sorted(p.name for p in run.iterdir()) == ["history.json", "model.npz"]   # finished: no state
    assert minisc.load(run / "model.npz").metadata["epochs_done"] == 4


def test_history_times_the_training_steps_apart_from_the_scoring():
    x, y, xv, yv = _toy_data()
    seen = []

    def slow_scoring(epoch, model, history):     # the callback runs after the epoch's timers
        seen.append(history["train_seconds"][-1])
    history = train(small_model(), x, y, xv, yv, epochs=3, batch_size=8, progress=False, log=quiet,
                    callback=slow_scoring)
    assert len(history["train_seconds"]) == 3 and history["train_seconds"] == seen
    wall = np.diff([0.0] + history["seconds"])
    assert all(0 < t <= w for t, w in zip(history["train_seconds"], wall, strict=True))


def test_resuming_a_checkpoint_without_train_seconds_fills_them_with_none(tmp_path):
    # Checkpoints written before train_seconds was kept: their epochs get None, the rest a time.
    import json
    x, y, xv, yv = _toy_data()

    def stop(epoch, model, history):
        if epoch == 2:
            raise KeyboardInterrupt
    common = dict(epochs=3, batch_size=8, progress=False, log=quiet)
    with pytest.raises(KeyboardInterrupt):
        train(small_model(), x, y, xv, yv, checkpoint_dir=tmp_path, callback=stop, **common)
    path = tmp_path / "history.json"
    old = json.loads(path.read_text())
    del old["train_seconds"]
    path.write_text(json.dumps(old))
    history = train(minisc.load(tmp_path / "model.npz"), x, y, xv, yv, checkpoint_dir=tmp_path,
                    resume=True, **common)
    assert history["train_seconds"][:2] == [None, None] and history["train_seconds"][2] > 0


def test_resuming_with_other_settings_is_refused(tmp_path):
    x, y, xv, yv = _toy_data()

    def stop(epoch, model, history):
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        train(small_model(), x, y, epochs=3, batch_size=8, checkpoint_dir=tmp_path, callback=stop,
              progress=False, log=quiet)
    with pytest.raises(ValueError, match="was a run of 3 epochs of 5 steps with adam; resume it with the same"):
        train(minisc.load(tmp_path / "model.npz"), x, y, epochs=5, batch_size=8, checkpoint_dir=tmp_path,
              resume=True, progress=False, log=quiet)
