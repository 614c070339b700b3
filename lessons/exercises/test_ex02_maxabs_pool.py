"""Tests for exercise 2 (MaxAbsPool forward and backward).

Run: python -m pytest lessons/exercises/test_ex02_maxabs_pool.py
Expected values are worked out by hand, computed by minisc's MaxAbsPool2D layer, or measured
by finite differences.
"""

import numpy as np
import pytest

from minisc import MaxAbsPool2D

EXERCISE = "ex02_maxabs_pool"


def _forward(ex, x, size):
    out = ex.maxabs_pool_forward(x, size)
    assert isinstance(out, tuple) and len(out) == 2, (
        "maxabs_pool_forward should return two things, (y, cache), e.g. `return y, cache`; "
        f"got {type(out).__name__}")
    y, cache = out
    n, c, h, w = x.shape
    expected_shape = (n, c, h // size, w // size)
    assert isinstance(y, np.ndarray) and y.shape == expected_shape, (
        f"for x of shape {x.shape} and size {size}, y should have shape {expected_shape} "
        f"(partial windows are dropped), got {getattr(y, 'shape', type(y).__name__)}")
    return y, cache


def _backward(ex, dy, cache, x_shape):
    dx = ex.maxabs_pool_backward(dy, cache)
    assert isinstance(dx, np.ndarray) and dx.shape == x_shape, (
        f"maxabs_pool_backward should return dx with the shape of the forward input {x_shape}, "
        f"got {getattr(dx, 'shape', type(dx).__name__)}")
    return dx


def _first_bad_window(x, got, expected, size):
    """Describe the first pooling window where got and expected (both like x) differ."""
    n_, c_, h, w = x.shape
    for n in range(n_):
        for c in range(c_):
            for i in range(h // size):
                for j in range(w // size):
                    win = (n, c, slice(i * size, (i + 1) * size), slice(j * size, (j + 1) * size))
                    if not np.allclose(got[win], expected[win]):
                        return (f"window (n={n}, c={c}, i={i}, j={j}) of x is\n{x[win]}\n"
                                f"expected dx there\n{expected[win]}\ngot\n{got[win]}")
    bad = np.argwhere(~np.isclose(got, expected))
    return f"outside every window (a dropped row or column) at {tuple(bad[0])}: should be 0"


def _expected_from_minisc(x, size, dy=None):
    layer = MaxAbsPool2D(size, dtype=np.float64)
    y = np.array(layer.forward(x))
    if dy is None:
        return y
    return y, np.array(layer.backward(dy))


# ------------------------------------------------------------------------------------------
# forward
def test_forward_hand_example(ex):
    x = np.array([[[[1.0, -5.0, 0.5, 0.0],
                    [2.0, 3.0, -0.25, 0.0],
                    [-3.0, 2.0, 0.0, 9.0],
                    [0.0, 1.0, -9.5, 0.0]]]])
    y, _ = _forward(ex, x, 2)
    expected = np.array([[[[-5.0, 0.5], [-3.0, -9.5]]]])
    ok = np.array_equal(y, expected)
    assert ok, (
        f"for x[0, 0] =\n{x[0, 0]}\nthe 2x2 max-abs pool is\n{expected[0, 0]}\ngot\n{y[0, 0]}\n"
        "Keep the element of largest |x| with its sign, not the largest x and not |x|.")


def test_forward_keeps_negative_extremes(ex):
    x = np.array([[[[1.0, -5.0], [2.0, 3.0]]]])
    y, _ = _forward(ex, x, 2)
    got = float(y[0, 0, 0, 0])
    assert got != 3.0, "got 3, the largest x: that is max pooling. Max-abs pooling compares |x|."
    assert got != 5.0, "got +5: compare |x|, but return the element itself, sign kept (-5)."
    assert got == -5.0, f"window [[1, -5], [2, 3]] should pool to -5, got {got}"


def test_forward_keeps_dtype_and_leaves_x_alone(ex):
    x = np.array([[[[1.0, -2.0], [0.5, 0.25]]]], dtype=np.float32)
    before = x.copy()
    y, _ = _forward(ex, x, 2)
    assert y.dtype == np.float32, f"y should have the dtype of x (float32), got {y.dtype}"
    ok = np.array_equal(x, before)
    assert ok, "maxabs_pool_forward changed its input x; work on a copy"


@pytest.mark.parametrize("shape,size", [((2, 3, 6, 8), 2), ((1, 2, 7, 5), 2), ((2, 1, 9, 10), 3),
                                        ((1, 1, 4, 4), 4), ((1, 2, 3, 3), 1)])
def test_forward_matches_minisc(ex, shape, size):
    x = np.random.default_rng(sum(shape) + size).standard_normal(shape)
    y, _ = _forward(ex, x, size)
    expected = _expected_from_minisc(x, size)
    ok = np.array_equal(y, expected)
    assert ok, (
        f"for a random x of shape {shape} with size {size}, y differs from minisc's MaxAbsPool2D "
        f"at {np.argwhere(y != expected)[0].tolist()} (n, c, i, j). Check your window indexing.")


def test_forward_ties_go_to_the_first_in_reading_order(ex):
    x = np.array([[[[-3.0, 3.0, 1.0, 2.0, 0.0, 0.0],
                    [3.0, -3.0, -2.0, 0.0, 0.0, 0.0]]]])
    y, _ = _forward(ex, x, 2)
    expected = np.array([[[[-3.0, 2.0, 0.0]]]])
    ok = np.array_equal(y, expected)
    assert ok, (
        f"with ties, the first element in reading order (top row left to right, then the next "
        f"row) wins: windows [[-3, 3], [3, -3]], [[1, 2], [-2, 0]], [[0, 0], [0, 0]] pool to "
        f"{expected[0, 0, 0].tolist()}, got {y[0, 0, 0].tolist()}")


# ------------------------------------------------------------------------------------------
# backward
def test_backward_hand_example(ex):
    x = np.array([[[[1.0, -5.0, 0.5, 0.0],
                    [2.0, 3.0, -0.25, 0.0],
                    [-3.0, 2.0, 0.0, 9.0],
                    [0.0, 1.0, -9.5, 0.0]]]])
    dy = np.array([[[[10.0, 20.0], [30.0, 40.0]]]])
    _, cache = _forward(ex, x, 2)
    dx = _backward(ex, dy, cache, x.shape)
    expected = np.array([[[[0.0, 10.0, 20.0, 0.0],
                           [0.0, 0.0, 0.0, 0.0],
                           [30.0, 0.0, 0.0, 0.0],
                           [0.0, 0.0, 40.0, 0.0]]]])
    ok = np.array_equal(dx, expected)
    assert ok, (
        f"for x[0, 0] =\n{x[0, 0]}\nand dy[0, 0] = {dy[0, 0].tolist()}, each dy goes to the "
        f"winner of its window (-5, 0.5, -3, -9.5):\n{expected[0, 0]}\ngot\n{dx[0, 0]}")


def test_backward_ties_send_the_gradient_to_one_element(ex):
    x = np.array([[[[-3.0, 3.0, 0.0, 0.0],
                    [3.0, -3.0, 0.0, 0.0]]]])
    _, cache = _forward(ex, x, 2)
    dx = _backward(ex, np.array([[[[1.0, 2.0]]]]), cache, x.shape)
    expected = np.array([[[[1.0, 0.0, 2.0, 0.0],
                           [0.0, 0.0, 0.0, 0.0]]]])
    ok = np.array_equal(dx, expected)
    assert ok, (
        "in a tie the gradient goes to exactly one element, the winner: the first of the tied "
        f"elements in reading order.\nx[0, 0] =\n{x[0, 0]}\nexpected dx[0, 0] =\n"
        f"{expected[0, 0]}\ngot\n{dx[0, 0]}")


@pytest.mark.parametrize("shape,size", [((2, 3, 6, 8), 2), ((1, 2, 7, 5), 2), ((2, 1, 9, 10), 3)])
def test_backward_matches_minisc(ex, shape, size):
    rng = np.random.default_rng(sum(shape) * size)
    x = rng.standard_normal(shape)
    _, cache = _forward(ex, x, size)
    dy = rng.standard_normal((shape[0], shape[1], shape[2] // size, shape[3] // size))
    dy_before = dy.copy()
    dx = _backward(ex, dy, cache, x.shape)
    ok = np.array_equal(dy, dy_before)
    assert ok, "maxabs_pool_backward changed its input dy"
    _, expected = _expected_from_minisc(x, size, dy)
    ok = np.allclose(dx, expected)
    assert ok, (
        f"dx is routed to the wrong place for x of shape {shape}, size {size}. The first wrong "
        f"{_first_bad_window(x, dx, expected, size)}")


def test_backward_many_ties_matches_minisc(ex):
    # Small integers: most windows hold ties, several of them between -v and +v.
    rng = np.random.default_rng(7)
    x = rng.integers(-2, 3, size=(3, 2, 6, 6)).astype(np.float64)
    y, cache = _forward(ex, x, 2)
    dy = rng.standard_normal(y.shape)
    dx = _backward(ex, dy, cache, x.shape)
    y_expected, dx_expected = _expected_from_minisc(x, 2, dy)
    ok = np.array_equal(y, y_expected)
    assert ok, "with many ties, y differs from minisc's MaxAbsPool2D"
    ok = np.count_nonzero(dx) == np.count_nonzero(dy)
    assert ok, (
        f"every window should pass its gradient to exactly one element: {np.count_nonzero(dy)} "
        f"windows, but {np.count_nonzero(dx)} nonzero entries in dx")
    ok = np.allclose(dx, dx_expected)
    assert ok, (
        f"with ties, the gradient went to the wrong element. The first wrong "
        f"{_first_bad_window(x, dx, dx_expected, 2)}")


def test_backward_matches_finite_differences(ex):
    # L = sum(y * r). Max-abs pooling is linear near an x without ties, so the central
    # difference is exact up to round-off.
    rng = np.random.default_rng(3)
    shape = (2, 2, 5, 7)
    mags = rng.permutation(np.arange(1, np.prod(shape) + 1)).reshape(shape) / np.prod(shape)
    x = mags * rng.choice([-1.0, 1.0], size=shape)         # all |x| distinct
    y, cache = _forward(ex, x, 2)
    r = rng.standard_normal(y.shape)
    dx = _backward(ex, r, cache, x.shape)
    numeric = np.zeros_like(x)
    delta = 1e-6
    for idx in np.ndindex(*shape):
        up, down = x.copy(), x.copy()
        up[idx] += delta
        down[idx] -= delta
        numeric[idx] = (np.sum(_forward(ex, up, 2)[0] * r) - np.sum(_forward(ex, down, 2)[0] * r)) / (2 * delta)
    ok = np.allclose(dx, numeric, atol=1e-6)
    assert ok, (
        f"dx disagrees with finite differences of L = sum(y * dy). The first wrong "
        f"{_first_bad_window(x, dx, numeric, 2)}")
