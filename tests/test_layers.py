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
def test_pools_match_loop_reference(cls, mode, pool, shape):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    layer = cls(pool, dtype=np.float64)
    y = layer.forward(x)
    y_ref, winners = ref.pool_forward(x, pool, mode)
    np.testing.assert_array_equal(y, y_ref)
    dy = rng.standard_normal(y.shape)
    np.testing.assert_array_equal(layer.backward(dy), ref.pool_backward(x.shape, winners, dy))


@pytest.mark.parametrize("cls", [MaxAbsPool2D, MaxPool2D])
@pytest.mark.parametrize("pool,shape", [(2, (2, 2, 6, 6)), (3, (1, 2, 7, 9))])
def test_pool_gradients_match_finite_differences(cls, pool, shape):
    rng = np.random.default_rng(1)
    x = _distinct(rng, shape)
    errors = gradcheck(cls(pool), x, delta=1e-7, max_checks=None)
    assert errors["x"] < 1e-6


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


@pytest.mark.parametrize("cin,cout,k,stride,pad,hw", [
    (1, 2, 3, 1, 0, (6, 6)), (3, 4, 3, 2, 1, (7, 8)), (2, 3, 5, 1, 2, (5, 6)), (1, 2, 1, 1, 0, (4, 3))])
def test_conv2d(cin, cout, k, stride, pad, hw):
    rng = np.random.default_rng(4)
    layer = Conv2D(cin, cout, k, stride=stride, padding=pad, dtype=np.float64, rng=0)
    layer.params["b"][:] = rng.standard_normal(cout)
    x = rng.standard_normal((2, cin) + hw)
    y = layer.forward(x)
    np.testing.assert_allclose(y, ref.conv_forward(x, layer.params["w"], layer.params["b"],
                                                   stride, pad), rtol=1e-10, atol=1e-12)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    dx_ref, dw_ref, db_ref = ref.conv_backward(x, layer.params["w"], dy, stride, pad)
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
