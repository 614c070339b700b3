"""SharpCosSim2D: forward against the formula, backward against finite differences and the
loop reference, and the numerical pitfalls (blank patches, p < 1, c == 0)."""

import numpy as np
import pytest

from minisc import MaxAbsPool2D, SharpCosSim2D, gradcheck
from minisc import reference as ref
from minisc.layers.scs import P_MAX, P_MIN, Q_MIN

# (in_channels, out_channels, kernel, stride, padding, (H, W), groups)
CONFIGS = [
    (2, 3, 1, 1, 0, (5, 6), 1),
    (1, 4, 3, 1, 0, (7, 7), 1),
    (3, 2, 3, 2, 1, (8, 9), 1),
    (3, 5, 5, 1, 2, (6, 7), 1),
    (1, 2, 5, 2, 0, (11, 9), 1),
    (3, 3, (3, 5), 1, 1, (7, 8), 1),
    (2, 4, 3, 2, 2, (5, 5), 1),
    (4, 6, 3, 1, 1, (6, 5), 2),          # two groups of 2 channels, 3 kernels each
    (3, 3, 3, 1, 1, (6, 6), 3),          # depthwise
    (3, 6, (3, 2), 2, 1, (7, 6), 3),     # depthwise with two kernels per channel
    (4, 4, 2, 1, 0, (4, 5), 4),          # depthwise 2x2, no padding
    (6, 4, 3, 1, 0, (6, 6), 2),          # groups of 3 channels, 2 kernels each
]


def _layer(cin, cout, k, stride, pad, rng, p_low=0.3, p_high=3.0, groups=1, alpha_init=None):
    layer = SharpCosSim2D(cin, cout, k, stride=stride, padding=pad, groups=groups,
                          alpha_init=alpha_init, dtype=np.float64, rng=rng)
    # p both below and above 1, and a q away from its initial value
    layer.params["p"][:] = rng.uniform(p_low, p_high, cout)
    layer.params["p"][0] = 0.5
    layer.params["p"][-1] = 2.5
    layer.params["q"][:] = 0.05
    return layer


@pytest.mark.parametrize("alpha_init", [None, 1.7])
@pytest.mark.parametrize("cin,cout,k,stride,pad,hw,groups", CONFIGS)
def test_gradients_match_finite_differences(cin, cout, k, stride, pad, hw, groups, alpha_init):
    rng = np.random.default_rng(0)
    layer = _layer(cin, cout, k, stride, pad, rng, groups=groups, alpha_init=alpha_init)
    x = rng.standard_normal((2, cin) + hw)
    errors = gradcheck(layer, x, max_checks=60)
    assert set(errors) == {"x", "w", "p", "q"} | ({"alpha"} if alpha_init else set())
    for name, err in errors.items():
        assert err < 1e-5, f"{name}: relative error {err:.2e}"


@pytest.mark.parametrize("alpha_init", [None, 0.8])
@pytest.mark.parametrize("cin,cout,k,stride,pad,hw,groups", CONFIGS)
def test_vectorized_matches_loop_reference(cin, cout, k, stride, pad, hw, groups, alpha_init):
    rng = np.random.default_rng(1)
    layer = _layer(cin, cout, k, stride, pad, rng, groups=groups, alpha_init=alpha_init)
    x = rng.standard_normal((3, cin) + hw)
    x[0, :, : hw[0] // 2, : hw[1] // 2] = 0.0          # some blank patches too
    w, p, q = layer.params["w"], layer.params["p"], layer.params["q"]
    alpha = 1.0 if alpha_init is None else layer.params["alpha"][0]
    y = layer.forward(x)
    y_ref = ref.scs_forward(x, w, p, q, stride, pad, groups, alpha)
    assert y.shape == y_ref.shape
    np.testing.assert_allclose(y, y_ref, rtol=1e-10, atol=1e-13)

    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    dx_ref, dw_ref, dp_ref, dq_ref, dalpha_ref = ref.scs_backward(x, w, p, q, dy, stride, pad,
                                                                  groups, alpha)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(layer.grads["w"], dw_ref, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(layer.grads["p"], dp_ref, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(layer.grads["q"], dq_ref, rtol=1e-9, atol=1e-12)
    if alpha_init is not None:
        np.testing.assert_allclose(layer.grads["alpha"], dalpha_ref, rtol=1e-9, atol=1e-12)


def test_groups_are_independent_layers_side_by_side():
    """A grouped layer is G ungrouped layers, each on its own channels, outputs concatenated."""
    rng = np.random.default_rng(11)
    grouped = _layer(4, 6, 3, 1, 1, rng, groups=2)
    x = rng.standard_normal((2, 4, 6, 6))
    y = grouped.forward(x)
    for g in range(2):
        part = SharpCosSim2D(2, 3, 3, padding=1, dtype=np.float64)
        for key in ("w", "p"):
            part.params[key][...] = grouped.params[key][3 * g:3 * (g + 1)]
        part.params["q"][...] = grouped.params["q"]
        np.testing.assert_allclose(part.forward(x[:, 2 * g:2 * (g + 1)]), y[:, 3 * g:3 * (g + 1)],
                                   rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("cin,cout,groups", [(4, 6, 3), (6, 4, 4), (4, 4, 0), (4, 4, -2)])
def test_groups_must_divide_both_channel_counts(cin, cout, groups):
    with pytest.raises(ValueError, match="groups"):
        SharpCosSim2D(cin, cout, 3, groups=groups)


def test_depthwise_parameter_count_and_name():
    layer = SharpCosSim2D(32, 32, 3, padding=1, groups=32, alpha_init=10.0)
    assert layer.params["w"].shape == (32, 1, 3, 3)
    assert layer.n_params == 32 * 9 + 32 + 1 + 1             # w, p, q, alpha
    assert "depthwise" in str(layer)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_huge_inputs_give_the_same_cosines(dtype):
    """x**2 overflows float32 beyond ~1e19: the patch norm must not."""
    rng = np.random.default_rng(12)
    layer = SharpCosSim2D(2, 3, 3, padding=1, q_init=Q_MIN, dtype=dtype, rng=0)
    x = rng.random((2, 2, 6, 6)).astype(dtype)
    y_big = layer.forward(x * dtype(1e20))
    assert np.isfinite(y_big).all() and np.abs(y_big).max() > 0.01
    y_mid = layer.forward(x * dtype(1e8))     # q is negligible at both scales
    np.testing.assert_allclose(y_big, y_mid, rtol=1e-4, atol=1e-6)


def test_forward_is_the_formula_for_one_patch():
    """One patch, one kernel, worked out by hand from the definition."""
    layer = SharpCosSim2D(1, 1, 2, dtype=np.float64, rng=0)
    layer.params["w"][...] = np.array([[[[1.0, 0.0], [0.0, -1.0]]]])
    layer.params["p"][:] = 3.0
    layer.params["q"][:] = 0.5
    x = np.array([[[[2.0, 1.0], [0.0, 1.0]]]])
    norm_s = np.sqrt(4 + 1 + 0 + 1 + 1e-12) + 0.5
    norm_w = np.sqrt(2 + 1e-12)
    c = (2 - 1) / (norm_s * norm_w)
    assert layer.forward(x)[0, 0, 0, 0] == pytest.approx(c ** 3, rel=1e-14)
    x[0, 0, 1, 1] = 5.0                                  # now the dot product is negative
    norm_s = np.sqrt(4 + 1 + 25 + 1e-12) + 0.5
    c = (2 - 5) / (norm_s * norm_w)
    assert layer.forward(x)[0, 0, 0, 0] == pytest.approx(-abs(c) ** 3, rel=1e-14)


def test_float32_agrees_with_float64():
    rng = np.random.default_rng(2)
    l64 = _layer(3, 4, 3, 1, 1, rng)
    l32 = SharpCosSim2D(3, 4, 3, padding=1)
    for k in l64.params:
        l32.params[k][...] = l64.params[k]
    x = rng.standard_normal((4, 3, 9, 9))
    y64 = l64.forward(x)
    y32 = l32.forward(x.astype(np.float32))
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, y64, atol=2e-5)
    dy = rng.standard_normal(y64.shape)
    dx64, dx32 = l64.backward(dy), l32.backward(dy.astype(np.float32))
    assert dx32.dtype == np.float32 and l32.grads["w"].dtype == np.float32
    np.testing.assert_allclose(dx32, dx64, atol=1e-4 * np.abs(dx64).max())
    for k in ("w", "p", "q"):
        np.testing.assert_allclose(l32.grads[k], l64.grads[k],
                                   atol=1e-4 * np.abs(l64.grads[k]).max() + 1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_no_nan_on_blank_input_small_p_and_zero_cosine(dtype):
    layer = SharpCosSim2D(2, 3, 3, padding=1, dtype=dtype, rng=0)
    layer.params["p"][:] = [P_MIN, 0.5, 1.7]
    layer.params["q"][:] = Q_MIN
    x = np.zeros((2, 2, 6, 6), dtype=dtype)              # every patch blank
    x[1, 0, 2, 2] = 1.0                                  # one lit pixel
    layer.params["w"][0] = 0.0                           # c == 0 exactly for kernel 0
    layer.params["w"][0, 0, 0, 0] = 1e-3
    layer.params["w"][0, 1, 1, 1] = 0.0
    y = layer.forward(x)
    assert np.isfinite(y).all()
    assert np.all(y[0] == 0)                             # blank patches score exactly 0
    dx = layer.backward(np.ones_like(y))
    assert np.isfinite(dx).all()
    for k, g in layer.grads.items():
        assert np.isfinite(g).all(), k


def test_gradients_finite_differences_with_blank_patches():
    # On a blank patch c == 0, where |c|**p has slope 0 for p > 1 and an infinite slope for
    # p < 1 (there the layer returns 0, the derivative of the clamped function). Finite
    # differences see |c(delta)|**p / delta ~ delta**(p - 1), which is only negligible for p
    # well above 1 (and sign(c)|c|**p is smooth enough for central differences only from
    # p = 3), so this check uses p >= 3; p < 1 is checked on lit patches above.
    rng = np.random.default_rng(3)
    layer = _layer(1, 3, 3, 1, 1, rng, p_low=3.0, p_high=4.0)
    layer.params["p"][0] = 3.0
    layer.params["q"][:] = 0.5        # c grows like delta / q on a blank patch: keep it tame
    x = rng.random((2, 1, 8, 8))
    x[:, :, :3, :] = 0.0                                 # an MNIST-like blank border
    for name, err in gradcheck(layer, x, max_checks=80).items():
        assert err < 1e-5, f"{name}: relative error {err:.2e}"


def test_constrain_clips_p_and_q():
    layer = SharpCosSim2D(1, 3, 3)
    layer.params["p"][:] = [-1.0, 5.0, 100.0]
    layer.params["q"][:] = -0.5
    p_before = layer.params["p"]
    layer.constrain()
    assert layer.params["p"] is p_before                 # in place
    np.testing.assert_array_equal(layer.params["p"], np.float32([P_MIN, 5.0, P_MAX]))
    assert layer.params["q"][0] == np.float32(Q_MIN)


def test_output_bounded_by_one_and_sign_kept():
    rng = np.random.default_rng(4)
    layer = SharpCosSim2D(1, 2, 3, dtype=np.float64, rng=0)
    x = rng.standard_normal((2, 1, 6, 6)) * 100
    y = layer.forward(x)
    assert np.abs(y).max() < 1
    x_neg = layer.forward(-x)
    np.testing.assert_allclose(x_neg, -y, rtol=1e-12)    # negated input, negated score


def test_scale_invariance_of_kernel():
    rng = np.random.default_rng(5)
    layer = SharpCosSim2D(2, 2, 3, dtype=np.float64, rng=0)
    x = rng.standard_normal((1, 2, 5, 5))
    y1 = layer.forward(x)
    layer.params["w"] *= 7.0
    np.testing.assert_allclose(layer.forward(x), y1, rtol=1e-9)


def test_parameter_shapes_and_count():
    layer = SharpCosSim2D(24, 48, 5)
    assert layer.params["w"].shape == (48, 24, 5, 5)
    assert layer.params["p"].shape == (48,)
    assert layer.params["q"].shape == (1,)
    assert layer.n_params == 48 * 24 * 25 + 48 + 1
    assert {k: v.shape for k, v in layer.grads.items()} == {k: v.shape for k, v in layer.params.items()}
    assert all(v.dtype == np.float32 for v in layer.params.values())


# ---------------------------------------------------------------------------------------------
# pool_size: max-abs pooling inside the layer, on the cosines before sharpening

# (CONFIGS index, pool size, ceil_mode): plain, grouped and depthwise layers, 2x2 and odd pools
POOLED = [(1, 2, False), (2, 2, True), (3, 3, False), (7, 2, True), (8, 2, False),
          (9, 2, True), (0, (1, 2), True)]


def _pooled_pair(i, pool, ceil_mode, alpha_init, rng_seed=0):
    """The same SCS layer twice, once with pool_size, and the MaxAbsPool2D it stands for."""
    cin, cout, k, stride, pad, hw, groups = CONFIGS[i]
    plain = _layer(cin, cout, k, stride, pad, np.random.default_rng(rng_seed), groups=groups,
                   alpha_init=alpha_init)
    pooled = SharpCosSim2D(cin, cout, k, stride=stride, padding=pad, groups=groups, alpha_init=alpha_init,
                           pool_size=pool, ceil_mode=ceil_mode, dtype=np.float64)
    for key in plain.params:
        pooled.params[key][...] = plain.params[key]
    return plain, pooled, MaxAbsPool2D(pool, ceil_mode=ceil_mode, dtype=np.float64), (cin,) + hw


@pytest.mark.parametrize("alpha_init", [None, -1.3])
@pytest.mark.parametrize("i,pool,ceil_mode", POOLED)
def test_pool_size_gives_the_numbers_of_scs_then_maxabs_pool(i, pool, ceil_mode, alpha_init):
    plain, pooled, pool_layer, shape = _pooled_pair(i, pool, ceil_mode, alpha_init)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3,) + shape)
    x[0, :, : shape[1] // 2] = 0.0                     # blank patches: cosines of exactly 0
    y = pooled.forward(x)
    y_ref = pool_layer.forward(plain.forward(x))
    assert y.shape == y_ref.shape == (3,) + pooled.output_shape(shape)
    np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-15)

    dy = rng.standard_normal(y.shape)
    dx = pooled.backward(dy)
    dx_ref = plain.backward(pool_layer.backward(dy))
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-9, atol=1e-12)
    for key in plain.grads:
        np.testing.assert_allclose(pooled.grads[key], plain.grads[key], rtol=1e-9, atol=1e-12,
                                   err_msg=key)


@pytest.mark.parametrize("i,pool,ceil_mode", POOLED)
def test_pool_size_matches_the_loop_references_of_scs_and_pool(i, pool, ceil_mode):
    _, layer, _, shape = _pooled_pair(i, pool, ceil_mode, 0.8)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2,) + shape)
    cin, cout, k, stride, pad, hw, groups = CONFIGS[i]
    w, p, q, alpha = (layer.params[key] for key in ("w", "p", "q", "alpha"))
    scs_y = ref.scs_forward(x, w, p, q, stride, pad, groups, alpha[0])
    y_ref, winners = ref.pool_forward(scs_y, pool, "maxabs", ceil_mode)
    y = layer.forward(x)
    np.testing.assert_allclose(y, y_ref, rtol=1e-10, atol=1e-13)

    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    d_scs = ref.pool_backward(scs_y.shape, winners, dy)
    dx_ref, dw_ref, dp_ref, dq_ref, dalpha_ref = ref.scs_backward(x, w, p, q, d_scs, stride, pad,
                                                                  groups, alpha[0])
    for got, want in ((dx, dx_ref), (layer.grads["w"], dw_ref), (layer.grads["p"], dp_ref),
                      (layer.grads["q"], dq_ref), (layer.grads["alpha"], dalpha_ref)):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("i,pool,ceil_mode", POOLED[:4])
def test_pool_size_gradients_match_finite_differences(i, pool, ceil_mode):
    _, layer, _, shape = _pooled_pair(i, pool, ceil_mode, 1.7)
    x = np.random.default_rng(4).standard_normal((2,) + shape)
    errors = gradcheck(layer, x, max_checks=60)
    assert set(errors) == {"x", "w", "p", "q", "alpha"}
    for name, err in errors.items():
        assert err < 1e-5, f"{name}: relative error {err:.2e}"


def test_pool_size_is_saved_loaded_copied_and_forgets_in_evaluation_mode(tmp_path):
    import minisc

    layer = SharpCosSim2D(2, 4, 3, padding=1, pool_size=2, ceil_mode=True, rng=0)
    assert layer.config()["pool_size"] == [2, 2] and layer.config()["ceil_mode"] is True
    assert "pool_size" not in SharpCosSim2D(2, 4, 3).config()   # files saved before it still match
    assert str(layer) == "SharpCosSim2D(2->4, 3x3, stride 1, padding 1, max-abs pool 2x2, ceil)"
    model = minisc.Sequential([layer, minisc.Flatten()], input_shape=(2, 5, 5))
    assert model.layers[0].output_shape((2, 5, 5)) == (4, 3, 3)
    x = np.random.default_rng(0).random((3, 2, 5, 5), dtype=np.float32)
    model.save(tmp_path / "m.npz")
    again = minisc.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(again.forward(x), model.forward(x))

    twin = layer.replica()                         # a batch chunk's copy: its own pool winners
    assert twin.pool is not layer.pool
    layer.eval()
    layer.forward(x)
    assert layer._cache is None and layer.pool._cache is None
