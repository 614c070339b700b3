# %% [markdown]
# # Lesson 5: MaxAbsPool versus MaxPool
#
# Pooling shrinks a feature map by keeping one value per small window, which makes a network
# cheaper and less sensitive to exactly where a stroke is. Convolutional networks use max
# pooling, after a ReLU has already removed every negative value. SCS outputs are signed, and
# -0.9 ("clearly the opposite of my kernel") carries as much information as +0.9. Max pooling
# would throw it away; max-abs pooling keeps the value with the largest magnitude, sign and all.
#
# **You will learn**
#
# - what MaxPool2D and MaxAbsPool2D return on a small signed example;
# - how much MaxPool loses on the SCS feature maps of a real digit;
# - how the backward pass routes each gradient to one winner per window, and what happens on
#   blank windows where every value is 0 (ties).
#
#     python lessons/05_maxabs_pooling.py            # a few seconds
#     python lessons/05_maxabs_pooling.py --quick
#
# Figures are saved to `output/05_maxabs_pooling/` and shown on screen when there is one.

# %%
import _lesson  # before matplotlib and minisc: picks the plotting backend and finds minisc
import numpy as np

from minisc import MaxAbsPool2D, MaxPool2D, SharpCosSim2D, data, reference, viz

out = _lesson.start("05_maxabs_pooling")
np.set_printoptions(precision=2, suppress=True)

# %% [markdown]
# ## 1. A worked example: one 4x4 signed map, 2x2 windows

# %%
_lesson.section("1. A worked example: one 4x4 signed map, 2x2 windows")
m = np.array([[0.1, -0.9, 0.3, 0.2],
              [0.4, 0.2, -0.1, 0.5],
              [-0.3, 0.0, 0.8, -0.7],
              [0.2, -0.6, 0.1, 0.6]], dtype=np.float32)
x = m[None, None]                                    # (N, C, H, W) = (1, 1, 4, 4)
max_pool, maxabs_pool = MaxPool2D(2), MaxAbsPool2D(2)
y_max = max_pool.forward(x)                          # (1, 1, 2, 2)
y_abs = maxabs_pool.forward(x)                       # (1, 1, 2, 2)
print("input (four 2x2 windows):")
print(m)
print("\nMaxPool2D(2):     the largest value of each window")
print(y_max[0, 0])
print("MaxAbsPool2D(2):  the value of largest magnitude, sign kept")
print(y_abs[0, 0])
print(f"\ntop-left window: MaxPool {y_max[0, 0, 0, 0]:.1f}, MaxAbsPool {y_abs[0, 0, 0, 0]:.1f}")
fig = viz.plot_small_arrays([m, y_max[0, 0], y_abs[0, 0]],
                            names=["feature map", "MaxPool2D(2)", "MaxAbsPool2D(2)"], fmt="{:.1f}",
                            title="Pooling a signed map: MaxPool loses the strong negatives")
fig.axes[0].axhline(1.5, color="black", lw=2)        # outline the four 2x2 windows
fig.axes[0].axvline(1.5, color="black", lw=2)
_lesson.save(fig, "worked_example", out)

# %% [markdown]
# The top-left window holds -0.9, the strongest response of the whole map. MaxPool reports
# the window's largest value, 0.4, instead; MaxAbsPool reports -0.9. Where the strongest value
# is positive (the right-hand windows), the two agree.
#
# ## 2. On the SCS feature maps of a real digit
#
# Two edge kernels (top edge: paper above, ink below; left edge: paper left, ink right) in
# one SCS layer, run on the validation digits, then pooled both ways.

# %%
_lesson.section("2. On the SCS feature maps of a real digit")
edge = np.array([-1.0, -1.0, 0.0, 1.0, 1.0])
kernels = np.stack([np.tile(edge[:, None], (1, 5)),     # top edge: paper above, ink below
                    np.tile(edge[None, :], (5, 1))])    # left edge: paper left, ink right
scs = SharpCosSim2D(1, 2, 5, p_init=2.0, q_init=0.1)
scs.params["w"][...] = kernels[:, None]                 # (K, C, kh, kw) = (2, 1, 5, 5)

_, _, batch, _ = _lesson.load_digits()                  # validation digits (n, 1, 28, 28)
n_digits = len(batch)
maps = scs.forward(batch)                               # (n, 2, 24, 24)
p_max = max_pool.forward(maps)                          # (n, 2, 12, 12)
p_abs = maxabs_pool.forward(maps)                       # (n, 2, 12, 12)
print(f"{n_digits} digits -> SCS maps {maps.shape} -> pooled {p_abs.shape}")

strong = np.abs(p_abs) > 0.3                            # windows with a clear response
negative = p_abs < -0.3                                 # ... that is negative
print(f"\nwindows with a clear response (|largest| > 0.3): {strong.mean():.1%} of {p_abs.size:,}")
print(f"    of these, negative: {negative.sum() / strong.sum():.0%}")
print(f"    on the negative ones MaxAbsPool keeps {p_abs[negative].mean():+.2f} on average,")
print(f"    MaxPool reports {p_max[negative].mean():+.2f}: the window's weakest value, or a small "
      "positive one")
# A kernel and its negative carry the same information. MaxAbsPool treats them alike:
flip_ok = np.array_equal(maxabs_pool.forward(-maps), -p_abs)
flip_max = np.array_equal(max_pool.forward(-maps), -p_max)
print(f"\npool(-maps) == -pool(maps):  MaxAbsPool {flip_ok},  MaxPool {flip_max}")

# %% [markdown]
# An edge kernel scores positive on its own edge and negative on the opposite edge of the
# same stroke, about equally often. After MaxPool, the network only hears about one side of
# every stroke; after MaxAbsPool it hears about both, and flipping a kernel's sign simply
# flips its pooled map. That is why SCS networks pair SCS layers with max-abs pooling and use
# no ReLU.
#
# One digit up close: lesson 2's bold zero, which has edges on every side. The figure shows
# the digit first, then each edge map and its two pooled versions.

# %%
images, labels = data.load_mnist_sample("validation")
zero = data.to_float(images[35:36])                     # (1, 1, 28, 28)
digit_maps = scs.forward(zero)                          # (1, 2, 24, 24)
tiles, names = [], []
for k, kname in enumerate(("top edge", "left edge")):
    tiles += [digit_maps[0, k], max_pool.forward(digit_maps)[0, k], maxabs_pool.forward(digit_maps)[0, k]]
    names += [f"{kname}: SCS map 24x24", "MaxPool2D(2) 12x12", "MaxAbsPool2D(2) 12x12"]
fig = viz.plot_feature_maps(tiles, names=names, cols=4, image=zero[0, 0], image_name="the digit (input)",
                            title="Edge maps of a zero and their pooled versions (blue = the opposite edge)")
_lesson.save(fig, "pooling_real_maps", out)

# %% [markdown]
# ## 3. The backward pass: one winner per window gets the gradient
#
# y = x[winner], so dy/dx is 1 at the winner and 0 at the other three positions of the
# window: each window's gradient lands on one pixel. The two pools pick different winners in
# the windows whose strongest value is negative (top-left: 1 lands on -0.9 for MaxAbsPool, on
# 0.4 for MaxPool; bottom-left: 3 lands on -0.6 or on 0.2).

# %%
_lesson.section("3. The backward pass: one winner per window gets the gradient")
dy = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)[None, None]    # (1, 1, 2, 2)
max_pool.forward(x)
dx_max = max_pool.backward(dy)
maxabs_pool.forward(x)
dx_abs = maxabs_pool.backward(dy)
print("dL/dy (one number per window, 1 2 / 3 4 so you can follow each):")
print(dy[0, 0])
print("\nMaxPool2D backward, dL/dx:")
print(dx_max[0, 0])
print("MaxAbsPool2D backward, dL/dx:")
print(dx_abs[0, 0])
_, winners = reference.pool_forward(x.astype(np.float64), 2, mode="maxabs")
dx_loop = reference.pool_backward(x.shape, winners, dy.astype(np.float64))
print(f"same as the loop version in minisc/reference.py: {np.array_equal(dx_abs, dx_loop)}")

fig = viz.plot_small_arrays([m, dx_max[0, 0], dx_abs[0, 0]],
                            names=["feature map", "dL/dx through MaxPool", "dL/dx through MaxAbsPool"],
                            fmt="{:.1f}", shared_scale=False,
                            title="Where the gradient goes (dL/dy = 1, 2 / 3, 4)")
_lesson.save(fig, "gradient_routing", out)

# %% [markdown]
# On the zero's maps: which positions receive a gradient at all? And the ties: a blank window
# has four zeros. The first in row-major order wins, always the same.

# %%
max_pool.forward(digit_maps)
to_max = max_pool.backward(np.ones((1, 2, 12, 12), np.float32)) != 0
maxabs_pool.forward(digit_maps)
to_abs = maxabs_pool.backward(np.ones((1, 2, 12, 12), np.float32)) != 0
print(f"\nOn the zero's two edge maps, {int(to_abs.sum())} of {to_abs.size} positions receive a "
      "gradient (one per window),")
print(f"and the two pools pick different winners in {int(np.sum(to_max != to_abs)) // 2} of the "
      f"{to_abs.sum()} windows.")

blank = np.abs(digit_maps).reshape(1, 2, 12, 2, 12, 2).max(axis=(3, 5)) == 0
print(f"{int(blank.sum())} windows are exactly 0 everywhere (blank paper: c = 0). Their "
      "gradient goes to the\nwindow's top-left position, the first of a tie, on every run.")
fig = viz.plot_feature_maps(
    [digit_maps[0, 0], np.where(to_max[0, 0], digit_maps[0, 0], 0), np.where(to_abs[0, 0], digit_maps[0, 0], 0)],
    names=["top-edge map", "winners of MaxPool", "winners of MaxAbsPool"], cols=3,
    title="The positions that receive a gradient (coloured by their value)")
_lesson.save(fig, "winners_on_a_digit", out)

# %% [markdown]
# ## 4. Pool first, then sharpen: a quarter of the powers
#
# SCS sharpens every cosine, y = sign(c) |c|^p with p > 0: the larger |c|, the larger |y|.
# So in every window the element of largest |y| is the element of largest |c|, and pooling
# the *cosines*, then sharpening only the winners, gives the numbers of sharpening everything
# and pooling after. The power is the costly part of SCS (a logarithm and an
# exponential per element), and 2x2 pooling leaves a quarter of the elements.
# `SharpCosSim2D(..., pool_size=2)` is an SCS layer that ends with this pool and uses the
# identity; `minisc.models.fold_pools(model)` rewrites a whole network that way.

# %%
_lesson.section("4. Pool first, then sharpen")
folded = SharpCosSim2D(1, 2, 5, p_init=2.0, q_init=0.1, pool_size=2)
folded.params["w"][...] = scs.params["w"]
together = folded.forward(batch)                        # (n, 2, 12, 12)
differ = together != p_abs
print(f"{folded}")
print(f"  powers taken: {together.size:,} instead of {maps.size:,}")
print(f"  windows where it differs from SharpCosSim2D, then MaxAbsPool2D(2): {int(differ.sum())} "
      f"of {together.size:,}")
if differ.any():
    pairs = ", ".join(f"{a:+.2e} against {b:+.2e}" for a, b in zip(together[differ][:3], p_abs[differ][:3]))
    print(f"  there (pool first against sharpen first): {pairs}")

# %% [markdown]
# Almost the same numbers. Where they differ, a window held two cosines of nearly the same
# size and opposite sign. In float32, two cosines that differ in their last bits can have
# sharpened values that round to the same number: sharpening first turns them into a tie,
# which goes to the first element of the window, while pooling first still sees which |c| is
# larger. Either is a fair max-abs pool of two numbers this close; the layer with `pool_size`
# keeps the winner that exact arithmetic would pick.

# %% [markdown]
# ## Try this
#
# Printed by the cell below; teachers find the answers in `lessons/answers.md`.

# %%
_lesson.try_this(
    "Pool the 24x24 maps with MaxAbsPool2D(5): what shape comes out, and how many rows and "
    "columns are dropped? Is that a problem on MNIST, where the border is blank?",
    "Give a window two values of equal size and opposite sign, such as 0.5 and -0.5, and run "
    "both pools forward and backward. Which wins? Find the line in minisc/layers/pooling.py "
    "that decides.",
    "Write average pooling in one line (maps.reshape(n, 2, 12, 2, 12, 2).mean(axis=(3, 5))). "
    "What does it report for a window holding +0.9 and -0.9?",
    "In lesson 6's network, swap MaxAbsPool2D for MaxPool2D and train for one epoch: how much "
    "accuracy does the network lose?",
)
_lesson.finish()
