"""MaxAbsPool2D, MaxPool2D, Dense, Flatten, Conv2D, ReLU, Standardize: gradients by finite
differences and agreement with the loop references."""

import numpy as np
import pytest

from minisc import (
    Conv2D,
    Dense,
    Flatten,
    MaxAbsPool2D,
    MaxPool2D,
    ReLU,
    SharpCosSim2D,
    Standardize,
    gradcheck,
)
from minisc import reference as ref


def _distinct(rng, shape):
    """Random values whose absolute values are all different (no ties for the pools)."""
    mags = rng.permutation(np.arange(1, np.prod(shape) + 1)).reshape(shape) / np.prod(shape)
    return mags * rng.choice([-1.0, 1.0], size=shape)


@pytest.mark.parametrize("cls,mode", [(MaxAbsPool2D, "maxabs"), (MaxPool2D, "max")])
@pytest.mark.parametrize("pool,shape", [(2, (2, 3, 6, 8)), (2, (1, 2, 7, 5)), (3, (2, 1, 9, 10)),
                                        ((2, 3), (1, 2, 6, 7))])
@pytest.mark.parametrize("ceil_mode", [False, True])
def test_pools_match_loop_reference(cls, mode, pool, shape, ceil_mode):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    layer = cls(pool, ceil_mode=ceil_mode, dtype=np.float64)
    y = layer.forward(x)
    y_ref, winners = ref.pool_forward(x, pool, mode, ceil_mode)
    assert y.shape[1:] == layer.output_shape(shape[1:])
    np.testing.assert_array_equal(y, y_ref)
    dy = rng.standard_normal(y.shape)
    np.testing.assert_array_equal(layer.backward(dy), ref.pool_backward(x.shape, winners, dy))


@pytest.mark.parametrize("cls", [MaxAbsPool2D, MaxPool2D])
@pytest.mark.parametrize("pool,shape,ceil_mode", [(2, (2, 2, 6, 6), False), (3, (1, 2, 7, 9), False),
                                                  (2, (2, 2, 7, 5), True), (4, (1, 3, 7, 7), True)])
def test_pool_gradients_match_finite_differences(cls, pool, shape, ceil_mode):
    rng = np.random.default_rng(1)
    x = _distinct(rng, shape)
    errors = gradcheck(cls(pool, ceil_mode=ceil_mode), x, delta=1e-7, max_checks=None)
    assert errors["x"] < 1e-6


@pytest.mark.parametrize("cls", [MaxAbsPool2D, MaxPool2D])
def test_ceil_mode_sizes_of_the_2764_network(cls):
    """28 -> SCS 3x3 -> 26 -> 13 -> 7 -> 4 -> (pool 4) 1, as in the 2,764-parameter network."""
    sizes = [26]
    for k in (2, 2, 2, 4):
        sizes.append(cls(k, ceil_mode=True).output_shape((1, sizes[-1], sizes[-1]))[1])
    assert sizes == [26, 13, 7, 4, 1]
    x = -np.ones((1, 1, 7, 7))                       # all negative: padding must never win
    y = cls(2, ceil_mode=True, dtype=np.float64).forward(x)
    np.testing.assert_array_equal(y, -np.ones((1, 1, 4, 4)))


def test_maxabspool_picks_negative_extremes():
    x = np.array([[[[1.0, -5.0, 0.5, 0.2],
                    [2.0, 3.0, -0.1, -0.3],
                    [-9.0, 8.9, 0.0, 0.0],
                    [0.0, 1.0, 0.0, 0.0]]]], dtype=np.float32)
    layer = MaxAbsPool2D(2)
    y = layer.forward(x)
    np.testing.assert_array_equal(y, np.float32([[[[-5.0, 0.5], [-9.0, 0.0]]]]))
    dx = layer.backward(np.ones_like(y))
    expected = np.zeros_like(x)
    expected[0, 0, 0, 1] = expected[0, 0, 0, 2] = expected[0, 0, 2, 0] = 1
    expected[0, 0, 2, 2] = 1                              # all-zero window: first element wins
    np.testing.assert_array_equal(dx, expected)
    np.testing.assert_array_equal(MaxPool2D(2).forward(x), np.float32([[[[3.0, 0.5], [8.9, 0.0]]]]))


def test_pool_ties_are_deterministic():
    x = np.array([[[[-2.0, 2.0], [2.0, -2.0]]]])
    layer = MaxAbsPool2D(2, dtype=np.float64)
    assert layer.forward(x)[0, 0, 0, 0] == -2.0           # the first in row-major order
    np.testing.assert_array_equal(layer.backward(np.ones((1, 1, 1, 1))),
                                  [[[[1.0, 0.0], [0.0, 0.0]]]])


def test_pool_drops_incomplete_windows():
    assert MaxAbsPool2D(2).forward(np.ones((1, 1, 5, 7), np.float32)).shape == (1, 1, 2, 3)


@pytest.mark.parametrize("layout", [(0, 2, 3, 1), (1, 0, 2, 3)], ids=["channels-last", "kernel-major"])
def test_pool_accepts_transposed_views_and_keeps_their_layout(layout):
    # SharpCosSim2D hands on its output as a (N, K, H, W) view of (K, N, H, W) memory, and its
    # input gradient as a view of (N, H, W, C) memory: the pools must take both without fuss.
    rng = np.random.default_rng(2)
    shape = (2, 3, 6, 6)
    stored = rng.standard_normal(tuple(shape[i] for i in layout))
    x = stored.transpose(np.argsort(layout))              # logical (N, C, H, W) view
    assert x.shape == shape and not x.flags.c_contiguous
    layer = MaxAbsPool2D(2, dtype=np.float64)
    y = layer.forward(x)
    np.testing.assert_array_equal(y, ref.pool_forward(np.ascontiguousarray(x), 2)[0])
    dx = layer.backward(np.ones_like(y))
    assert dx.shape == shape
    assert dx.transpose(layout).flags.c_contiguous        # same memory order as the input


@pytest.mark.parametrize("shape", [(4, 3, 5), (1, 7, 2)])
def test_dense(shape):
    n, i, o = shape
    rng = np.random.default_rng(3)
    layer = Dense(i, o, dtype=np.float64, rng=0)
    layer.params["b"][:] = rng.standard_normal(o)
    x = rng.standard_normal((n, i))
    np.testing.assert_allclose(layer.forward(x),
                               ref.dense_forward(x, layer.params["w"], layer.params["b"]))
    errors = gradcheck(layer, x, max_checks=None)
    assert set(errors) == {"x", "w", "b"}
    assert max(errors.values()) < 1e-6


@pytest.mark.parametrize("cin,cout,k,stride,pad,hw,groups", [
    (1, 2, 3, 1, 0, (6, 6), 1), (3, 4, 3, 2, 1, (7, 8), 1), (2, 3, 5, 1, 2, (5, 6), 1),
    (1, 2, 1, 1, 0, (4, 3), 1), (4, 6, 3, 1, 1, (5, 6), 2), (3, 3, 3, 1, 1, (6, 5), 3),
    (2, 4, (3, 2), 2, 1, (7, 6), 2)])
def test_conv2d(cin, cout, k, stride, pad, hw, groups):
    rng = np.random.default_rng(4)
    layer = Conv2D(cin, cout, k, stride=stride, padding=pad, groups=groups, dtype=np.float64, rng=0)
    layer.params["b"][:] = rng.standard_normal(cout)
    x = rng.standard_normal((2, cin) + hw)
    y = layer.forward(x)
    np.testing.assert_allclose(y, ref.conv_forward(x, layer.params["w"], layer.params["b"],
                                                   stride, pad, groups), rtol=1e-10, atol=1e-12)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    dx_ref, dw_ref, db_ref = ref.conv_backward(x, layer.params["w"], dy, stride, pad, groups)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.grads["w"], dw_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.grads["b"], db_ref, rtol=1e-10, atol=1e-12)
    errors = gradcheck(layer, x, max_checks=50)
    assert max(errors.values()) < 1e-6


def test_relu_flatten_standardize():
    rng = np.random.default_rng(5)
    x = _distinct(rng, (2, 3, 4, 5))
    assert gradcheck(ReLU(), x)["x"] < 1e-7
    assert gradcheck(Flatten(), x)["x"] < 1e-7
    assert gradcheck(Standardize(0.5, 0.25), x)["x"] < 1e-7
    np.testing.assert_array_equal(ReLU(dtype=np.float64).forward(x), np.maximum(x, 0))
    y = Flatten(dtype=np.float64).forward(x)
    np.testing.assert_array_equal(y, x.reshape(2, -1))
    np.testing.assert_allclose(Standardize(0.5, 0.25, dtype=np.float64).forward(x), (x - 0.5) / 0.25)


def test_flatten_order_is_channels_first_for_channels_last_views():
    x_nhwc = np.arange(2 * 3 * 2 * 4, dtype=np.float32).reshape(2, 3, 2, 4)
    x = x_nhwc.transpose(0, 3, 1, 2)                      # logical (N, C=4, H=3, W=2)
    np.testing.assert_array_equal(Flatten().forward(x), np.ascontiguousarray(x).reshape(2, -1))


def test_every_layer_computes_in_its_dtype():
    x = np.random.default_rng(6).random((2, 1, 8, 8))
    for dtype in (np.float32, np.float64):
        layers = [SharpCosSim2D(1, 2, 3, dtype=dtype), MaxAbsPool2D(2, dtype=dtype),
                  Conv2D(2, 2, 1, dtype=dtype), ReLU(dtype=dtype), MaxPool2D(dtype=dtype),
                  Standardize(dtype=dtype), Flatten(dtype=dtype), Dense(2, 3, dtype=dtype)]
        h = x
        for layer in layers:
            h = layer.forward(h)
            assert h.dtype == dtype, (layer, h.dtype)
        for layer in reversed(layers):
            h = layer.backward(np.ones_like(h) if h is not None else None)
            assert h.dtype == dtype, (layer, h.dtype)


# ---------------------------------------------------------------------------------------------
# the layer contract: output shapes recorded by the base class, evaluation mode, registration
def _every_layer():
    return [SharpCosSim2D(2, 4, 3, padding=1, groups=2, dtype=np.float64, rng=0),
            MaxAbsPool2D(2, ceil_mode=True, dtype=np.float64), MaxPool2D(2, dtype=np.float64),
            Conv2D(2, 2, 3, dtype=np.float64, rng=0), ReLU(dtype=np.float64),
            Flatten(dtype=np.float64), Standardize(dtype=np.float64)]


@pytest.mark.parametrize("layer", _every_layer(), ids=lambda layer: type(layer).__name__)
def test_eval_mode_keeps_no_cache_and_refuses_backward(layer):
    x = np.random.default_rng(9).standard_normal((2, 2, 5, 5))
    y_train = layer.forward(x)
    assert layer._cache is not None or isinstance(layer, Standardize)
    layer.eval()
    y_eval = layer.forward(x)
    np.testing.assert_array_equal(y_eval, y_train)     # the same numbers, nothing kept
    assert layer._cache is None
    with pytest.raises(RuntimeError, match="evaluation mode"):
        layer.backward(np.ones_like(y_eval))
    layer.train()
    layer.forward(x)
    assert layer.backward(np.ones_like(y_eval)).shape == x.shape


def test_the_base_class_checks_dy_against_the_last_output():
    layer = MaxAbsPool2D(2, dtype=np.float64)
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.ones((1, 1, 2, 2)))
    layer.forward(np.ones((1, 1, 4, 4)))
    with pytest.raises(ValueError, match=r"\(1, 1, 2, 2\)"):
        layer.backward(np.ones((1, 1, 4, 4)))


def test_register_layer_refuses_taken_names_and_missing_dtype():
    from minisc.layers import Layer, register_layer

    class ReLU(Layer):                                 # noqa: F811  (the name is the point)
        def forward(self, x):
            return x

    with pytest.raises(ValueError, match="taken"):
        register_layer(ReLU)

    class NoDtype(Layer):
        def __init__(self, size):
            super().__init__()

    with pytest.raises(TypeError, match="dtype"):
        register_layer(NoDtype)
