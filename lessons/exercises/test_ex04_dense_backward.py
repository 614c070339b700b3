"""Tests for exercise 4 (MyDense.backward, a layer following minisc's contract).

Run: python -m pytest lessons/exercises/test_ex04_dense_backward.py
Expected values are worked out by hand, measured by finite differences (minisc.gradcheck),
or computed by minisc's own Dense layer.
"""

import numpy as np
import pytest

from minisc import SGD, Dense, Flatten, Sequential, SoftmaxCrossEntropy, gradcheck
from minisc.gradcheck import THRESHOLD

EXERCISE = "ex04_dense_backward"
# gradcheck's threshold for "right" (relative error in float64), the one lessons 4 and 10 use
GRADCHECK_THRESHOLD = THRESHOLD


def _layer(ex, n_in, n_out, dtype=np.float64, seed=0):
    layer = ex.MyDense(n_in, n_out, dtype=dtype, rng=seed)
    layer.params["b"][...] = np.linspace(-0.5, 0.5, n_out)     # a nonzero bias
    return layer


def _expected_shapes(layer, dy):
    n, (n_in, n_out) = dy.shape[0], layer.params["w"].shape
    return (f"expected shapes, with N = {n}, n_inputs = {n_in}, n_outputs = {n_out}:\n"
            f"  x {(n, n_in)}, dy {(n, n_out)}, w {(n_in, n_out)}\n"
            f"  grads['w'] {(n_in, n_out)} = (n_inputs, N) @ (N, n_outputs): x transposed, then dy\n"
            f"  grads['b'] {(n_out,)}: dy summed over the batch\n"
            f"  dx {(n, n_in)} = (N, n_outputs) @ (n_outputs, n_inputs): dy, then w transposed")


def _backward(layer, dy):
    """layer.backward(dy), after checking the shapes of everything it produced."""
    try:
        dx = layer.backward(dy)
    except ValueError as err:               # e.g. a transposed product written into grads["w"]
        raise AssertionError(
            f"backward raised ValueError: {err}\nA product or a sum has the wrong shape; "
            + _expected_shapes(layer, dy)) from err
    assert dx is not None, "backward should return dL/dx; did you forget the `return`?"
    for key in ("w", "b"):
        assert layer.grads[key].shape == layer.params[key].shape, (
            f"grads['{key}'] should have the shape of params['{key}'], "
            f"{layer.params[key].shape}, got {layer.grads[key].shape}")
    x_shape = (dy.shape[0], layer.params["w"].shape[0])
    assert np.shape(dx) == x_shape, (
        f"dx should have the shape of the input x, (N, n_inputs) = {x_shape}, got {np.shape(dx)}")
    return dx


def test_backward_hand_example(ex):
    layer = _layer(ex, 2, 3)
    layer.params["w"][...] = [[1.0, 0.0, 2.0], [0.0, 1.0, -1.0]]
    x = np.array([[1.0, 2.0], [3.0, -1.0]])
    dy = np.array([[1.0, 0.0, 2.0], [-1.0, 1.0, 0.0]])
    layer.forward(x)
    dx = _backward(layer, dy)
    # x.T @ dy, sum of dy's rows, dy @ w.T, each worked out on paper
    expected_w = np.array([[-2.0, 3.0, 2.0], [3.0, -1.0, 4.0]])
    expected_b = np.array([0.0, 1.0, 2.0])
    expected_x = np.array([[5.0, -2.0], [-1.0, 1.0]])
    ok = np.allclose(layer.grads["w"], expected_w)
    assert ok, (
        f"grads['w'] should be x.T @ dy =\n{expected_w}\ngot\n{layer.grads['w']}")
    ok = np.allclose(layer.grads["b"], expected_b)
    assert ok, (
        f"grads['b'] should be dy summed over the batch = {expected_b}, got {layer.grads['b']}")
    ok = np.allclose(dx, expected_x)
    assert ok, f"dx should be dy @ w.T =\n{expected_x}\ngot\n{dx}"


def test_gradient_shapes(ex):
    layer = _layer(ex, 5, 3)
    layer.forward(np.random.default_rng(1).standard_normal((4, 5)))
    _backward(layer, np.ones((4, 3)))                 # checks every shape


def test_shapes_with_a_square_weight_matrix(ex):
    # n_inputs == n_outputs: a transposed product has the right shape and the wrong values.
    layer = _layer(ex, 3, 3)
    layer.params["w"][...] = np.arange(9.0).reshape(3, 3)
    x = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    dy = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    layer.forward(x)
    dx = _backward(layer, dy)
    expected_w = x.T @ dy                             # [[1, 0, 0], [0, 0, 2], [0, 0, 0]]
    expected_x = dy @ layer.params["w"].T             # [[0, 3, 6], [2, 5, 8]]
    assert np.allclose(layer.grads["w"], expected_w), (
        f"grads['w'] should be x.T @ dy =\n{expected_w}\ngot\n{layer.grads['w']}\n"
        + ("that is dy.T @ x, the transpose: " if np.allclose(layer.grads["w"], expected_w.T) else "")
        + _expected_shapes(layer, dy))
    assert np.allclose(dx, expected_x), (
        f"dx should be dy @ w.T =\n{expected_x}\ngot\n{dx}\n" + _expected_shapes(layer, dy))


@pytest.mark.parametrize("n,n_in,n_out", [(4, 5, 3), (1, 7, 2), (6, 3, 8)])
def test_gradcheck_agrees(ex, n, n_in, n_out):
    layer = _layer(ex, n_in, n_out, seed=n)
    x = np.random.default_rng(n_in).standard_normal((n, n_in))
    layer.forward(x)
    _backward(layer, np.ones((n, n_out)))            # shapes first, for a clearer message
    errors = gradcheck(layer, x, max_checks=None)
    bad = {k: v for k, v in errors.items() if not v < GRADCHECK_THRESHOLD}
    assert not bad, (
        f"minisc.gradcheck finds gradients that disagree with finite differences for "
        f"N={n}, n_inputs={n_in}, n_outputs={n_out} (worst relative error per array; "
        f"right means under gradcheck's threshold, {GRADCHECK_THRESHOLD:g}): {errors}")


def test_matches_minisc_dense(ex):
    rng = np.random.default_rng(2)
    mine = _layer(ex, 6, 4)
    theirs = Dense(6, 4, dtype=np.float64)
    for key in ("w", "b"):
        theirs.params[key][...] = mine.params[key]
    x = rng.standard_normal((5, 6))
    dy = rng.standard_normal((5, 4))
    mine.forward(x)
    theirs.forward(x)
    dx = _backward(mine, dy)
    expected_dx = theirs.backward(dy)
    for key in ("w", "b"):
        ok = np.allclose(mine.grads[key], theirs.grads[key])
        assert ok, (
            f"grads['{key}'] differs from minisc.Dense's:\nexpected\n{theirs.grads[key]}\n"
            f"got\n{mine.grads[key]}")
    ok = np.allclose(dx, expected_dx)
    assert ok, "dx differs from minisc.Dense's"


def test_bias_gradient_is_a_sum_over_the_batch(ex):
    layer = _layer(ex, 3, 2)
    layer.forward(np.zeros((4, 3)))
    _backward(layer, np.ones((4, 2)))
    got = layer.grads["b"]
    ok = np.allclose(got, [4.0, 4.0])
    assert ok, (
        f"with dy = 1 for each of 4 examples, grads['b'] should be [4, 4] (a sum over the "
        f"batch), got {got}" + (": that is a mean." if np.allclose(got, 1.0) else "."))


def test_backward_leaves_params_and_dy_alone(ex):
    layer = _layer(ex, 4, 3)
    params_before = {k: v.copy() for k, v in layer.params.items()}
    rng = np.random.default_rng(3)
    dy = rng.standard_normal((2, 3))
    dy_before = dy.copy()
    layer.forward(rng.standard_normal((2, 4)))
    _backward(layer, dy)
    for key, before in params_before.items():
        ok = np.array_equal(layer.params[key], before)
        assert ok, (
            f"backward changed params['{key}']: updating parameters is the optimizer's job")
    ok = np.array_equal(dy, dy_before)
    assert ok, "backward changed the incoming gradient dy in place"


def test_second_backward_does_not_accumulate(ex):
    layer = _layer(ex, 4, 3)
    rng = np.random.default_rng(4)
    x, dy = rng.standard_normal((2, 4)), rng.standard_normal((2, 3))
    layer.forward(x)
    _backward(layer, dy)
    first = {k: v.copy() for k, v in layer.grads.items()}
    layer.forward(x)
    _backward(layer, dy)
    for key in ("w", "b"):
        ok = np.allclose(layer.grads[key], first[key])
        assert ok, (
            f"a second identical backward changed grads['{key}'] (to twice its value?): set the "
            "gradients with self.grads[key][...] = ..., not +=")


def test_float32_layer_stays_float32(ex):
    layer = _layer(ex, 3, 2, dtype=np.float32)
    layer.forward(np.ones((2, 3), dtype=np.float32))
    dx = _backward(layer, np.ones((2, 2), dtype=np.float32))
    assert layer.grads["w"].dtype == np.float32 and layer.grads["b"].dtype == np.float32, (
        "a float32 layer should keep float32 gradients")
    assert np.asarray(dx).dtype == np.float32, f"dx of a float32 layer should be float32, got {np.asarray(dx).dtype}"


def test_trains_in_a_sequential_model(ex):
    # Two classes of 2x2 "images", told apart by a linear rule: a few gradient steps must lower
    # the loss when the gradients point the right way.
    rng = np.random.default_rng(5)
    x = rng.standard_normal((64, 1, 2, 2))
    labels = (x[:, 0, 0, 0] - x[:, 0, 1, 1] > 0).astype(int)
    model = Sequential([Flatten(dtype=np.float64), ex.MyDense(4, 2, dtype=np.float64, rng=6)],
                       input_shape=(1, 2, 2))
    loss_fn, opt = SoftmaxCrossEntropy(), SGD(model, lr=0.5)
    first = loss_fn.forward(model.forward(x), labels)
    for _ in range(30):
        loss_fn.forward(model.forward(x), labels)
        model.backward(loss_fn.backward())
        opt.step()
    last = loss_fn.forward(model.forward(x), labels)
    assert last < 0.6 * first, (
        f"30 steps of gradient descent with MyDense should lower the loss clearly: it went from "
        f"{first:.4f} to {last:.4f}. A gradient with the wrong sign makes it rise.")
