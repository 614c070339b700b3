"""Sequential: the reference network, summary, save/load, and what happens with bad files."""

import json
import zipfile

import numpy as np
import pytest

import minisc
from minisc import (
    Conv2D,
    Dense,
    Flatten,
    MaxAbsPool2D,
    ReLU,
    Sequential,
    SharpCosSim2D,
    Standardize,
    gradcheck,
)


def reference_network(rng=0, dtype=np.float32):
    return Sequential([
        SharpCosSim2D(1, 24, 5, dtype=dtype, rng=rng), MaxAbsPool2D(2, dtype=dtype),
        SharpCosSim2D(24, 48, 5, dtype=dtype, rng=rng), MaxAbsPool2D(2, dtype=dtype),
        SharpCosSim2D(48, 48, 3, padding=1, dtype=dtype, rng=rng), MaxAbsPool2D(2, dtype=dtype),
        Flatten(dtype=dtype), Dense(192, 10, dtype=dtype, rng=rng),
    ], input_shape=(1, 28, 28))


def small_network(dtype=np.float32):
    return Sequential([Standardize(dtype=dtype), SharpCosSim2D(1, 4, 3, padding=1, dtype=dtype, rng=1),
                       MaxAbsPool2D(2, dtype=dtype), SharpCosSim2D(4, 6, 3, dtype=dtype, rng=2),
                       MaxAbsPool2D(2, dtype=dtype), Flatten(dtype=dtype),
                       Dense(6, 3, dtype=dtype, rng=3)], input_shape=(1, 8, 8))


def test_reference_network_has_52189_parameters_and_runs():
    net = reference_network()
    assert net.n_params == 52_189
    x = np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32)
    y = net.forward(x)
    assert y.shape == (3, 10) and y.dtype == np.float32
    assert net.backward(np.ones_like(y)) is None          # first layer skips dL/dx
    text = net.summary()
    assert "52,189" in text and "(24, 24, 24)" in text and "(192,)" in text
    assert str(net) == text


def test_whole_model_gradcheck():
    rng = np.random.default_rng(1)
    x = rng.random((2, 1, 8, 8))
    errors = gradcheck(small_network(), x, max_checks=40)
    assert len(errors) == 1 + 3 + 3 + 2
    for name, err in errors.items():
        assert err < 1e-4, f"{name}: {err:.2e}"


def test_output_shape_mismatch_is_reported_at_construction():
    with pytest.raises(ValueError, match=r"layer 3 .*Dense.*"):
        Sequential([SharpCosSim2D(1, 2, 3), MaxAbsPool2D(2), Flatten(), Dense(99, 2)],
                   input_shape=(1, 8, 8)).forward(np.zeros((1, 1, 8, 8), np.float32))
    with pytest.raises(ValueError, match="layer 2"):
        Sequential([SharpCosSim2D(1, 2, 3), MaxAbsPool2D(2), SharpCosSim2D(2, 2, 5)],
                   input_shape=(1, 8, 8))


def test_save_load_round_trip(tmp_path):
    net = small_network()
    net.layers[1].params["p"][:] = [0.7, 1.5, 2.0, 3.0]
    path = net.save(tmp_path / "model.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]   # no temp file left
    loaded = minisc.load(path)
    assert [type(a) for a in loaded.layers] == [type(b) for b in net.layers]
    assert loaded.input_shape == (1, 8, 8)
    for a, b in zip(net.layers, loaded.layers, strict=False):
        assert a.config() == b.config()
        for k in a.params:
            np.testing.assert_array_equal(a.params[k], b.params[k])
            assert b.params[k].dtype == np.float32
    x = np.random.default_rng(2).random((4, 1, 8, 8), dtype=np.float32)
    np.testing.assert_array_equal(net.forward(x), loaded.forward(x))
    assert minisc.load(path, dtype=np.float64).dtype == np.float64


def test_conv_network_round_trip(tmp_path):
    net = Sequential([Conv2D(1, 3, 3, rng=0), ReLU(), Flatten(), Dense(3 * 6 * 6, 2, rng=0)])
    loaded = minisc.load(net.save(tmp_path / "conv.npz"))
    x = np.random.default_rng(3).random((2, 1, 8, 8), dtype=np.float32)
    np.testing.assert_array_equal(net.forward(x), loaded.forward(x))


def test_save_replaces_atomically(tmp_path):
    path = tmp_path / "model.npz"
    small_network().save(path)
    first = path.read_bytes()
    net = small_network()
    net.layers[-1].params["b"][:] = 1.0
    net.save(path)
    assert path.read_bytes() != first
    assert len(list(tmp_path.iterdir())) == 1


def test_failed_save_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    small_network().save(path)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError, match="disk full"):
        small_network().save(path)
    assert path.read_bytes() == before
    assert len(list(tmp_path.iterdir())) == 1


def test_load_truncated_file(tmp_path):
    path = small_network().save(tmp_path / "model.npz")
    data = path.read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a readable minisc model file"):
        minisc.load(tmp_path / "cut.npz")


def test_load_not_a_model(tmp_path):
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ValueError, match="not a readable minisc model"):
        minisc.load(tmp_path / "text.npz")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="not a minisc model"):
        minisc.load(tmp_path / "other.npz")
    with pytest.raises(FileNotFoundError, match="no such file"):
        minisc.load(tmp_path / "missing.npz")


def _rewrite(src, dst, change):
    with np.load(src) as f:
        arrays = {k: f[k] for k in f.files}
    change(arrays)
    np.savez(dst, **arrays)


def test_load_shape_mismatch_and_missing_parameter(tmp_path):
    path = small_network().save(tmp_path / "model.npz")

    def wrong_shape(a):
        a["1.w"] = np.zeros((4, 1, 5, 5), np.float32)
    _rewrite(path, tmp_path / "shape.npz", wrong_shape)
    with pytest.raises(ValueError, match=r"'1.w'.*shape \(4, 1, 5, 5\), expected \(4, 1, 3, 3\)"):
        minisc.load(tmp_path / "shape.npz")

    _rewrite(path, tmp_path / "missing.npz", lambda a: a.pop("6.b"))
    with pytest.raises(ValueError, match="lacks parameter '6.b'"):
        minisc.load(tmp_path / "missing.npz")

    def unknown_layer(a):
        meta = json.loads(str(a["__minisc__"]))
        meta["layers"][0]["type"] = "Mystery"
        a["__minisc__"] = np.array(json.dumps(meta))
    _rewrite(path, tmp_path / "unknown.npz", unknown_layer)
    with pytest.raises(ValueError, match="unknown type 'Mystery'"):
        minisc.load(tmp_path / "unknown.npz")

    def bad_json(a):
        a["__minisc__"] = np.array("{not json")
    _rewrite(path, tmp_path / "json.npz", bad_json)
    with pytest.raises(ValueError, match="damaged or unknown architecture"):
        minisc.load(tmp_path / "json.npz")
    assert zipfile.is_zipfile(path)


def test_load_weights_from_another_architecture_is_refused(tmp_path):
    path = small_network().save(tmp_path / "small.npz")
    other = reference_network()
    before = other.layers[0].params["w"].copy()
    with pytest.raises(ValueError, match="layer|layers"):
        other.load_weights(path)
    np.testing.assert_array_equal(other.layers[0].params["w"], before)
    same = small_network()
    same.layers[1].params["w"][...] = 0
    same.load_weights(path)
    np.testing.assert_array_equal(same.layers[1].params["w"], small_network().layers[1].params["w"])


def test_params_are_updated_in_place_by_optimizers():
    net = small_network()
    w = net.layers[1].params["w"]
    w_before = w.copy()
    opt = minisc.Adam(net, lr=0.01)
    x = np.random.default_rng(4).random((2, 1, 8, 8), dtype=np.float32)
    loss = minisc.SoftmaxCrossEntropy()
    loss.forward(net.forward(x), np.array([0, 1]))
    net.backward(loss.backward())
    opt.step()
    assert net.layers[1].params["w"] is w
    assert not np.array_equal(w, w_before)


def test_a_registered_layer_of_your_own_saves_and_loads(tmp_path):
    @minisc.register_layer
    class Scale(minisc.Layer):
        def __init__(self, factor=2.0, dtype=np.float32):
            super().__init__(dtype)
            self.factor = float(factor)

        def config(self):
            return dict(factor=self.factor)

        def forward(self, x):
            x = self._check_input(x)
            self._y_shape = x.shape
            return x * self.dtype.type(self.factor)

        def backward(self, dy):
            return self._check_grad(dy) * self.dtype.type(self.factor)

    net = Sequential([Scale(3.0), Flatten(), Dense(4, 2, rng=0)])
    loaded = minisc.load(net.save(tmp_path / "custom.npz"))
    assert isinstance(loaded.layers[0], Scale) and loaded.layers[0].factor == 3.0
    x = np.ones((2, 1, 2, 2), np.float32)
    np.testing.assert_array_equal(loaded.forward(x), net.forward(x))

    class Unregistered(Scale):
        pass
    with pytest.raises(TypeError, match="register_layer"):
        Sequential([Unregistered(), Flatten()]).save(tmp_path / "nope.npz")
    assert not (tmp_path / "nope.npz").exists()


def test_eval_mode_predicts_the_same_keeps_nothing_and_restores_training():
    from minisc.models import build_model
    model = build_model("scs-tiny", rng=0)
    x = np.random.default_rng(0).random((6, 1, 28, 28)).astype(np.float32)
    y_train_mode = model.forward(x)
    assert model.training
    np.testing.assert_array_equal(model.predict(x), y_train_mode)
    np.testing.assert_allclose(model.predict(x, batch_size=4), y_train_mode, rtol=1e-4, atol=1e-6)
    assert model.training                                # predict() restored the mode
    model.eval()
    assert not model.training
    np.testing.assert_array_equal(model.forward(x), y_train_mode)
    assert all(layer._cache is None for layer in model.layers)
    with pytest.raises(RuntimeError, match="evaluation mode"):
        model.backward(np.ones((6, 10), dtype=np.float32))
    model.train()
    model.forward(x)
    model.backward(np.ones((6, 10), dtype=np.float32))   # works again


def test_eval_mode_forwards_large_batches_in_chunks():
    from minisc.model import EVAL_CHUNK
    from minisc.models import build_model
    model = build_model("scs-tiny", rng=0)
    x = np.random.default_rng(1).random((EVAL_CHUNK + 7, 1, 28, 28)).astype(np.float32)
    y_whole = model.forward(x)                          # training mode: one pass
    model.eval()
    y_chunks = model.forward(x)
    assert y_chunks.shape == y_whole.shape
    np.testing.assert_allclose(y_chunks, y_whole, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(y_chunks[EVAL_CHUNK:], model.forward(x[EVAL_CHUNK:]))


def test_kernel_draw_and_log_steps_survive_save_and_load(tmp_path):
    layer = SharpCosSim2D(1, 2, 3, init="lecun", log_steps={"p": 0.2, "q": 1 / 0.3}, rng=0)
    loaded = minisc.load(Sequential([layer]).save(tmp_path / "m.npz")).layers[0]
    assert loaded.init == "lecun"
    assert loaded.log_steps == {"p": 0.2, "q": 1 / 0.3}
    # LeCun uniform: |w| < sqrt(3 / fan_in), fan_in = 9; Glorot's limit here is sqrt(6 / 27)
    assert np.abs(layer.params["w"]).max() < np.sqrt(3 / 9)
    assert np.abs(layer.params["w"]).max() > np.sqrt(6 / 27)


@pytest.mark.parametrize("name", ["reference", "scs", "fashion-2764"])
def test_fold_pools_gives_the_same_network_with_fewer_layers(name):
    from minisc.models import build_model, fold_pools

    model = build_model(name, rng=0, dtype=np.float64)
    folded = fold_pools(model)
    n_pools = sum(type(layer).__name__ == "MaxAbsPool2D" for layer in model.layers)
    assert n_pools and len(folded.layers) == len(model.layers) - n_pools
    assert not any(type(layer).__name__ == "MaxAbsPool2D" for layer in folded.layers)
    assert folded.n_params == model.n_params and folded.input_shape == model.input_shape
    x = np.random.default_rng(0).random((4, 1, 28, 28))
    logits = model.forward(x)
    np.testing.assert_allclose(folded.forward(x), logits, rtol=1e-12, atol=1e-14)
    dy = np.random.default_rng(1).standard_normal(logits.shape)
    model.backward(dy)
    folded.backward(dy)
    with_params = [[layer for layer in m.layers if layer.params] for m in (model, folded)]
    for a, b in zip(*with_params):
        for key in a.grads:
            np.testing.assert_allclose(b.grads[key], a.grads[key], rtol=1e-8, atol=1e-12, err_msg=f"{a} {key}")
    folded.layers[0].params["w"][...] = 0.0            # copies: the model passed in is untouched
    assert np.abs(model.layers[0].params["w"]).max() > 0


@pytest.mark.parametrize("name", ["scs", "fashion-2764", "fashion-1890"])
def test_unfold_pools_gives_back_the_network_its_builder_makes(name):
    from minisc.models import build_model, fold_pools, unfold_pools

    model = build_model(name, rng=0, dtype=np.float64)
    model.metadata = {"seed": 0}
    back = unfold_pools(fold_pools(model))
    assert [(type(a), a.config()) for a in back.layers] == [(type(b), b.config()) for b in model.layers]
    for a, b in zip(back.layers, model.layers):
        assert a.dtype == b.dtype and a.params.keys() == b.params.keys()
        for key in a.params:
            np.testing.assert_array_equal(a.params[key], b.params[key])
    assert back.metadata == model.metadata and back.input_shape == model.input_shape
    x = np.random.default_rng(0).random((3, 1, 28, 28))
    np.testing.assert_array_equal(back.forward(x), model.forward(x))
    back.layers[0].params["w"][...] = 0.0              # copies: the model passed in is untouched
    assert np.abs(model.layers[0].params["w"]).max() > 0
    assert unfold_pools(model).n_params == model.n_params     # nothing folded: a plain copy


def test_fold_pools_leaves_a_subclass_as_it_is():
    """A tinkerer's own SharpCosSim2D subclass may compute something else: fold_pools must not
    replace it by the stock layer, and the folded model must give the same outputs."""
    from minisc.models import fold_pools

    class MySCS(SharpCosSim2D):
        pass

    model = Sequential([MySCS(1, 2, 3, rng=0, dtype=np.float64), MaxAbsPool2D(2, dtype=np.float64),
                        SharpCosSim2D(2, 2, 3, rng=1, dtype=np.float64), MaxAbsPool2D(2, dtype=np.float64)],
                       input_shape=(1, 12, 12))
    folded = fold_pools(model)
    assert [type(layer) for layer in folded.layers] == [MySCS, MaxAbsPool2D, SharpCosSim2D]
    assert folded.layers[2].pool is not None
    x = np.random.default_rng(0).random((3, 1, 12, 12))
    np.testing.assert_allclose(folded.forward(x), model.forward(x), rtol=1e-12, atol=1e-14)
