# %% [markdown]
# # Lesson 4: the SCS backward pass, by hand
#
# To learn its kernels w, exponents p and noise floor q, an SCS layer must say how the loss
# changes when each of them changes: the gradients. minisc has no autograd; every derivative
# is written out by hand. This lesson derives them in small steps for one patch and one
# kernel, checks every step against finite differences, and then looks at the two places
# where a naive version produces NaN.
#
# **You will learn**
#
# - the local derivatives of each forward step and how the chain rule joins them, with one
#   naming scheme used everywhere in minisc: `dL_dy`, `dy_dc`, `dy_dp`, `dL_dc`, `dL_ddot`,
#   `dL_dnorm_s`, `dL_dnorm_w`, `dL_ds`, `dL_dw`, `dL_dp`, `dL_dq`, `dL_dx`;
# - how to check any gradient numerically (central differences), and `minisc.gradcheck`,
#   with the one threshold that says "this gradient is right";
# - why eps sits inside the square root: without it, a blank patch gives 0 * inf = NaN;
# - why the layer needs a rule for c = 0 when p < 1, and what it does there.
#
#     python lessons/04_backward_pass.py            # a few seconds
#     python lessons/04_backward_pass.py --quick
#
# Figures are saved to `output/04_backward_pass/`. (This lesson prints "nan" on purpose, in
# steps 6 and 7.)

# %%
import _lesson  # before matplotlib and minisc: picks the plotting backend and finds minisc
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from minisc import SharpCosSim2D, data, gradcheck, viz

out = _lesson.start("04_backward_pass")
EPS = 1e-12
THRESHOLD = _lesson.GRADCHECK_THRESHOLD       # the one "your gradient is right" threshold

# %% [markdown]
# ## 1. One patch, one kernel, the forward pass in named steps
#
#     dot    = s . w
#     norm_s = sqrt(s . s + eps) + q
#     norm_w = sqrt(w . w + eps)
#     c      = dot / (norm_s * norm_w)
#     y      = sign(c) * |c|**p
#
# The patch s is the 5x5 window of a 2 with the most contrast; the kernel w is that patch's
# direction plus noise, so that it looks a bit like the patch.

# %%
_lesson.section("1. One patch, one kernel, the forward pass in named steps")
images, labels = data.load_mnist_sample("validation")
digit = images[labels == 2][0].astype(np.float64) / 255.0        # (28, 28), a 2
spread = sliding_window_view(digit, (5, 5)).std(axis=(2, 3))    # (24, 24) contrast per window
r, k = np.unravel_index(np.argmax(spread), spread.shape)
s = digit[r:r + 5, k:k + 5].reshape(-1)                          # (25,) a patch with a stroke edge
w = s / np.linalg.norm(s) + 0.15 * _lesson.rng(0).standard_normal(25)     # (25,)
p, q = 1.5, 0.1
print(f"patch s: the 5x5 window at row {r}, column {k} of a 2;  p = {p},  q = {q}\n")


def forward(s, w, p, q):
    """Sharpened cosine similarity of one patch and one kernel; returns every named step."""
    dot = s @ w
    norm_s = np.sqrt(s @ s + EPS) + q
    norm_w = np.sqrt(w @ w + EPS)
    c = dot / (norm_s * norm_w)
    y = np.sign(c) * np.abs(c) ** p
    return dict(dot=dot, norm_s=norm_s, norm_w=norm_w, c=c, y=y)


f = forward(s, w, p, q)
for name, value in f.items():
    print(f"    {name:7s} = {value: .6f}")


def numerical(fun, v, h=1e-6):
    """Central differences: d fun / d v for a scalar function of a scalar or an array."""
    v = np.array(v, dtype=np.float64)
    grad = np.zeros_like(v)
    for i in np.ndindex(v.shape):
        up, down = v.copy(), v.copy()
        up[i] += h
        down[i] -= h
        grad[i] = (fun(up) - fun(down)) / (2 * h)
    return grad


def rel_err(a, b):
    """Largest |a - b| relative to the larger of the two."""
    a, b = np.atleast_1d(a), np.atleast_1d(b)
    return float(np.max(np.abs(a - b) / np.maximum(np.maximum(np.abs(a), np.abs(b)), 1e-12)))


def report(name, analytic, numeric):
    a, err = np.atleast_1d(analytic), rel_err(analytic, numeric)
    shown = f"{a[0]: .6f}" if a.size == 1 else f"{a.size} numbers, e.g. {a[0]: .6f}"
    verdict = "right" if err < THRESHOLD else "WRONG"
    print(f"    {name:11s} by hand {shown:>28s}   relative error {err:.1e}: {verdict}")


# %% [markdown]
# **Checking a derivative.** Central differences: nudge one input by +h and by -h, and divide
# the change of the output by 2h. The truncation error shrinks like h**2 and the round-off
# grows like 1e-16 / h, so with h = 1e-6 in float64 a correct derivative agrees to about
# 1e-8 (1e-7 for a whole layer), far below **the threshold used throughout minisc: a
# relative error under gradcheck's threshold, `minisc.gradcheck.THRESHOLD` = 1e-5, means
# "right"**: a hundred times above what a correct backward gives. A wrong formula (a lost
# term, a wrong sign, log10 for ln) is off by 1e-3 to 1, far above it.
# `_lesson.GRADCHECK_THRESHOLD` is that number; lesson 10 and the exercises use the same one.
#
# ## 2. The power: y = sign(c) |c|^p
#
#     dy_dc = p |c|^(p-1)      the sign cancels: for c < 0, y = -(-c)^p and dy/dc = p(-c)^(p-1)
#     dy_dp = y ln|c|          because d a^p / dp = a^p ln a
#
# dy_dc is the same whatever the sign of c. dy_dp is negative when |c| < 1 (ln|c| < 0): a
# larger p pushes y towards 0.

# %%
_lesson.section("2. The power: y = sign(c) |c|^p")
c, y = f["c"], f["y"]
dy_dc = p * np.abs(c) ** (p - 1)
dy_dp = y * np.log(np.abs(c))
report("dy_dc", dy_dc, numerical(lambda cc: np.sign(cc) * np.abs(cc) ** p, c))
report("dy_dp", dy_dp, numerical(lambda pp: np.sign(c) * np.abs(c) ** pp, p))

# %% [markdown]
# ## 3. The cosine: c = dot / (norm_s * norm_w)
#
# From here on the loss is L = y, so `dL_dy = 1`; in a network dL_dy comes from the next
# layer, and every line below is multiplied by it. Walking back one step at a time:
#
#     dL_dc      = dL_dy * dy_dc
#     dL_ddot    = dL_dc / (norm_s * norm_w)          dc/d dot    = 1 / (norm_s norm_w)
#     dL_dnorm_s = dL_dc * (-c / norm_s)              dc/d norm_s = -c / norm_s
#     dL_dnorm_w = dL_dc * (-c / norm_w)              dc/d norm_w = -c / norm_w
#
# Each is checked by nudging that one intermediate with the others held fixed.

# %%
_lesson.section("3. The cosine: c = dot / (norm_s * norm_w)")
dot, norm_s, norm_w = f["dot"], f["norm_s"], f["norm_w"]
dL_dy = 1.0
dL_dp = dL_dy * dy_dp
dL_dc = dL_dy * dy_dc
dL_ddot = dL_dc / (norm_s * norm_w)
dL_dnorm_s = dL_dc * (-c / norm_s)
dL_dnorm_w = dL_dc * (-c / norm_w)


def y_from(dot, norm_s, norm_w):
    """y as a function of the three intermediates (the last two forward steps)."""
    cc = dot / (norm_s * norm_w)
    return np.sign(cc) * np.abs(cc) ** p


report("dL_dc", dL_dc, numerical(lambda cc: np.sign(cc) * np.abs(cc) ** p, c))
report("dL_ddot", dL_ddot, numerical(lambda v: y_from(v, norm_s, norm_w), dot))
report("dL_dnorm_s", dL_dnorm_s, numerical(lambda v: y_from(dot, v, norm_w), norm_s))
report("dL_dnorm_w", dL_dnorm_w, numerical(lambda v: y_from(dot, norm_s, v), norm_w))

# %% [markdown]
# ## 4. The norms and the dot product: dL_dw, dL_ds, dL_dq
#
#     dot = s . w                  ->  d dot/dw = s,                  d dot/ds = w
#     norm_w = sqrt(w . w + eps)   ->  d norm_w/dw = w / norm_w
#     norm_s = sqrt(s . s + eps) + q  ->  d norm_s/ds = s / (norm_s - q),   d norm_s/dq = 1
#
# so each of w and s collects two terms, one through the dot product and one through its
# length:
#
#     dL_dw = dL_ddot * s + dL_dnorm_w * w / norm_w
#     dL_ds = dL_ddot * w + dL_dnorm_s * s / (norm_s - q)
#     dL_dq = dL_dnorm_s
#     dL_dp = dL_dy * dy_dp
#
# These are checked against nudging w, s, q and p in the whole forward pass.

# %%
_lesson.section("4. The norms and the dot product: dL_dw, dL_ds, dL_dq")
dL_dw = dL_ddot * s + dL_dnorm_w * w / norm_w
dL_ds = dL_ddot * w + dL_dnorm_s * s / (norm_s - q)
dL_dq = dL_dnorm_s
report("dL_dw", dL_dw, numerical(lambda ww: forward(s, ww, p, q)["y"], w))
report("dL_ds", dL_ds, numerical(lambda ss: forward(ss, w, p, q)["y"], s))
report("dL_dq", dL_dq, numerical(lambda qq: forward(s, w, p, qq)["y"], q))
report("dL_dp", dL_dp, numerical(lambda pp: forward(s, w, pp, q)["y"], p))
print(f"\ndL_dw . w = {dL_dw @ w:.1e}: stretching the kernel does not change the cosine")

# One 5x5 image is one patch: a SharpCosSim2D with one 5x5 kernel gives a single output.
layer = SharpCosSim2D(1, 1, 5, p_init=p, q_init=q, dtype=np.float64)
layer.params["w"][...] = w.reshape(1, 1, 5, 5)
y_layer = layer.forward(s.reshape(1, 1, 5, 5))                # (1, 1, 1, 1)
dL_dx = layer.backward(np.full((1, 1, 1, 1), dL_dy))          # the image is the patch: dL_dx = dL_ds
print(f"\nSharpCosSim2D on the same patch: y = {y_layer.item():.6f} (by hand {y:.6f})")
for name, mine, theirs in (("dL_dw", dL_dw, layer.grads["w"].ravel()),
                           ("dL_ds", dL_ds, dL_dx.ravel()),
                           ("dL_dp", dL_dp, layer.grads["p"]),
                           ("dL_dq", dL_dq, layer.grads["q"])):
    print(f"    {name}: largest difference between this lesson and layer.backward: "
          f"{np.max(np.abs(mine - theirs)):.1e}")
fig = viz.plot_small_arrays([s.reshape(5, 5), w.reshape(5, 5), dL_dw.reshape(5, 5), dL_ds.reshape(5, 5)],
                            names=["patch s (pixels, 0..1)", "kernel w", "dL_dw", "dL_ds"], fmt=None,
                            shared_scale=False, colorbars=True,
                            cmap=[viz.DIGITS, viz.DIVERGING, viz.DIVERGING, viz.DIVERGING],
                            title="One patch, one kernel, and the gradients of y (each on its own scale)")
_lesson.save(fig, "one_patch_gradients", out)

# %% [markdown]
# dL_dw has no component along w (the dot product printed above is ~0): the cosine does not
# change when the kernel is stretched, so only the kernel's direction is learned. In the
# figure the patch is drawn in grey (pixels are never negative); w and the gradients are
# signed, in red and blue, each with its own colour bar.
#
# In a real layer the loss depends on y for every patch m and every kernel k, so the
# backward pass starts from `dL_dy` (one number per output) and sums: `dL_dw` for kernel k adds
# the terms of all patches, `dL_dq` adds those of all patches and kernels, and `dL_dx` adds
# each patch's `dL_ds` back onto the pixels it came from (col2im, the reverse of lesson 3's
# patch matrix). **The layer's backward follows these steps in the same order with the same
# names: open `minisc/layers/scs.py`.**
#
# ## 5. gradcheck: the same test for a whole layer
#
# `gradcheck` uses a random projection as the loss, L = sum(y * R), so dL_dy = R, runs the
# layer's backward once, and compares every gradient (the input and each parameter) with
# central differences, on a float64 copy of the layer. Under the threshold of step 1, the
# backward pass is right. A little noise is added to the digits so that no window is exactly
# blank (step 7 shows why that matters here).

# %%
_lesson.section("5. gradcheck: the same test for a whole layer")
n_digits = 1 if _lesson.QUICK else 2
x = data.to_float(images[labels == 3][:n_digits])[:, :, 4:20, 4:20]     # (n, 1, 16, 16) crops
x += _lesson.rng(2).uniform(0.01, 0.05, size=x.shape).astype(np.float32)
scs = SharpCosSim2D(1, 4, 5, padding=1, rng=0)
scs.params["p"][:] = [0.7, 1.5, 2.0, 3.5]                    # p below and above 1
print(f"{scs} on input {x.shape}; p = {scs.params['p']}, q = {scs.params['q'][0]:.2f}")
errors = gradcheck(scs, x, max_checks=40 if _lesson.QUICK else 100, verbose=True)
print(f"\nworst relative error: {max(errors.values()):.1e}")
worst = max(errors.values())
print(f"under the threshold {THRESHOLD:g}: {'right' if worst < THRESHOLD else 'WRONG'}")

# %% [markdown]
# A mistake shows up far above the threshold. For example, a dL_dp written with log10
# instead of ln:

# %%
class Log10Bug(SharpCosSim2D):
    """The same layer with a classic slip in dL/dp: log10|c| instead of ln|c|."""

    def backward(self, dy):
        dx = super().backward(dy)
        self.grads["p"] /= np.log(10.0)
        return dx


buggy = Log10Bug(1, 4, 5, padding=1, rng=0)
errors_bug = gradcheck(buggy, x, max_checks=40)
print("    " + ", ".join(f"{k}: {v:.1e}" for k, v in errors_bug.items()))
print(f"p above the threshold {THRESHOLD:g}: {errors_bug['p'] > THRESHOLD}")

# %% [markdown]
# ## 6. The NaN behind eps: the derivative of sqrt(s . s) at a blank patch
#
# |s| = sqrt(u) with u = s . s. Chain rule: d|s|/ds = d sqrt(u)/du * du/ds = 1 / (2 sqrt(u)) * 2 s.
# Without eps, d sqrt(u)/du is 1 / (2 * 0) = inf at a blank patch, du/ds is 0, and in
# floating point 0 * inf is nan, not 0. With eps = 1e-12 inside the root it is
# 1 / (2 * 1e-6) = 500000, a large but finite number, times 0 = 0. (Writing s / |s| instead
# gives 0 / 0 = nan, the same problem.)

# %%
_lesson.section("6. The NaN behind eps: the derivative of sqrt(s . s) at a blank patch")
blank = np.zeros(25)                                          # MNIST background: all zeros
with np.errstate(divide="ignore", invalid="ignore"):          # we want to see the inf and nan
    for eps in (0.0, EPS):
        u = blank @ blank + eps
        dsqrt_du = 0.5 / np.sqrt(u)
        du_ds = 2 * blank
        print(f"eps = {eps:g}:  d sqrt(u)/du = {dsqrt_du:g},  du/ds = {du_ds[0]:g},  "
              f"d|s|/ds = {(dsqrt_du * du_ds)[0]}")

# %% [markdown]
# How far does one such nan spread? Below, a small hand-written version of the input gradient
# dL_dx of an SCS layer (one kernel, dL_dy = 1), on a real digit, with the names of steps 3-4.

# %%


def input_grad(image, kernel, p, q, eps):
    """dL_dx of L = sum of y over all 5x5 patches: (28, 28). One kernel, written plainly."""
    s = sliding_window_view(image, (5, 5)).reshape(-1, 25)         # (576, 25) patches
    w = kernel.reshape(-1)
    root_s = np.sqrt(np.sum(s * s, axis=1) + eps)                  # (576,)
    norm_s, norm_w = root_s + q, np.sqrt(w @ w + eps)
    c = s @ w / (norm_s * norm_w)                                  # (576,)
    dL_dc = p * np.maximum(np.abs(c), 1e-30) ** (p - 1)            # dL_dy = 1; a floor on |c| (step 7)
    dL_ddot = dL_dc / (norm_s * norm_w)
    dL_dnorm_s = dL_dc * (-c / norm_s)
    dL_ds = dL_ddot[:, None] * w + (dL_dnorm_s / root_s)[:, None] * s
    # col2im: add each patch's dL_ds back onto its 25 pixels, one shifted add per kernel offset
    dL_ds = dL_ds.reshape(24, 24, 5, 5)                            # (window row, col, a, b)
    dL_dx = np.zeros((28, 28))
    for a in range(5):
        for b in range(5):
            dL_dx[a:a + 24, b:b + 24] += dL_ds[:, :, a, b]
    return dL_dx


kernel = _lesson.rng(1).standard_normal((5, 5))
with np.errstate(divide="ignore", invalid="ignore"):
    for eps in (0.0, EPS):
        g = input_grad(digit, kernel, 2.0, 0.1, eps)
        print(f"eps = {eps:g}: {np.isnan(g).sum():3d} of {g.size} pixels of dL_dx are nan")
    g_nan = input_grad(digit, kernel, 2.0, 0.1, 0.0)
g_ok = input_grad(digit, kernel, 2.0, 0.1, EPS)
fig = viz.plot_feature_maps([np.nan_to_num(g_nan, nan=0.0), g_ok],
                            names=["dL_dx, eps = 0 (nan shown grey)", "dL_dx, eps = 1e-12"],
                            image=digit, image_name="digit", cols=3,
                            title="One blank window is enough: nan in the input gradient")
fig.axes[1].imshow(np.where(np.isnan(g_nan), 1.0, np.nan), cmap="Greys", vmin=0, vmax=2)
_lesson.save(fig, "nan_without_eps", out)

# %% [markdown]
# Every pixel that belongs to at least one blank window gets nan, so nearly all of the
# background. The first layer does not need dL_dx, but every later layer does, and a later
# layer sees blank patches too: where the digit is blank, an SCS output is exactly 0. One nan
# in dL_dx becomes nan in the previous layer's dL_dw, and after one optimizer step every
# weight is nan. minisc puts eps inside both square roots; q alone would not help, because it
# sits outside the root.
#
# ## 7. c = 0 and p < 1: what the layer does there
#
# A blank patch gives c = 0 exactly (s . w = 0, whatever q is). For p < 1 the curve |c|^p is
# vertical at c = 0 (lesson 2's p = 0.5 curve): the formula dy_dc = p |c|^(p-1) is infinite
# there, and dy_dp = y ln|c| = 0 * -inf = nan.

# %%
_lesson.section("7. c = 0 and p < 1: what the layer does there")
p_small = 0.5
print(f"p = {p_small}, c = 0, the formulas as written:")
with np.errstate(divide="ignore", invalid="ignore"):
    c0 = np.float64(0.0)
    print(f"    dy_dc = p |c|^(p-1) = {p_small * np.abs(c0) ** (p_small - 1)}"
          f"   dy_dp = y ln|c| = {(np.abs(c0) ** p_small) * np.log(np.abs(c0))}")

# %% [markdown]
# The layer never evaluates them at c = 0. It treats every cosine with |c| <= TINY = 1e-30
# (`minisc.layers.scs.TINY`) as exactly 0, and there:
#
# - y = **0** (a blank patch scores nothing);
# - dy_dc = **0**: for p > 1 that is the true slope at c = 0; for p <= 1 the true slope is
#   infinite, no finite number would be "right", and 0 (y does not move) is the usual choice
#   of SCS implementations;
# - dy_dp = y ln|c| = **0**, finite.
#
# No real image gives 0 < |c| <= 1e-30, so the rule only ever acts on exact zeros.
#
# The layer itself, on one blank 5x5 patch and on a whole digit with plenty of blank
# background, p = 0.5:

# %%
probe = SharpCosSim2D(1, 1, 5, p_init=p_small, q_init=0.1, dtype=np.float64, rng=0)
y_blank = probe.forward(np.zeros((1, 1, 5, 5)))
dL_dx_blank = probe.backward(np.ones_like(y_blank))
print(f"one blank patch: y = {y_blank.item()}, dL_dp = {probe.grads['p'][0]}, "
      f"dL_dq = {probe.grads['q'][0]}, dL_dx all 0: {not dL_dx_blank.any()}")

layer = SharpCosSim2D(1, 4, 5, p_init=p_small, q_init=0.1, rng=0)
digit_batch = digit[None, None].astype(np.float32)               # (1, 1, 28, 28)
y_half = layer.forward(digit_batch)
dx_half = layer.backward(np.ones_like(y_half))
for name, arr in (("y", y_half), ("dL_dx", dx_half), ("dL_dw", layer.grads["w"]),
                  ("dL_dp", layer.grads["p"]), ("dL_dq", layer.grads["q"])):
    print(f"    {name:6s} all finite: {bool(np.isfinite(arr).all())}, largest |value| {np.abs(arr).max():.3g}")
print(f"    windows with c == 0 exactly (y = 0 there): {int(np.sum(y_half == 0))} of {y_half.size}")

# %% [markdown]
# Finite, but is it right? At c = 0 with p < 1 there is no derivative to be right about: the
# slope is infinite. gradcheck makes this visible. On the clean digit (blank windows, c = 0)
# its central differences straddle the vertical part of the curve and disagree with the
# layer's 0 by a factor of order 1 in dL_dx, while dL_dw, dL_dp and dL_dq stay under the
# threshold:

# %%
crop = digit_batch[:, :, 2:18, 2:18]                               # (1, 1, 16, 16), blank corners
errors_blank = gradcheck(SharpCosSim2D(1, 2, 5, p_init=0.5, rng=0), crop, max_checks=60)
print("    " + ", ".join(f"{k}: {v:.1e}" for k, v in errors_blank.items()))

# %% [markdown]
# That is why step 5 added a little noise: gradient checks belong on inputs where the function
# is smooth. Training does not mind: a blank window carries no information anyway, and trained
# networks do drift to p < 1 in their last SCS layer, so this case is not rare.
#
# ## Try this
#
# Printed by the cell below; teachers find the answers in `lessons/answers.md`.

# %%
_lesson.try_this(
    "In step 2, move the patch so that c is close to 0 (try s = digit[0:5, 0:5] plus a little "
    "ink) with p = 0.5: how well do the numerical and hand-written dy_dc still agree, and why?",
    "Call gradcheck(scs, x, delta=1e-2) and delta=1e-10. Why is the error larger both ways? "
    "(One is truncation error, the other round-off.)",
    "Write another bug into a copy of the layer: drop the dL_dnorm_w term of dL_dw (the second "
    "term of the dL_dw line in minisc/layers/scs.py), and see which of gradcheck's numbers jumps.",
    "Temporarily set EPS = 0.0 in minisc/layers/scs.py and run python -m pytest tests/test_scs.py. "
    "Which tests fail, and with what message? (Undo it afterwards.)",
)
_lesson.finish()
