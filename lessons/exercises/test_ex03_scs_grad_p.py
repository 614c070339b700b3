"""Tests for exercise 3 (dy/dc, dy/dp and the batch gradient dL/dp of SCS).

Run: python -m pytest lessons/exercises/test_ex03_scs_grad_p.py
Expected values are worked out by hand, measured by finite differences, or taken from
minisc's SharpCosSim2D layer.
"""

import math

import numpy as np
import pytest

from minisc import SharpCosSim2D

EXERCISE = "ex03_scs_grad_p"
TINY = 1e-30


def _sharpen(c, p):
    """The test's own copy of the forward step, so a change to the exercise file cannot fool it."""
    return np.sign(c) * np.maximum(np.abs(c), TINY) ** p


def _call(ex, name, *args):
    """Call ex.<name>(*args), turning NumPy's divide/invalid warnings into a clear failure."""
    problem = None
    with np.errstate(divide="raise", invalid="raise", over="raise"):
        try:
            out = getattr(ex, name)(*args)
        except FloatingPointError as err:
            problem = str(err)
    if problem is not None:
        pytest.fail(f"{name} triggered a NumPy '{problem}' for c = {args[0].ravel().tolist()}, "
                    f"p = {np.ravel(args[1]).tolist()}: clamp |c| to TINY *before* the power "
                    "or the log (np.where evaluates both of its branches in full).")
    out = np.asarray(out)
    assert out.shape == np.broadcast_shapes(np.shape(args[0]), np.shape(args[1])), (
        f"{name} should return one value per entry of c, shape {np.shape(args[0])}; got {out.shape}")
    return out


def _one(ex, name, c, p):
    return float(_call(ex, name, np.array([[c]]), np.array([p]))[0, 0])


# ------------------------------------------------------------------------------------------
# dy/dc
@pytest.mark.parametrize("c,p,expected", [
    (0.5, 2.0, 1.0),                # 2 * 0.5
    (0.25, 3.0, 0.1875),            # 3 * 0.25**2
    (0.64, 0.5, 0.625),             # 0.5 * 0.64**-0.5 = 0.5 / 0.8
    (0.3, 1.0, 1.0),                # y = c
])
def test_dy_dc_hand_values(ex, c, p, expected):
    got = _one(ex, "dy_dc", c, p)
    assert got == pytest.approx(expected, rel=1e-9), (
        f"dy/dc at c = {c}, p = {p} should be p * |c|**(p - 1) = {expected}, got {got}")


def test_dy_dc_is_even_in_c(ex):
    got = _one(ex, "dy_dc", -0.5, 2.0)
    assert got == pytest.approx(1.0, rel=1e-9), (
        f"dy/dc at c = -0.5, p = 2 should be +1.0, the same as at c = +0.5, got {got}. "
        "y = sign(c) |c|**p is odd in c, so its derivative is even: the sign cancels. "
        "Leave sign(c) out of dy/dc.")


def test_dy_dc_matches_finite_differences(ex):
    rng = np.random.default_rng(0)
    c = rng.uniform(0.05, 0.95, size=(20, 4)) * rng.choice([-1.0, 1.0], size=(20, 4))
    p = np.array([0.3, 1.0, 2.0, 4.5])
    h = 1e-6
    numeric = (_sharpen(c + h, p) - _sharpen(c - h, p)) / (2 * h)
    got = _call(ex, "dy_dc", c, p)
    bad = np.argwhere(~np.isclose(got, numeric, rtol=1e-6, atol=1e-9))
    assert bad.size == 0, (
        f"dy/dc disagrees with finite differences, first at c = {c[tuple(bad[0])]:.4f}, "
        f"p = {p[bad[0][1]]}: expected {numeric[tuple(bad[0])]:.6f}, got {got[tuple(bad[0])]:.6f}. "
        "Remember: dy/dc is even in c (no sign(c)), and column k of c uses p[k].")


def test_dy_dc_at_and_below_the_clamp(ex):
    c = np.array([[0.0, 1e-40, -1e-40, 0.0, 0.3]])
    for p_value in (0.1, 0.5, 2.0):
        p = np.full(5, p_value)
        got = _call(ex, "dy_dc", c, p)
        ok = np.all(np.isfinite(got))
        assert ok, f"dy/dc must be finite at c = 0 (p = {p_value}), got {got.tolist()}"
        ok = np.all(got[0, :4] == 0.0)
        assert ok, (
            f"where |c| <= TINY, y is the constant sign(c) * TINY**p, so dy/dc = 0; with "
            f"p = {p_value} got {got[0, :4].tolist()} for c = {c[0, :4].tolist()}")
        assert got[0, 4] == pytest.approx(p_value * 0.3 ** (p_value - 1), rel=1e-9)


# ------------------------------------------------------------------------------------------
# dy/dp
def test_dy_dp_hand_values(ex):
    expected = 0.25 * math.log(0.5)
    got = _one(ex, "dy_dp", 0.5, 2.0)
    assert got == pytest.approx(expected, rel=1e-9), (
        f"dy/dp at c = 0.5, p = 2 should be y ln|c| = 0.25 * ln(0.5) = {expected:.6f}, got {got:.6f}")
    got = _one(ex, "dy_dp", -0.5, 2.0)
    assert got == pytest.approx(-expected, rel=1e-9), (
        f"dy/dp at c = -0.5, p = 2 should be y ln|c| = (-0.25) * ln(0.5) = {-expected:.6f}, got "
        f"{got:.6f}. y keeps the sign of c, and so does dy/dp.")


def test_dy_dp_matches_finite_differences(ex):
    rng = np.random.default_rng(1)
    c = rng.uniform(0.05, 0.95, size=(20, 4)) * rng.choice([-1.0, 1.0], size=(20, 4))
    p = np.array([0.3, 1.0, 2.0, 4.5])
    h = 1e-6
    numeric = (_sharpen(c, p + h) - _sharpen(c, p - h)) / (2 * h)
    got = _call(ex, "dy_dp", c, p)
    bad = np.argwhere(~np.isclose(got, numeric, rtol=1e-6, atol=1e-9))
    assert bad.size == 0, (
        f"dy/dp disagrees with finite differences, first at c = {c[tuple(bad[0])]:.4f}, "
        f"p = {p[bad[0][1]]}: expected {numeric[tuple(bad[0])]:.6f}, got {got[tuple(bad[0])]:.6f}")


def test_dy_dp_at_and_below_the_clamp(ex):
    c = np.array([[0.0, 1e-40, -1e-40]])
    p = np.array([0.5, 0.5, 0.5])
    got = _call(ex, "dy_dp", c, p)
    ok = np.all(np.isfinite(got))
    assert ok, (
        f"dy/dp must be finite even at c = 0: take the log of max(|c|, TINY), got {got.tolist()}")
    expected = np.array([0.0, TINY ** 0.5 * math.log(TINY), -(TINY ** 0.5) * math.log(TINY)])
    ok = np.allclose(got[0], expected, rtol=1e-9, atol=0)
    assert ok, (
        f"for c = {c[0].tolist()} and p = 0.5, dy/dp = sign(c) TINY**p ln(TINY) = {expected.tolist()}, "
        f"got {got[0].tolist()}")


# ------------------------------------------------------------------------------------------
# dL/dp over a batch
def test_dL_dp_sums_over_the_batch(ex):
    rng = np.random.default_rng(2)
    c = rng.uniform(-0.9, 0.9, size=(30, 3))
    p = np.array([0.7, 2.0, 3.0])
    g = rng.standard_normal((30, 3))
    got = np.asarray(ex.dL_dp(c, p, g))
    assert got.shape == (3,), (
        f"dL_dp should return one number per kernel, shape (K,) = (3,), got shape {got.shape}. "
        "Sum over the batch axis (axis 0).")
    expected = np.zeros(3)
    for m in range(30):
        for k in range(3):
            expected[k] += g[m, k] * _sharpen(c[m, k], p[k]) * math.log(abs(c[m, k]))
    ok = np.allclose(got, expected, rtol=1e-9)
    assert ok, (
        f"dL/dp[k] = sum over m of g[m, k] * y[m, k] * ln|c[m, k]|: expected {expected.tolist()}, "
        f"got {got.tolist()}" + (": that is a mean, not a sum." if np.allclose(got, expected / 30) else "."))


def test_dL_dp_of_a_single_patch_is_dL_dy_times_dy_dp(ex):
    # One patch (M = 1): dL_dp[k] = dL_dy[0, k] * y[0, k] * ln|c[0, k]|, still of shape (K,).
    # c = 0.5, p = 2, dL_dy = 3:  3 * 0.25 * ln 0.5 = -0.519860;  c = -0.8, p = 1, dL_dy = -1:
    # -1 * -0.8 * ln 0.8 = -0.178515.
    got = np.asarray(ex.dL_dp(np.array([[0.5, -0.8]]), np.array([2.0, 1.0]), np.array([[3.0, -1.0]])))
    assert got.shape == (2,), (
        f"dL_dp should return one number per kernel, shape (K,) = (2,), even for one patch; "
        f"got shape {got.shape}")
    expected = [3 * 0.25 * math.log(0.5), -1 * -0.8 * math.log(0.8)]
    assert np.allclose(got, expected, rtol=1e-9), (
        f"dL_dp = dL_dy * dy_dp summed over the patches: expected {expected}, got {got.tolist()}")


def _layer_case(p, with_blank_patches):
    """Cosines, dL/dy and grads["p"] from a real SharpCosSim2D, each as (M, K) or (K,).

    With p = 1 the layer's output is y = c itself, which gives the cosines without reaching
    into the layer's internals.
    """
    rng = np.random.default_rng(3)
    k = len(p)
    x = rng.standard_normal((2, 2, 7, 7))
    if with_blank_patches:
        x[:, :, :4, :4] = 0.0                  # 3x3 windows inside this corner are all zero
    layer = SharpCosSim2D(2, k, 3, p_init=1.0, q_init=0.05, dtype=np.float64, rng=4)
    cosines = np.array(layer.forward(x))
    layer.params["p"][...] = p
    y = layer.forward(x)
    dy = rng.standard_normal(y.shape)
    layer.backward(dy)

    def rows(a):                               # (N, K, Ho, Wo) -> (N*Ho*Wo, K)
        return a.transpose(0, 2, 3, 1).reshape(-1, k)

    return rows(cosines), rows(dy), layer.grads["p"].copy()


@pytest.mark.parametrize("with_blank_patches", [False, True], ids=["no-blanks", "blank-patches"])
def test_dL_dp_matches_minisc_layer(ex, with_blank_patches):
    p = np.array([0.4, 1.0, 2.5, 6.0])
    c, g, expected = _layer_case(p, with_blank_patches)
    if with_blank_patches:
        assert np.any(c == 0.0)                # the case really contains c = 0
    problem = None
    with np.errstate(divide="raise", invalid="raise"):
        try:
            got = np.asarray(ex.dL_dp(c, p, g))
        except FloatingPointError as err:
            problem = str(err)
    if problem is not None:
        pytest.fail(f"dL_dp triggered a NumPy '{problem}' on a batch with blank patches (c = 0): "
                    "take the log of max(|c|, TINY)")
    assert got.shape == expected.shape, f"dL_dp should return shape (K,) = {expected.shape}, got {got.shape}"
    ok = np.all(np.isfinite(got))
    assert ok, f"dL_dp returned non-finite values {got.tolist()}"
    ok = np.allclose(got, expected, rtol=1e-8, atol=1e-12)
    assert ok, (
        f"dL_dp disagrees with minisc's SharpCosSim2D grads['p'] for {c.shape[0]} patches and "
        f"p = {p.tolist()}: expected {expected.tolist()}, got {got.tolist()}")
