"""The code paths that exist for speed: each one is checked against the plain definition.

- windows.py: the batch-last patch matrix, col2im_of_product (with its broadcast for one
  kernel per group), the separable box sums;
- SharpCosSim2D: gradients in any memory order, the rare 0 < |c| <= TINY entries, fresh
  caches on every forward;
- the pools: the branch-free walk on every memory layout, ties, dropped rows and columns.
"""

import numpy as np
import pytest

from minisc import MaxAbsPool2D, MaxPool2D, SharpCosSim2D
from minisc import reference as ref
from minisc.layers.windows import (
    box_sum,
    box_sum_adjoint,
    col2im,
    col2im_of_product,
    pad_batch_last,
    patch_matrix,
)


def _patches_by_loops(xp, kh, kw, stride, groups=1):
    """Block g, column (i, j, n) of the patch matrix, rows (c of group g, a, b): the definition."""
    c, hp, wp, n = xp.shape
    c_g = c // groups
    h_out, w_out = (hp - kh) // stride + 1, (wp - kw) // stride + 1
    return np.array([np.array([xp[g * c_g:(g + 1) * c_g, i * stride:i * stride + kh,
                                  j * stride:j * stride + kw, b].reshape(-1)
                               for i in range(h_out) for j in range(w_out) for b in range(n)]).T
                     for g in range(groups)])


@pytest.mark.parametrize("c,groups", [(1, 1), (3, 1), (4, 2), (3, 3)])
@pytest.mark.parametrize("k,stride,pad", [(3, 1, 0), (5, 1, 2), ((2, 3), 2, 1)])
def test_patch_matrix_matches_the_definition(c, groups, k, stride, pad):
    kh, kw = (k, k) if isinstance(k, int) else k
    rng = np.random.default_rng(0)
    xp = pad_batch_last(rng.standard_normal((2, c, 7, 8)), pad)
    assert xp.shape == (c, 7 + 2 * pad, 8 + 2 * pad, 2)
    cols = patch_matrix(xp, kh, kw, stride, groups)
    np.testing.assert_array_equal(cols, _patches_by_loops(xp, kh, kw, stride, groups))
    assert cols.flags.c_contiguous


def test_pad_batch_last_copies_nothing_for_batch_last_views():
    memory = np.random.default_rng(0).standard_normal((3, 5, 5, 2))     # (C, H, W, N)
    x = memory.transpose(3, 0, 1, 2)                                    # an (N, C, H, W) view
    assert np.shares_memory(pad_batch_last(x, 0), memory)
    np.testing.assert_array_equal(pad_batch_last(x, 1)[:, 1:-1, 1:-1, :], memory)


@pytest.mark.parametrize("c,groups,k_g,k,stride", [(1, 1, 3, 5, 1), (3, 1, 2, 3, 2), (4, 1, 3, (2, 3), 1),
                                                   (4, 2, 3, 3, 1), (6, 2, 2, (3, 2), 2), (3, 3, 1, (3, 2), 2),
                                                   (4, 4, 1, 3, 1)])
def test_col2im_of_product_is_col2im_of_the_product(c, groups, k_g, k, stride):
    kh, kw = (k, k) if isinstance(k, int) else k
    rng = np.random.default_rng(1)
    shape = (c, 9, 8, 2)
    h_out, w_out = (shape[1] - kh) // stride + 1, (shape[2] - kw) // stride + 1
    m = shape[3] * h_out * w_out
    w_rows = rng.standard_normal((groups, k_g, c // groups * kh * kw))  # (G, K/G, D)
    d_out = rng.standard_normal((groups, k_g, m))                       # (G, K/G, M)
    np.testing.assert_allclose(col2im_of_product(w_rows, d_out, shape, kh, kw, stride),
                               col2im(w_rows.transpose(0, 2, 1) @ d_out, shape, kh, kw, stride),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("c,groups,k,stride", [(1, 1, 5, 1), (2, 1, 3, 2), (3, 1, (3, 2), 1),
                                               (4, 2, 3, 1), (3, 3, 2, 2)])
def test_col2im_is_the_adjoint_of_patch_matrix(c, groups, k, stride):
    kh, kw = (k, k) if isinstance(k, int) else k
    rng = np.random.default_rng(2)
    xp = rng.standard_normal((c, 8, 9, 2))
    cols = patch_matrix(xp, kh, kw, stride, groups)
    d = rng.standard_normal(cols.shape)
    # <patch_matrix(x), d> == <x, col2im(d)>
    assert np.sum(cols * d) == pytest.approx(np.sum(xp * col2im(d, xp.shape, kh, kw, stride)),
                                             rel=1e-12)


@pytest.mark.parametrize("k,stride", [(5, 1), (3, 2), ((2, 4), 1), ((3, 1), 3)])
def test_separable_box_sums_match_the_definition(k, stride):
    kh, kw = (k, k) if isinstance(k, int) else k
    rng = np.random.default_rng(3)
    plane = rng.standard_normal((2, 10, 11, 3))                          # (G, Hp, Wp, N)
    h_out, w_out = (10 - kh) // stride + 1, (11 - kw) // stride + 1
    expected = np.zeros((2, h_out, w_out, 3))
    for i in range(h_out):
        for j in range(w_out):
            expected[:, i, j] = plane[:, i * stride:i * stride + kh, j * stride:j * stride + kw].sum((1, 2))
    np.testing.assert_allclose(box_sum(plane, kh, kw, stride), expected, rtol=1e-12)
    r = rng.standard_normal(expected.shape)
    # the adjoint: <box_sum(plane), r> == <plane, box_sum_adjoint(r)>
    assert np.sum(expected * r) == pytest.approx(
        np.sum(plane * box_sum_adjoint(r, (10, 11), kh, kw, stride)), rel=1e-12)


# ---------------------------------------------------------------------------------------------
def _scs(cin, cout, k, stride=1, pad=0, dtype=np.float64, seed=0):
    layer = SharpCosSim2D(cin, cout, k, stride=stride, padding=pad, dtype=dtype, rng=seed)
    layer.params["p"][:] = np.linspace(0.4, 2.5, cout)
    layer.params["q"][:] = 0.05
    return layer


def test_scs_backward_takes_dy_in_any_memory_order():
    rng = np.random.default_rng(5)
    layer = _scs(2, 3, 3, stride=2, pad=1)
    x = rng.standard_normal((3, 2, 7, 6))
    y = layer.forward(x)
    dy = rng.standard_normal(y.shape)                        # C-contiguous (N, K, H, W)
    dx1 = layer.backward(dy).copy()
    grads1 = {k: v.copy() for k, v in layer.grads.items()}
    dy_kernel_major = np.ascontiguousarray(dy.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    np.testing.assert_array_equal(layer.backward(dy_kernel_major), dx1)
    for key in grads1:
        np.testing.assert_array_equal(layer.grads[key], grads1[key])


def test_scs_cosines_below_tiny_count_as_zero():
    """0 < |c| <= TINY: y = 0 and no gradient flows through c, as for c == 0 exactly."""
    rng = np.random.default_rng(6)
    layer = _scs(1, 3, 3, pad=1)
    x = rng.standard_normal((2, 1, 6, 6))
    x[0] *= 1e-40                    # this image's cosines are ~1e-39: below TINY, not zero
    x[1, :, :3] = 0.0                # blank patches: c == 0 exactly
    w, p, q = layer.params["w"], layer.params["p"], layer.params["q"]
    y = layer.forward(x)
    assert np.all(y[0] == 0)
    np.testing.assert_allclose(y, ref.scs_forward(x, w, p, q, 1, 1), rtol=1e-10, atol=1e-300)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    dx_ref, dw_ref, dp_ref, dq_ref, _ = ref.scs_backward(x, w, p, q, dy, 1, 1)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(layer.grads["w"], dw_ref, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(layer.grads["p"], dp_ref, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(layer.grads["q"], dq_ref, rtol=1e-9, atol=1e-12)


def test_scs_backward_uses_the_latest_forward():
    rng = np.random.default_rng(7)
    layer = _scs(2, 2, 3)
    x_small, x_big = rng.standard_normal((1, 2, 5, 5)), rng.standard_normal((3, 2, 7, 6))
    layer.forward(x_big)
    y = layer.forward(x_small)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    dx_ref, *_ = ref.scs_backward(x_small, layer.params["w"], layer.params["p"],
                                  layer.params["q"], dy)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scs_float32_and_float64_agree_on_mnist_like_input(dtype):
    rng = np.random.default_rng(8)
    x = rng.random((3, 1, 12, 12))
    x[:, :, :4] = 0.0                                         # blank rows: c == 0 patches
    ref_layer = _scs(1, 4, 5, pad=2)
    layer = _scs(1, 4, 5, pad=2, dtype=dtype)
    y64, y = ref_layer.forward(x), layer.forward(x.astype(dtype))
    assert y.dtype == dtype
    np.testing.assert_allclose(y, y64, atol=1e-5)
    dy = rng.standard_normal(y.shape)
    ref_layer.needs_input_grad = layer.needs_input_grad = True
    dx64, dx = ref_layer.backward(dy), layer.backward(dy.astype(dtype))
    np.testing.assert_allclose(dx, dx64, atol=1e-4 * np.abs(dx64).max())
    for key in ("w", "p", "q"):
        np.testing.assert_allclose(layer.grads[key], ref_layer.grads[key],
                                   atol=1e-4 * np.abs(ref_layer.grads[key]).max() + 1e-6)


# ---------------------------------------------------------------------------------------------
def _layouts(x):
    """The same logical (N, C, H, W) array in three memory orders."""
    return {
        "nchw": np.ascontiguousarray(x),
        "nhwc": np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2),
        "cnhw": np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3),
    }


@pytest.mark.parametrize("cls,mode", [(MaxAbsPool2D, "maxabs"), (MaxPool2D, "max")])
@pytest.mark.parametrize("pool,hw", [(2, (8, 6)), (2, (7, 9)), (3, (9, 7)), ((2, 3), (6, 8))])
def test_pool_walk_on_every_layout_with_ties(cls, mode, pool, hw):
    rng = np.random.default_rng(9)
    x = rng.integers(-3, 4, (2, 3) + hw).astype(np.float64)   # many ties, zeros, +-equal pairs
    y_ref, winners = ref.pool_forward(x, pool, mode)
    dy = rng.standard_normal(y_ref.shape)
    dx_ref = ref.pool_backward(x.shape, winners, dy)
    for name, xl in _layouts(x).items():
        layer = cls(pool, dtype=np.float64)
        y = layer.forward(xl)
        np.testing.assert_array_equal(y, y_ref, err_msg=name)
        for dname, dyl in _layouts(dy).items():
            dx = layer.backward(dyl)
            np.testing.assert_array_equal(dx, dx_ref, err_msg=f"{name}/{dname}")
            assert dx.strides == xl.strides                   # dx keeps the input's layout
