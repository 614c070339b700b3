# %% [markdown]
# # Lesson 3: the SCS forward pass, step by step
#
# Lesson 2 computed sharpened cosine similarity with a loop over patch positions. A real layer
# has to do it for thousands of patches, dozens of kernels and a whole batch of images at once.
# This lesson builds that fast version from the ground up and checks it against
# `minisc.SharpCosSim2D`.
#
# **You will learn**
#
# - how NumPy "stride tricks" turn an image into a view of all its windows without copying a
#   single pixel (shapes and strides printed step by step);
# - how the windows become the patch matrix, and how one matrix product scores every patch
#   against every kernel;
# - the rest of the forward pass: patch norms, the cosine, the power;
# - what hand-made kernels (strokes, edges, diagonals) see in a real digit.
#
#     python lessons/03_forward_pass.py            # a few seconds
#     python lessons/03_forward_pass.py --quick
#
# Figures are saved to `output/03_forward_pass/` and shown on screen when there is one.

# %%
import time

import _lesson  # before matplotlib and minisc: picks the plotting backend and finds minisc
import numpy as np
from matplotlib.patches import Rectangle
from numpy.lib.stride_tricks import sliding_window_view

from minisc import SharpCosSim2D, data, reference, viz
from minisc.layers.windows import box_sum, pad_batch_last, patch_matrix, windows

out = _lesson.start("03_forward_pass")

# %% [markdown]
# ## 1. A tiny image and all its 3x3 windows, without copying
#
# `sliding_window_view(x, (3, 3))` returns v with four axes: (window row i, window column j,
# row a inside the window, column b inside the window), so v[i, j, a, b] is x[i + a, j + b].
# Its strides say how: moving i or a by one moves one row of x in memory, moving j or b by
# one moves one column. Nothing is copied: v is a new way of reading x's memory.

# %%
_lesson.section("1. A tiny image and all its 3x3 windows, without copying")
x = np.arange(25, dtype=np.float64).reshape(5, 5)
print("x =")
print(x)
print(f"\nx.shape = {x.shape}, x.strides = {x.strides} (bytes): one step down a column jumps "
      f"{x.strides[0]} bytes (a row of 5 float64s), one step along a row jumps {x.strides[1]}.")

v = sliding_window_view(x, (3, 3))          # v[i, j] is the 3x3 window whose corner is x[i, j]
print(f"\nv = sliding_window_view(x, (3, 3))\nv.shape = {v.shape}, v.strides = {v.strides}")
print(f"np.shares_memory(v, x) = {np.shares_memory(v, x)}   "
      f"(v is read-only: v.flags.writeable = {v.flags.writeable})")
print("\nv[1, 2], the window at row 1, column 2:")
print(v[1, 2])
print(f"equal to x[1:4, 2:5]: {np.array_equal(v[1, 2], x[1:4, 2:5])}")

v2 = v[::2, ::2]                             # stride 2: every other window
print(f"\nStride 2 is a view of the view: v[::2, ::2].shape = {v2.shape}, strides = {v2.strides}, "
      f"shares memory: {np.shares_memory(v2, x)}")

fig = viz.plot_small_arrays([x, v[0, 0], v[1, 2], v[2, 2]],
                            names=["x (5x5)", "v[0, 0]", "v[1, 2]", "v[2, 2]"], fmt="{:.0f}",
                            title="All 3x3 windows of x are views of the same 25 numbers")
fig.axes[0].add_patch(Rectangle((2 - 0.5, 1 - 0.5), 3, 3, fill=False, ec="black", lw=2.5))
_lesson.save(fig, "windows_of_a_tiny_image", out)

# %% [markdown]
# ## 2. minisc's windows: batch-last, (C, H, W, N)
#
# minisc layers take (N, C, H, W). Inside, the window code puts the batch axis last,
# (C, H, W, N), "batch-last": the N images' pixels at one position sit side by side, so the
# copies and adds of the layer run over long stretches of memory (`minisc/layers/windows.py`
# explains why). `windows` is the same trick with more axes: (channel, kernel row a, kernel
# column b, window row i, window column j, image n). With stride 2, stepping to the next
# window jumps two rows or two columns: the strides of axes i and j double, those of a and b
# do not.

# %%
_lesson.section("2. minisc's windows: batch-last, (C, H, W, N)")
xp = pad_batch_last(x.reshape(1, 1, 5, 5), padding=0)                     # (C, H, W, N)
print(f"xp = the image as (C, H, W, N): shape {xp.shape}, strides {xp.strides}")
print("    (an axis of length 1 is never stepped along, so its stride is never used)")
win = windows(xp, 3, 3, stride=1)
print(f"windows(xp, 3, 3, stride=1): shape {win.shape}, strides {win.strides}")
print(f"    axes (c, a, b, i, j, n); shares memory with x: {np.shares_memory(win, x)}")
win2 = windows(xp, 3, 3, stride=2)
print(f"windows(xp, 3, 3, stride=2): shape {win2.shape}, strides {win2.strides}")

# %% [markdown]
# ## 3. The patch matrix: one column per window (this one is a copy)
#
# `patch_matrix` lays the windows out as a matrix: one *row* per window element (channel,
# kernel row, kernel column: the order of a kernel's weights) and one *column* per window
# position, column m being window m read row by row. Windows overlap, so NumPy has to copy:
# for a 28x28 digit and 5x5 kernels it is 25 rows of 576, 18 times the image. In exchange,
# scoring every window against every kernel becomes one matrix product, `kernels @ patches`,
# which NumPy hands to a fast BLAS library. (This layout is often called im2col.) The result
# has a leading group axis (lesson 10), of length 1 here. Below we work with its transpose,
# `s`, one row per window, like lesson 2's patches.

# %%
_lesson.section("3. The patch matrix: one column per window (this one is a copy)")
patches = patch_matrix(xp, 3, 3, stride=1)              # (G, C * kh * kw, H_out * W_out * N)
print(f"patch_matrix(xp, 3, 3, 1): shape {patches.shape}, "
      f"shares memory with x: {np.shares_memory(patches, x)}")
print(patches[0].astype(int))
print(f"{patches.size} numbers for an image of {x.size}")
s = patches[0].T                                        # (M, D): one row per window

# %% [markdown]
# ## 4. Norms, cosine and power, by hand
#
# The forward pass with the names minisc uses everywhere (lesson 4 and `minisc/layers/scs.py`
# use the same): `dot = s . w`, `norm_s = sqrt(s . s + eps) + q`, `norm_w = sqrt(w . w + eps)`,
# `c = dot / (norm_s * norm_w)`, `y = sign(c) |c|^p`. The kernel is a diagonal edge: dark
# top-left, bright bottom-right.

# %%
_lesson.section("4. Norms, cosine and power, by hand")
kernel = np.array([[-1.0, -1.0, 0.0],       # a diagonal edge: dark top-left, bright bottom-right
                   [-1.0, 0.0, 1.0],
                   [0.0, 1.0, 1.0]])
p, q, eps = 2.0, 0.1, 1e-12
w_row = kernel.reshape(-1)                              # (9,) the kernel as one row

dot = s @ w_row                                         # (9,)  s . w for every window
norm_s = np.sqrt(np.sum(s * s, axis=1) + eps) + q        # (9,)  |s| + q
norm_w = np.sqrt(w_row @ w_row + eps)                   # ()    |w|
c = dot / (norm_s * norm_w)                             # (9,)  the cosines, |c| < 1
y = np.sign(c) * np.abs(c) ** p                         # (9,)  sharpened
np.set_printoptions(precision=4, suppress=True)
for name, value in (("s . w", dot), ("|s| + q", norm_s), ("c", c), ("y = sign(c)|c|^p", y)):
    print(f"{name:17s} {value}")
print(f"|w| = {norm_w:.4f}")

# %% [markdown]
# s . w is the same for every window: the kernel adds the three bottom-right pixels and
# subtracts the three top-left ones, and x rises by the same amount everywhere. The cosine
# still differs, because |s| grows down the image: in the top-left window the rise is a large
# part of the pixels' size, in the bottom-right window a small part, on top of a bright, flat
# background. The cosine scores the shape relative to the brightness, the dot product only
# the difference.
#
# The layer gives the same numbers. It never squares the patch matrix for the norms: |s|^2 is
# a sum of x**2 over each window, a "box sum" of the squared image (kh * kw shifted adds of a
# small array).

# %%

layer = SharpCosSim2D(1, 1, 3, p_init=p, q_init=q, dtype=np.float64)
layer.params["w"][0, 0] = kernel                        # (K, C, kh, kw) = (1, 1, 3, 3)
y_layer = layer.forward(x.reshape(1, 1, 5, 5))          # (N, K, H_out, W_out) = (1, 1, 3, 3)
print(f"\nSharpCosSim2D(1, 1, 3).forward(x): shape {y_layer.shape}")
print(y_layer[0, 0])
print(f"largest difference from the hand computation: {np.abs(y_layer[0, 0].ravel() - y).max():.1e}")

sq = box_sum(xp[0] ** 2, 3, 3, 1).reshape(-1)           # (9,)  xp[0]: channel 0, (H, W, N)
print(f"|s|^2 from box_sum(x**2) equals the rows' sums of squares: "
      f"{np.allclose(sq, np.sum(s * s, axis=1))}")

# %% [markdown]
# ## 5. Hand-made kernels on a real digit
#
# Six hand-made 5x5 kernels: strokes in four directions and two edges, loaded into one
# `SharpCosSim2D` layer and run on a 7. (The kernels figure scales every kernel by its own
# largest weight, as minisc draws kernels by default: SCS ignores a kernel's length.)

# %%
_lesson.section("5. Hand-made kernels on a real digit")
line = np.array([-0.5, 0.5, 1.0, 0.5, -0.5])           # across a stroke: paper, ink, paper
edge = np.array([-1.0, -1.0, 0.0, 1.0, 1.0])           # paper above / left, ink below / right
i5, j5 = np.indices((5, 5))
along_diagonal = line[np.clip(2 + np.abs(i5 - j5), 0, 4)] * (np.abs(i5 - j5) <= 2)
along_anti = line[np.clip(2 + np.abs(i5 + j5 - 4), 0, 4)] * (np.abs(i5 + j5 - 4) <= 2)
hand_made = {
    "horizontal stroke": np.tile(line[:, None], (1, 5)),
    "vertical stroke": np.tile(line[None, :], (5, 1)),
    "diagonal stroke \\": along_diagonal,
    "diagonal stroke /": along_anti,
    "top edge": np.tile(edge[:, None], (1, 5)),
    "left edge": np.tile(edge[None, :], (5, 1)),
}
names = list(hand_made)
w = np.stack(list(hand_made.values()))[:, None]         # (K, C, kh, kw) = (6, 1, 5, 5)

scs = SharpCosSim2D(1, len(names), 5, p_init=2.0, q_init=0.1)
scs.params["w"][...] = w
print(f"{scs}: w {scs.params['w'].shape}, p {scs.params['p']}, q {scs.params['q']}")
fig = viz.plot_kernels(scs.params["w"], p=scs.params["p"], cols=6,
                       title="Six hand-made 5x5 kernels (red > 0, blue < 0)")
for ax, name in zip(fig.axes, names, strict=False):
    ax.set_xlabel(name, fontsize=8)
_lesson.save(fig, "hand_made_kernels", out)

images, labels = data.load_mnist_sample("validation")
digit = data.to_float(images[labels == 7][1:2])         # (1, 1, 28, 28) float32, one 7
maps = scs.forward(digit)                               # (1, 6, 24, 24)
print(f"\ninput {digit.shape} {digit.dtype}  ->  feature maps {maps.shape} {maps.dtype}\n")
print(f"    {'kernel':20s} {'largest y':>10s} {'at':>9s} {'smallest y':>11s} {'at':>9s} {'|y| > 0.5':>10s}")
for k, name in enumerate(names):
    m = maps[0, k]
    hi = np.unravel_index(np.argmax(m), m.shape)
    lo = np.unravel_index(np.argmin(m), m.shape)
    print(f"    {name:20s} {m[hi]:10.3f} {str(tuple(map(int, hi))):>9s} {m[lo]:11.3f} "
          f"{str(tuple(map(int, lo))):>9s} {np.mean(np.abs(m) > 0.5):10.1%}")
fig = viz.plot_feature_maps(maps, names=names, image=digit[0], image_name="digit (label 7)",
                            cols=7,
                            title="What each hand-made kernel sees (SharpCosSim2D, p = 2, q = 0.1)")
_lesson.save(fig, "hand_made_feature_maps", out)

# %% [markdown]
# Each map answers one question at every position: "how much does this window look like my
# kernel?", with a sign. (The maps are 24x24: a 5-wide window fits in 24 positions along 28
# pixels.) The horizontal-stroke kernel fires on the bar of the 7, the vertical and "/"
# kernels on its steep stem, the "\\" kernel hardly anywhere. The edge kernels are positive on
# one side of a stroke and negative on the other: the top-edge map is red along the top of
# the bar (paper above, ink below) and blue along its bottom (ink above, paper below), a
# negated match. Both are useful information; lesson 5 is about not throwing the negative
# half away.
#
# No score comes near 1: a real stroke is thicker, curved and tilted, so even the best window
# matches a hand-made kernel with a cosine of about 0.8, which p = 2 turns into about 0.6.
# Training shapes the kernels to fit the data (lessons 6 and 7).
#
# ## 6. Fast and slow: the layer against the loop reference
#
# `minisc/reference.py` computes one patch, one kernel at a time, exactly as the formula
# reads. It is there to be read and to test the fast layer against, never to train with.

# %%
_lesson.section("6. Fast and slow: the layer against the loop reference")
n_digits = 2 if _lesson.QUICK else 8
batch = data.to_float(images[:: len(images) // n_digits][:n_digits])   # (n, 1, 28, 28)
t0 = time.perf_counter()
y_fast = scs.forward(batch)
t_fast = time.perf_counter() - t0
t0 = time.perf_counter()
y_slow = reference.scs_forward(batch.astype(np.float64), scs.params["w"].astype(np.float64),
                               scs.params["p"], scs.params["q"])
t_slow = time.perf_counter() - t0
n_scores = y_fast.size
print(f"{n_digits} digits x {len(names)} kernels x 24 x 24 positions = {n_scores:,} scores")
print(f"    vectorized layer (float32): {t_fast * 1e3:8.2f} ms")
print(f"    loop reference (float64):   {t_slow * 1e3:8.2f} ms   ({t_slow / t_fast:,.0f} times slower)")
print(f"    largest difference: {np.abs(y_fast - y_slow).max():.1e} (float32 rounding)")

# %% [markdown]
# ## Try this
#
# Printed by the cell below; teachers find the answers in `lessons/answers.md`.

# %%
_lesson.try_this(
    "In step 1, predict the shape and strides of sliding_window_view(x, (2, 4)) before you "
    "print them. Then try windows(xp, 2, 2, stride=3): which pixels are never visited?",
    "Give the hand-made layer padding=2 (SharpCosSim2D(..., padding=2)): the maps become 28x28. "
    "What do the edge kernels report along the border, where the padding is blank?",
    "Set scs.params['p'][:] = 1.0, then 6.0, and rerun step 5: how does the share of "
    "|y| > 0.5 change?",
    "Design a kernel of your own (a loop, a corner, the end of a stroke) and find the class "
    "whose validation digits make it fire most: average maps.max(axis=(2, 3)) per label.",
)
_lesson.finish()
