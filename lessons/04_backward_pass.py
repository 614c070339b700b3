"""Lesson 4: the SCS backward pass, by hand.

To learn its kernels w, exponents p and noise floor q, an SCS layer must say how the loss
changes when each of them changes: the gradients. minisc has no autograd; every derivative
is written out in minisc/layers/scs.py. This lesson derives them in small steps for one patch
and one kernel, checks every step against finite differences, and then looks at the two
places where a naive version produces NaN.

You will learn
- the local derivatives dy/dc, dy/dp, dc/dw, dc/ds, dc/dq, and how the chain rule joins them;
- how to check any gradient numerically (central differences), and minisc.gradcheck;
- why eps sits inside the square root: without it, a blank patch gives 0 * inf = NaN;
- why |c| is clamped before the power when p < 1.

Run it from the repository root (or from lessons/):

    python lessons/04_backward_pass.py            # a few seconds
    python lessons/04_backward_pass.py --quick

Figures are saved to output/04_backward_pass/ and shown on screen when there is one.
(This lesson prints "nan" on purpose, in steps 6 and 7.)
"""

# %%
import _lesson  # before matplotlib and minisc: picks the plotting backend and finds minisc
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from minisc import SharpCosSim2D, data, gradcheck, viz
from minisc.layers.windows import col2im

out = _lesson.output_dir(__file__)
EPS = 1e-12

# %%
_lesson.section("1. One patch, one kernel, the forward pass in named steps")
images, labels = data.load_mnist_sample("validation")
digit = images[labels == 2][0].astype(np.float64) / 255.0        # (28, 28), a 2
spread = sliding_window_view(digit, (5, 5)).std(axis=(2, 3))    # (24, 24) contrast per window
r, k = np.unravel_index(np.argmax(spread), spread.shape)
s = digit[r:r + 5, k:k + 5].reshape(-1)                          # (25,) a patch with a stroke edge
# A kernel that looks a bit like the patch: its direction plus noise.
w = s / np.linalg.norm(s) + 0.15 * _lesson.rng(0).standard_normal(25)     # (25,)
p, q = 1.5, 0.1
print(f"patch s: the 5x5 window at row {r}, column {k} of a 2 (the one with most contrast)")
print("kernel w: that patch's direction plus noise;  p = 1.5,  q = 0.1\n")


def forward(s, w, p, q):
    """Sharpened cosine similarity of one patch and one kernel; returns every intermediate."""
    dot = s @ w                                   # s . w
    root_s = np.sqrt(s @ s + EPS)                 # |s|
    norm_s = root_s + q                           # |s| + q
    norm_w = np.sqrt(w @ w + EPS)                 # |w|
    c = dot / (norm_s * norm_w)                   # the cosine (shrunk by q)
    y = np.sign(c) * np.abs(c) ** p               # sharpened
    return dict(dot=dot, root_s=root_s, norm_s=norm_s, norm_w=norm_w, c=c, y=y)


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
    """Largest |a - b| relative to the larger of the two (1e-7 or less: they agree)."""
    a, b = np.atleast_1d(a), np.atleast_1d(b)
    return float(np.max(np.abs(a - b) / np.maximum(np.maximum(np.abs(a), np.abs(b)), 1e-12)))


def report(name, analytic, numeric):
    a = np.atleast_1d(analytic)
    shown = f"{a[0]: .6f}" if a.size == 1 else f"{a.size} numbers, e.g. {a[0]: .6f}"
    print(f"    {name:8s} by hand {shown:>28s}   relative error vs numerical {rel_err(analytic, numeric):.1e}")


_lesson.say("""
    Central differences: nudge one input by +h and by -h, and divide the change of the output
    by 2h. The error shrinks like h**2, so with h = 1e-6 in float64 a correct derivative
    agrees to about 1e-8 or better.
""")

# %%
_lesson.section("2. The power: y = sign(c) |c|^p")
c, y = f["c"], f["y"]
# y = sign(c) |c|^p
#   dy/dc = p |c|^(p-1)      (the sign cancels: for c < 0, y = -(-c)^p and dy/dc = p(-c)^(p-1))
#   dy/dp = y ln|c|          (d a^p / dp = a^p ln a)
dy_dc = p * np.abs(c) ** (p - 1)
dy_dp = y * np.log(np.abs(c))
report("dy/dc", dy_dc, numerical(lambda cc: np.sign(cc) * np.abs(cc) ** p, c))
report("dy/dp", dy_dp, numerical(lambda pp: np.sign(c) * np.abs(c) ** pp, p))
_lesson.say(f"""
    dy/dc is the same whatever the sign of c. It equals p |y| / |c|, which is how minisc
    computes it, reusing y instead of a second power. dy/dp = y ln|c| is negative here
    (|c| = {abs(c):.3f} < 1, so ln|c| < 0): a larger p pushes y towards 0.
""")

# %%
_lesson.section("3. The cosine: c = (s . w) / ((|s| + q) |w|)")
norm_s, norm_w, root_s = f["norm_s"], f["norm_w"], f["root_s"]
# c = dot / (norm_s * norm_w), quotient rule, with
#   d dot / dw = s,   d norm_w / dw = w / |w|,   d dot / ds = w,   d norm_s / ds = s / |s|
#   d norm_s / dq = 1
# so
#   dc/dq = -c / norm_s
#   dc/dw = s / (norm_s norm_w) - c w / norm_w**2
#   dc/ds = w / (norm_s norm_w) - c s / (norm_s |s|)
dc_dq = -c / norm_s
dc_dw = s / (norm_s * norm_w) - c * w / norm_w**2
dc_ds = w / (norm_s * norm_w) - c * s / (norm_s * root_s)
report("dc/dq", dc_dq, numerical(lambda qq: forward(s, w, p, qq)["c"], q))
report("dc/dw", dc_dw, numerical(lambda ww: forward(s, ww, p, q)["c"], w))
report("dc/ds", dc_ds, numerical(lambda ss: forward(ss, w, p, q)["c"], s))
_lesson.say(f"""
    Each has two parts: one through the dot product (how turning w towards s raises c) and
    one through a length (making a vector longer without turning it lowers c). Check: the
    dot product of dc/dw with w is {dc_dw @ w:.1e}, essentially zero, because stretching
    the kernel does not change the cosine. That is why an SCS kernel's length is free and only
    its direction is learned.
""")

# %%
_lesson.section("4. The chain rule, and the layer's own backward")
# y depends on w, s, q only through c:  dy/dw = dy/dc * dc/dw, and so on.
dy_dw = dy_dc * dc_dw
dy_ds = dy_dc * dc_ds
dy_dq = dy_dc * dc_dq
report("dy/dw", dy_dw, numerical(lambda ww: forward(s, ww, p, q)["y"], w))
report("dy/ds", dy_ds, numerical(lambda ss: forward(ss, w, p, q)["y"], s))
report("dy/dq", dy_dq, numerical(lambda qq: forward(s, w, p, qq)["y"], q))

# One 5x5 image is one patch: a SharpCosSim2D with one 5x5 kernel gives a single output.
layer = SharpCosSim2D(1, 1, 5, p_init=p, q_init=q, dtype=np.float64)
layer.params["w"][...] = w.reshape(1, 1, 5, 5)
y_layer = layer.forward(s.reshape(1, 1, 5, 5))                # (1, 1, 1, 1)
dx = layer.backward(np.ones((1, 1, 1, 1)))                    # dL/dy = 1, so dL/d... = dy/d...
print(f"\nSharpCosSim2D on the same patch: y = {y_layer.item():.6f} (by hand {y:.6f})")
for name, mine, theirs in (("dy/dw", dy_dw, layer.grads["w"].ravel()),
                           ("dy/ds", dy_ds, dx.ravel()),
                           ("dy/dp", dy_dp, layer.grads["p"]),
                           ("dy/dq", dy_dq, layer.grads["q"])):
    print(f"    {name}: largest difference between this lesson and layer.backward: "
          f"{np.max(np.abs(mine - theirs)):.1e}")
_lesson.say("""
    In a real layer, the loss depends on y for every patch m and every kernel k, so the
    backward pass starts from g = dL/dy (one number per output) and sums: dL/dw_k adds
    g * dy/dw_k over all patches, dL/dq over all patches and kernels, and dL/dx adds each
    patch's dL/ds back onto the pixels it came from (col2im, the reverse of lesson 3's patch
    matrix). minisc/layers/scs.py does all of it with three matrix products; its comments
    repeat the formulas above.
""")
fig = viz.plot_small_arrays([s.reshape(5, 5), w.reshape(5, 5), dy_dw.reshape(5, 5), dy_ds.reshape(5, 5)],
                            names=["patch s", "kernel w", "dy/dw", "dy/ds"], fmt=None,
                            shared_scale=False,
                            title="One patch, one kernel, and the gradients of y (each on its own scale)")
_lesson.save(fig, "one_patch_gradients", out)

# %%
_lesson.section("5. gradcheck: the same test for a whole layer")
n_digits = 1 if _lesson.QUICK else 2
x = data.to_float(images[labels == 3][:n_digits])[:, :, 4:20, 4:20]     # (n, 1, 16, 16) crops
# A little noise, so that no window is exactly blank (step 7 shows why that matters here).
x += _lesson.rng(2).uniform(0.01, 0.05, size=x.shape).astype(np.float32)
scs = SharpCosSim2D(1, 4, 5, padding=1, rng=0)
scs.params["p"][:] = [0.7, 1.5, 2.0, 3.5]                    # p below and above 1
print(f"{scs} on input {x.shape}; p = {scs.params['p']}, q = {scs.params['q'][0]:.2f}")
errors = gradcheck(scs, x, max_checks=40 if _lesson.QUICK else 100, verbose=True)
print(f"\nworst relative error: {max(errors.values()):.1e}")
_lesson.say("""
    gradcheck uses a random projection as the loss, L = sum(y * R), so dL/dy = R, runs the
    layer's backward once, and compares every gradient (the input and each parameter) with
    central differences, on a float64 copy of the layer. Around 1e-7 or less: the backward
    pass is right. A mistake shows up as an error of 1e-3 to 1. For example, a dL/dp written
    with log10 instead of ln:
""")


class Log10Bug(SharpCosSim2D):
    """The same layer with a classic slip in dL/dp: log10|c| instead of ln|c|."""

    def backward(self, dy):
        dx = super().backward(dy)
        self.grads["p"] /= np.log(10.0)
        return dx


buggy = Log10Bug(1, 4, 5, padding=1, rng=0)
errors_bug = gradcheck(buggy, x, max_checks=40)
print("    " + ", ".join(f"{k}: {v:.1e}" for k, v in errors_bug.items()))

# %%
_lesson.section("6. The NaN behind eps: the derivative of sqrt(s . s) at a blank patch")
# |s| = sqrt(u), u = s . s.  Chain rule:  d|s|/ds = d sqrt(u)/du * du/ds = 1 / (2 sqrt(u)) * 2 s
blank = np.zeros(25)                                          # MNIST background: all zeros
with np.errstate(divide="ignore", invalid="ignore"):          # we want to see the inf and nan
    for eps in (0.0, EPS):
        u = blank @ blank + eps
        dsqrt_du = 0.5 / np.sqrt(u)
        du_ds = 2 * blank
        print(f"eps = {eps:g}:  d sqrt(u)/du = {dsqrt_du:g},  du/ds = {du_ds[0]:g},  "
              f"d|s|/ds = {(dsqrt_du * du_ds)[0]}")
_lesson.say("""
    Without eps, d sqrt(u)/du is 1 / (2 * 0) = inf at a blank patch, du/ds is 0, and in
    floating point 0 * inf is nan, not 0. With eps = 1e-12 inside the root it is
    1 / (2 * 1e-6) = 500000, a large but finite number, times 0 = 0. (Writing s / |s| instead
    gives 0 / 0 = nan, the same problem.)

    How far does one such nan spread? Below, a small hand-written version of the input
    gradient dL/dx of an SCS layer (one kernel, dL/dy = 1), on a real digit:
""")


def input_grad(image, kernel, p, q, eps):
    """dL/dx of L = sum of y over all 5x5 patches: (28, 28). One kernel, written plainly."""
    rows = sliding_window_view(image, (5, 5)).reshape(-1, 25)      # (576, 25) patches
    wk = kernel.reshape(-1)
    root = np.sqrt(np.sum(rows * rows, axis=1) + eps)              # (576,) |s|
    ns, nw = root + q, np.sqrt(wk @ wk + eps)
    c = rows @ wk / (ns * nw)                                      # (576,)
    gc = p * np.maximum(np.abs(c), 1e-30) ** (p - 1)               # dy/dc, clamped (step 7)
    ds = gc[:, None] * (wk / (ns * nw)[:, None] - c[:, None] * rows / (ns * root)[:, None])
    return col2im(ds, (1, 28, 28, 1), 5, 5, 1)[0, :, :, 0]        # (28, 28)


kernel = _lesson.rng(1).standard_normal((5, 5))
with np.errstate(divide="ignore", invalid="ignore"):
    for eps in (0.0, EPS):
        g = input_grad(digit, kernel, 2.0, 0.1, eps)
        print(f"eps = {eps:g}: {np.isnan(g).sum():3d} of {g.size} pixels of dL/dx are nan")
    g_nan = input_grad(digit, kernel, 2.0, 0.1, 0.0)
g_ok = input_grad(digit, kernel, 2.0, 0.1, EPS)
_lesson.say("""
    Every pixel that belongs to at least one blank window gets nan, so nearly all of the
    background. The first layer does not need dL/dx, but every later layer does, and a later
    layer sees blank patches too: where the digit is blank, an SCS output is exactly 0. One
    nan in dL/dx becomes nan in the previous layer's dL/dw, and after one optimizer step every
    weight is nan. minisc puts eps inside both square roots; q alone would not help, because
    it sits outside the root.
""")
fig = viz.plot_feature_maps([np.nan_to_num(g_nan, nan=0.0), g_ok],
                            names=["dL/dx, eps = 0 (nan shown grey)", "dL/dx, eps = 1e-12"],
                            image=digit, image_name="digit", cols=3,
                            title="One blank window is enough: nan in the input gradient")
fig.axes[1].imshow(np.where(np.isnan(g_nan), 1.0, np.nan), cmap="Greys", vmin=0, vmax=2)
_lesson.save(fig, "nan_without_eps", out)

# %%
_lesson.section("7. Why |c| is clamped when p < 1")
p_small = 0.5
print(f"p = {p_small}, and c = 0 exactly (a blank patch: s . w = 0 and |s| + q = q > 0):")
with np.errstate(divide="ignore", invalid="ignore"):
    c0 = np.float64(0.0)
    print(f"    dy/dc = p |c|^(p-1) = {p_small * np.abs(c0) ** (p_small - 1)}"
          f"   dy/dp = y ln|c| = {(np.abs(c0) ** p_small) * np.log(np.abs(c0))}")
tiny = 1e-30
a = max(abs(c0), tiny)
print(f"with |c| clamped to {tiny:g}:")
print(f"    y = {a ** p_small:.1e}, dy/dp = y ln|c| = {a ** p_small * np.log(a):.1e}, "
      f"dy/dc = p |y| / |c| = {p_small * a ** p_small / a:.1e}")
_lesson.say("""
    For p < 1 the curve |c|^p is vertical at c = 0 (lesson 2's p = 0.5 curve): its slope is
    infinite there, and ln 0 = -inf makes dy/dp = 0 * -inf = nan. Clamping |c| to 1e-30 makes
    dy/dp finite (and tiny). The slope would still be huge, 5e14, so where |c| was clamped
    minisc sets dy/dc to 0: y is (almost) constant there anyway. Blank patches give c = 0
    exactly, and trained networks do drift to p < 1 in their last SCS layer, so this case is
    not rare.

    The whole layer with p = 0.5 on a digit with plenty of blank background:
""")
layer = SharpCosSim2D(1, 4, 5, p_init=0.5, q_init=0.1, rng=0)
digit_batch = digit[None, None].astype(np.float32)               # (1, 1, 28, 28)
y_half = layer.forward(digit_batch)
dx_half = layer.backward(np.ones_like(y_half))
for name, arr in (("y", y_half), ("dL/dx", dx_half), ("dL/dw", layer.grads["w"]),
                  ("dL/dp", layer.grads["p"]), ("dL/dq", layer.grads["q"])):
    print(f"    {name:6s} all finite: {bool(np.isfinite(arr).all())}, largest |value| {np.abs(arr).max():.3g}")
print(f"    windows with c == 0 exactly: {int(np.sum(y_half == 0))} of {y_half.size}")
_lesson.say("""
    Finite, but is it right? At c = 0 with p < 1 there is no derivative to be right about:
    the slope is infinite. gradcheck makes this visible. On the clean digit (blank windows,
    c = 0) its central differences straddle the vertical part of the curve and disagree with
    the layer's 0 by a factor of order 1, while dL/dw, dL/dp and dL/dq still agree:
""")
crop = digit_batch[:, :, 2:18, 2:18]                               # (1, 1, 16, 16), blank corners
errors_blank = gradcheck(SharpCosSim2D(1, 2, 5, p_init=0.5, rng=0), crop, max_checks=60)
print("    " + ", ".join(f"{k}: {v:.1e}" for k, v in errors_blank.items()))
_lesson.say("""
    That is why step 5 added a little noise: gradient checks belong on inputs where the
    function is smooth. Training does not mind: a blank window carries no information anyway.
""")

# %%
_lesson.try_this(
    "In step 2, move the patch so that c is close to 0 (try s = digit[0:5, 0:5] plus a little "
    "ink) with p = 0.5: how well do the numerical and hand-written dy/dc still agree, and why?",
    "Call gradcheck(scs, x, delta=1e-2) and delta=1e-10. Why is the error larger both ways? "
    "(One is truncation error, the other round-off.)",
    "Write another bug into a subclass (drop the '- c w / norm_w**2' part of dL/dw: in "
    "minisc's form, the 'radial' term) and see which of gradcheck's numbers jumps.",
    "Temporarily set EPS = 0.0 in minisc/layers/scs.py and run python -m pytest tests/test_scs.py. "
    "Which tests fail, and with what message? (Undo it afterwards.)",
)
_lesson.finish()
