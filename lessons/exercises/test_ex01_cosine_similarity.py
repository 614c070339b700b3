"""Tests for exercise 1 (cosine similarity and sharpened cosine similarity).

Run: python -m pytest lessons/exercises/test_ex01_cosine_similarity.py
Expected values are worked out by hand or computed by minisc's own SharpCosSim2D layer.
"""

import math

import numpy as np
import pytest

from minisc import SharpCosSim2D

EXERCISE = "ex01_cosine_similarity"


def _scalar(value, who):
    """The function's result as a float, after checking it is one number."""
    assert np.ndim(value) == 0, (
        f"{who} should return one number (a float), got an array of shape {np.shape(value)}. "
        "Sum over every element: np.sum(a * b), not a * b.")
    return float(value)


# ------------------------------------------------------------------------------------------
# cosine_similarity
@pytest.mark.parametrize("a,b,expected,why", [
    ([3.0, 4.0], [6.0, 8.0], 1.0, "parallel vectors (one is twice the other)"),
    ([3.0, 4.0], [-3.0, -4.0], -1.0, "opposite vectors"),
    ([1.0, 0.0], [0.0, 2.0], 0.0, "perpendicular vectors"),
    ([1.0, 2.0, 2.0], [2.0, 0.0, 1.0], 4.0 / (3.0 * math.sqrt(5.0)), "(1,2,2).(2,0,1) = 4, lengths 3 and sqrt(5)"),
], ids=["parallel", "opposite", "perpendicular", "by-hand"])
def test_cosine_small_examples(ex, a, b, expected, why):
    got = _scalar(ex.cosine_similarity(np.array(a), np.array(b)), "cosine_similarity")
    assert got == pytest.approx(expected, abs=1e-9), (
        f"cosine_similarity({a}, {b}) should be {expected:.6f} ({why}), got {got:.6f}")


def test_cosine_uses_every_element_of_2d_patches(ex):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 5, 5))
    b = rng.standard_normal((3, 5, 5))
    va, vb = a.ravel(), b.ravel()
    expected = va @ vb / (np.linalg.norm(va) * np.linalg.norm(vb))
    got = _scalar(ex.cosine_similarity(a, b), "cosine_similarity")
    assert got == pytest.approx(expected, abs=1e-9), (
        f"for two (3, 5, 5) patches the cosine should treat each patch as one vector of 75 "
        f"numbers: expected {expected:.6f}, got {got:.6f}")
    again = _scalar(ex.cosine_similarity(b, a), "cosine_similarity")
    assert again == pytest.approx(got, abs=1e-12), "cosine_similarity(a, b) should equal cosine_similarity(b, a)"


def test_cosine_ignores_lengths(ex):
    a = np.array([[1.0, -2.0], [0.5, 3.0]])
    b = np.array([[2.0, 1.0], [-1.0, 0.5]])
    base = _scalar(ex.cosine_similarity(a, b), "cosine_similarity")
    scaled = _scalar(ex.cosine_similarity(7.0 * a, 0.25 * b), "cosine_similarity")
    assert scaled == pytest.approx(base, abs=1e-9), (
        f"scaling a by 7 and b by 0.25 should not change the cosine ({base:.6f}), got {scaled:.6f}. "
        "Are you dividing by both lengths?")


def test_cosine_of_a_blank_patch_is_zero_not_nan(ex):
    kernel = np.array([[0.0, 1.0], [1.0, 0.0]])
    with np.errstate(all="ignore"):
        got = float(ex.cosine_similarity(np.zeros((2, 2)), kernel))
        both = float(ex.cosine_similarity(np.zeros((2, 2)), np.zeros((2, 2))))
    assert not math.isnan(got), (
        "a blank (all-zero) patch gave NaN: 0 / 0. Put eps inside the square root, "
        "np.sqrt(np.sum(a * a) + EPS), so the denominator is never 0.")
    assert got == 0.0, f"a blank patch has no direction and should score 0.0, got {got}"
    assert both == 0.0, f"two blank arrays should score 0.0, got {both}"


def test_cosine_eps_sits_inside_the_square_root(ex):
    # Two identical, very short vectors: s . s = 1e-14, comparable to eps = 1e-12.
    # With eps inside the roots:  c = 1e-14 / (sqrt(1e-14 + 1e-12) ** 2) = 1e-14 / 1.01e-12.
    a = np.array([1e-7, 0.0])
    expected = 1e-14 / (1e-14 + 1e-12)
    got = _scalar(ex.cosine_similarity(a, a), "cosine_similarity")
    assert got == pytest.approx(expected, rel=1e-6), (
        f"for the tiny vector a = [1e-7, 0], cosine_similarity(a, a) should be {expected:.6f} "
        f"(eps = 1e-12 inside each root: sqrt(a.a + eps) with a.a = 1e-14), got {got:.6f}. "
        "Did you add eps outside the square root, or leave it out?")


# ------------------------------------------------------------------------------------------
# scs_score
def test_scs_hand_example(ex):
    # s = w = (3, 4): s.w = 25, |s| = |w| = 5.  With q = 1: c = 25 / ((5 + 1) * 5) = 5/6.
    s = np.array([3.0, 4.0])
    got = _scalar(ex.scs_score(s, s, 2.0, 1.0), "scs_score")
    assert got == pytest.approx((5 / 6) ** 2, abs=1e-9), (
        f"scs_score([3, 4], [3, 4], p=2, q=1) should be (25 / ((5 + 1) * 5))**2 = {(5 / 6) ** 2:.6f}, "
        f"got {got:.6f}. q is added to the patch norm: sqrt(s.s + eps) + q.")


def test_scs_keeps_the_sign(ex):
    s = np.array([3.0, 4.0])
    for p in (2.0, 1.5, 0.5):
        same = _scalar(ex.scs_score(s, s, p, 1.0), "scs_score")
        opposite = _scalar(ex.scs_score(s, -s, p, 1.0), "scs_score")
        assert not math.isnan(opposite), (
            f"scs_score gave NaN for a negative cosine with p = {p}: c ** p is NaN for c < 0 and "
            "fractional p. Use np.sign(c) * np.abs(c) ** p.")
        assert opposite == pytest.approx(-same, abs=1e-9), (
            f"negating the kernel should negate the score: with p = {p}, q = 1, "
            f"scs_score(s, w) = {same:.6f}, so scs_score(s, -w) should be {-same:.6f}, got "
            f"{opposite:.6f}. y = sign(c) * |c| ** p keeps the sign of c.")


def test_scs_with_p1_q0_is_the_cosine(ex):
    rng = np.random.default_rng(1)
    s, w = rng.standard_normal((2, 4, 4))
    expected = s.ravel() @ w.ravel() / (np.linalg.norm(s) * np.linalg.norm(w))
    got = _scalar(ex.scs_score(s, w, 1.0, 0.0), "scs_score")
    assert got == pytest.approx(expected, abs=1e-9), (
        f"with p = 1 and q = 0, SCS is the plain cosine {expected:.6f}; got {got:.6f}")


def test_scs_q_goes_on_the_patch_norm_only(ex):
    s = np.array([[0.2, 1.0], [0.9, -0.1]])
    w = np.array([[0.0, 1.0], [1.0, 0.0]])
    base = _scalar(ex.scs_score(s, w, 2.0, 0.5), "scs_score")
    big_kernel = _scalar(ex.scs_score(s, 10.0 * w, 2.0, 0.5), "scs_score")
    assert big_kernel == pytest.approx(base, rel=1e-9), (
        f"scaling the kernel by 10 should not change the score ({base:.6f}), got {big_kernel:.6f}: "
        "q belongs to the patch norm only, (sqrt(s.s + eps) + q) * sqrt(w.w + eps).")
    bold = _scalar(ex.scs_score(10.0 * s, w, 2.0, 0.5), "scs_score")
    assert bold > base + 0.1, (
        f"the same patch 10 times bolder should score higher when q > 0 (q matters less next "
        f"to a bigger norm): got {bold:.6f} for the bold patch, {base:.6f} for the faint one")


@pytest.mark.parametrize("tiny", ["patch", "kernel"])
def test_scs_eps_sits_inside_both_square_roots(ex, tiny):
    # A very short patch (or kernel), s . s = 1e-14, comparable to eps = 1e-12, and q = 0:
    # with eps inside its root its norm is sqrt(1e-14 + 1e-12) = 1.005e-6, not 1e-7, so
    # c = 1e-7 * 1 / (1.005e-6 * 1) = 0.0995 (p = 1). eps outside the root gives c = 1.
    short, unit = np.array([1e-7, 0.0]), np.array([1.0, 0.0])
    patch, kernel = (short, unit) if tiny == "patch" else (unit, short)
    got = float(ex.scs_score(patch, kernel, 1.0, 0.0))
    name = "s" if tiny == "patch" else "w"
    expected = 1e-7 / (math.sqrt(1e-14 + 1e-12) * math.sqrt(1.0 + 1e-12))
    assert got == pytest.approx(expected, rel=1e-6), (
        f"scs_score of a {tiny} of length 1e-7 with q = 0, p = 1 should be {expected:.6f} "
        f"(eps inside the {tiny}'s square root: sqrt({name} . {name} + eps)), got {got:.6f}. "
        "Is eps added outside that square root, or left out?")


def test_scs_of_a_blank_patch_is_zero_not_nan(ex):
    kernel = np.ones((1, 3, 3))
    for p, q in ((2.0, 0.1), (0.5, 0.1), (2.0, 0.0)):
        with np.errstate(all="ignore"):
            got = float(ex.scs_score(np.zeros((1, 3, 3)), kernel, p, q))
        assert not math.isnan(got), (
            f"a blank patch gave NaN (p = {p}, q = {q}). Put eps inside the square root: "
            "np.sqrt(np.sum(s * s) + EPS).")
        assert got == 0.0, f"a blank patch should score 0.0 (p = {p}, q = {q}), got {got}"


@pytest.mark.parametrize("p", [0.5, 1.0, 2.0, 3.7])
def test_scs_matches_minisc_layer(ex, p):
    # A SharpCosSim2D whose kernel is as big as its input scores exactly one patch.
    rng = np.random.default_rng(int(10 * p))
    for q in (1e-3, 0.1, 1.0):
        layer = SharpCosSim2D(2, 1, (3, 3), p_init=p, q_init=q, dtype=np.float64, rng=0)
        for _ in range(3):
            patch = rng.standard_normal((2, 3, 3))
            kernel = rng.standard_normal((2, 3, 3))
            layer.params["w"][0] = kernel
            expected = float(layer.forward(patch[None])[0, 0, 0, 0])
            got = _scalar(ex.scs_score(patch, kernel, p, q), "scs_score")
            assert got == pytest.approx(expected, abs=1e-9), (
                f"scs_score disagrees with minisc's SharpCosSim2D for a random (2, 3, 3) patch "
                f"with p = {p}, q = {q}: expected {expected:.6f}, got {got:.6f}")
