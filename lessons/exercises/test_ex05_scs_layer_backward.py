"""Tests for exercise 5 (SCS backward for a batch of patches: dL/dw and dL/dq).

Run: python -m pytest lessons/exercises/test_ex05_scs_layer_backward.py
Expected values come from finite differences of the test's own forward pass and from
minisc's SharpCosSim2D layer.
"""

import numpy as np
import pytest

from minisc import SharpCosSim2D

EXERCISE = "ex05_scs_layer_backward"
EPS, TINY = 1e-12, 1e-30


def _scs(s, w, p, q):
    """The test's own forward pass, y (M, K), so editing the exercise's cannot fool the tests."""
    norm_s = np.sqrt(np.sum(s * s, axis=1) + EPS) + q
    norm_w = np.sqrt(np.sum(w * w, axis=1) + EPS)
    c = (s @ w.T) / (norm_s[:, None] * norm_w[None, :])
    return np.sign(c) * np.maximum(np.abs(c), TINY) ** p


def _case(seed, m=12, k=3, d=8, p=(0.6, 2.0, 3.5), blank_rows=()):
    rng = np.random.default_rng(seed)
    s = rng.standard_normal((m, d))
    s[list(blank_rows)] = 0.0
    w = rng.standard_normal((k, d))
    g = rng.standard_normal((m, k))
    return s, w, np.array(p, dtype=np.float64), g


NAMES = ("dL_dc", "dL_ddot", "dL_dnorm_s", "dL_dnorm_w", "dL_dw", "dL_dq")


def _grads(ex, s, w, p, q, g):
    """The dict scs_backward returns, after checking its keys."""
    _, cache = ex.scs_forward(s, w, p, q)
    out = ex.scs_backward(g, cache)
    assert isinstance(out, dict), (
        f"scs_backward should return a dict of the named gradients {NAMES}; got {type(out).__name__}")
    missing = [name for name in NAMES if name not in out]
    assert not missing, f"scs_backward's dict lacks {missing} (it has {sorted(out)})"
    return out


def _backward(ex, s, w, p, q, g):
    grads = _grads(ex, s, w, p, q, g)
    dw, dq = np.asarray(grads["dL_dw"]), grads["dL_dq"]
    assert dw.shape == w.shape, f"dL_dw should have the shape of w, (K, D) = {w.shape}, got {dw.shape}"
    assert np.size(dq) == 1, f"dL_dq should be one number (q is shared by all patches), got shape {np.shape(dq)}"
    return dw, float(np.ravel(dq)[0])


def _from_minisc(s, w, p, q, g, patch_shape):
    """dL/dw (K, D) and dL/dq from a SharpCosSim2D whose kernel covers its whole input."""
    (m, d), k = s.shape, w.shape[0]
    layer = SharpCosSim2D(patch_shape[0], k, patch_shape[1:], p_init=1.0, q_init=q, dtype=np.float64)
    layer.params["w"][...] = w.reshape((k,) + patch_shape)
    layer.params["p"][...] = p
    layer.forward(s.reshape((m,) + patch_shape))              # y: (M, K, 1, 1)
    layer.backward(g.reshape(m, k, 1, 1))
    return layer.grads["w"].reshape(k, d), float(layer.grads["q"][0])


def _compare(name, got, expected, tol=1e-7):
    got, expected = np.asarray(got, dtype=float), np.asarray(expected, dtype=float)
    scale = max(np.max(np.abs(expected)), 1e-12)
    err = np.max(np.abs(got - expected)) / scale
    assert err < tol, (
        f"{name} is off by {err:.2e} relative to its largest entry.\nexpected\n{expected}\ngot\n{got}")


# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("p,q", [((2.0, 2.0, 2.0), 0.1), ((0.6, 2.0, 3.5), 0.01), ((1.0, 0.3, 7.0), 0.5)])
def test_matches_minisc_layer(ex, p, q):
    s, w, p, g = _case(1, p=p)
    dw, dq = _backward(ex, s, w, p, q, g)
    dw_ref, dq_ref = _from_minisc(s, w, p, q, g, (2, 2, 2))
    _compare("dL/dw (compared with minisc's SharpCosSim2D)", dw, dw_ref)
    _compare("dL/dq (compared with minisc's SharpCosSim2D)", dq, dq_ref)


def test_matches_finite_differences(ex):
    s, w, p, g = _case(2, m=7, k=2, d=5, p=(0.8, 2.5))
    q, h = 0.2, 1e-6

    def loss(w_, q_):
        return np.sum(g * _scs(s, w_, p, q_))

    numeric_w = np.zeros_like(w)
    for idx in np.ndindex(*w.shape):
        up, down = w.copy(), w.copy()
        up[idx] += h
        down[idx] -= h
        numeric_w[idx] = (loss(up, q) - loss(down, q)) / (2 * h)
    numeric_q = (loss(w, q + h) - loss(w, q - h)) / (2 * h)
    dw, dq = _backward(ex, s, w, p, q, g)
    _compare("dL/dw (compared with finite differences)", dw, numeric_w, tol=1e-6)
    _compare("dL/dq (compared with finite differences)", dq, numeric_q, tol=1e-6)


def test_kernel_gradient_has_no_component_along_the_kernel(ex):
    # c ignores the kernel's length, so dL/dw[k] . w[k] = 0 (up to eps).
    s, w, p, g = _case(3)
    dw, _ = _backward(ex, s, w, p, 0.1, g)
    radial = np.sum(dw * w, axis=1) / (np.linalg.norm(dw, axis=1) * np.linalg.norm(w, axis=1))
    ok = np.all(np.abs(radial) < 1e-6)
    assert ok, (
        f"dL/dw[k] should be perpendicular to w[k] (scaling a kernel does not change its "
        f"cosines), but the cosine between them is {radial.tolist()}. Did you leave out the path "
        "through norm_w (step 4)?")


def test_dq_is_negative_when_the_loss_rewards_large_scores(ex):
    # With g = sign(y), L = sum(|y|); a larger q shrinks every |c|, so L falls as q grows.
    s, w, p, _ = _case(4)
    g = np.sign(_scs(s, w, p, 0.1))
    _, dq = _backward(ex, s, w, p, 0.1, g)
    assert dq < 0, (
        f"with g = sign(y) the loss is sum(|y|), which can only fall as q grows, so dL/dq must "
        f"be negative; got {dq}. Check the sign of dc/dnorm_s = -c / norm_s.")


@pytest.mark.parametrize("p", [(0.3, 0.6, 2.0), (2.0, 2.0, 2.0)], ids=["p-below-1", "p-2"])
def test_blank_patches_give_finite_gradients(ex, p):
    s, w, p, g = _case(5, p=p, blank_rows=(0, 4, 5))
    with np.errstate(all="ignore"):
        dw, dq = _backward(ex, s, w, p, 0.1, g)
    ok = np.all(np.isfinite(dw)) and np.isfinite(dq)
    assert ok, (
        f"a batch with blank (all-zero) patches gave non-finite gradients (p = {p.tolist()}): "
        "c = 0 there, so clamp |c| to TINY before |c| ** (p - 1) and set dy/dc = 0 where "
        "|c| <= TINY")
    dw_ref, dq_ref = _from_minisc(s, w, p, 0.1, g, (2, 2, 2))
    _compare("dL/dw with blank patches (compared with minisc's SharpCosSim2D)", dw, dw_ref)
    _compare("dL/dq with blank patches (compared with minisc's SharpCosSim2D)", dq, dq_ref)


def test_each_named_step_matches_finite_differences(ex):
    """Steps 1-2, one at a time: L = sum(dL_dy * y) with y written through dot, norm_s, norm_w."""
    s, w, p, g = _case(5, m=6, k=3, d=5)
    q = 0.2
    grads = _grads(ex, s, w, p, q, g)
    norm_s = np.sqrt(np.sum(s * s, axis=1) + EPS) + q
    norm_w = np.sqrt(np.sum(w * w, axis=1) + EPS)
    dot = s @ w.T

    def loss(dot=dot, norm_s=norm_s, norm_w=norm_w, c=None):
        c = dot / (norm_s[:, None] * norm_w[None, :]) if c is None else c
        return float(np.sum(g * np.sign(c) * np.abs(c) ** p))

    def numeric(name, value, h=1e-6):
        out = np.zeros_like(value)
        for i in np.ndindex(value.shape):
            up, down = value.copy(), value.copy()
            up[i] += h
            down[i] -= h
            out[i] = (loss(**{name: up}) - loss(**{name: down})) / (2 * h)
        return out

    c = dot / (norm_s[:, None] * norm_w[None, :])
    expected = {"dL_dc": numeric("c", c), "dL_ddot": numeric("dot", dot),
                "dL_dnorm_s": numeric("norm_s", norm_s), "dL_dnorm_w": numeric("norm_w", norm_w)}
    for name, value in expected.items():           # in the order of the steps: the first wrong one
        got = np.asarray(grads[name], dtype=float)
        assert got.shape == value.shape, f"{name} should have shape {value.shape}, got {got.shape}"
        _compare(name, got, value, tol=1e-6)


def test_leaves_g_and_cache_alone(ex):
    s, w, p, g = _case(6)
    _, cache = ex.scs_forward(s, w, p, 0.1)
    before = {key: np.array(value, copy=True) for key, value in cache.items()}
    g_before = g.copy()
    ex.scs_backward(g, cache)
    ok = np.array_equal(g, g_before)
    assert ok, "scs_backward changed its input g in place"
    for key, value in before.items():
        ok = np.array_equal(np.asarray(cache[key]), value)
        assert ok, f"scs_backward changed cache['{key}'] in place"
