# %% [markdown]
# # Lesson 2: dot product, cosine similarity, sharpened cosine similarity
#
# A convolution layer scores every small patch of an image by a dot product with its kernel.
# Sharpened cosine similarity (SCS, proposed by Brandon Rohrer) scores it by the cosine of the
# angle between patch and kernel, sharpened by a power p and quietened by a noise floor q:
#
#     c = (s . w) / ((|s| + q) |w|),        y = sign(c) |c|^p
#
# **You will learn**
#
# - why the dot product is a weak feature detector: a bright blob can outscore the very shape
#   the kernel is looking for;
# - how the cosine fixes that, and where it is still too broad;
# - what the exponent p does (the "sharpened" in SCS);
# - what the noise floor q does on faint, noisy patches (and what it does not do: blank
#   patches score 0 without it);
# - that this is exactly what one `minisc.SharpCosSim2D` layer computes.
#
#     python lessons/02_cosine_similarity.py            # a few seconds
#     python lessons/02_cosine_similarity.py --quick
#
# Figures are saved to `output/02_cosine_similarity/` and shown on screen when there is one.

# %%
import _lesson  # before matplotlib and minisc: picks the plotting backend and finds minisc
import numpy as np

from minisc import SharpCosSim2D, data, viz

out = _lesson.start("02_cosine_similarity")
EPS = 1e-12        # inside the square root, as in minisc: keeps |blank patch| = 1e-6, not 0


def norm(v):
    """Length of a patch or kernel (any shape), with EPS inside the square root."""
    return np.sqrt(np.sum(v * v) + EPS)


# %% [markdown]
# ## 1. A stroke detector and five patches
#
# A 5x5 kernel that looks for a vertical pen stroke: across the stroke the ink rises and falls
# softly (0, 0.5, 1, 0.5, 0), like the strokes of real MNIST digits. Five patches to score,
# by the dot product s . w that a convolution computes.

# %%
_lesson.section("1. A stroke detector and five patches")
profile = np.array([0.0, 0.5, 1.0, 0.5, 0.0])
kernel = np.tile(profile, (5, 1))                   # (5, 5): every row is the profile

noise = _lesson.rng(0).uniform(0.0, 0.03, size=(5, 5))
patches = {
    "faint vertical stroke": 0.3 * kernel,          # the right shape, pale ink
    "bold vertical stroke": 1.0 * kernel,           # the right shape, dark ink
    "bright blob": np.ones((5, 5)),                 # no stroke at all, just ink everywhere
    "horizontal stroke": kernel.T,                  # a stroke, the wrong way round
    "almost blank (noise)": noise,                  # scanner noise on empty paper
}
print("The dot product s . w is what a convolution computes for each patch:\n")
dots = {name: float(np.sum(s * kernel)) for name, s in patches.items()}
for name, d in sorted(dots.items(), key=lambda item: -item[1]):
    print(f"    {name:24s} s . w = {d:6.2f}")

# %% [markdown]
# The bright blob wins, ahead of the bold stroke the kernel was made for, and the faint
# stroke, which has exactly the right shape, scores less than the wrong-way horizontal one. A
# dot product grows with how much ink there is, not only with how well its shape fits. A
# network of dot products has to fix that with biases, normalisation layers and more kernels.
#
# ## 2. Cosine similarity: divide by both lengths
#
# c = (s . w) / (|s| |w|) is the cosine of the angle between patch and kernel, seen as two
# vectors of 25 numbers. It ignores how dark the ink is.

# %%
_lesson.section("2. Cosine similarity: divide by both lengths")
cosines = {name: float(np.sum(s * kernel) / (norm(s) * norm(kernel))) for name, s in patches.items()}
print(f"|w| = {norm(kernel):.3f}\n")
print(f"    {'patch':24s} {'|s|':>6s} {'s . w':>7s} {'cosine':>7s}")
for name, s in patches.items():
    print(f"    {name:24s} {norm(s):6.3f} {dots[name]:7.2f} {cosines[name]:7.3f}")
_lesson.say(f"""
    Faint and bold strokes both score {cosines['faint vertical stroke']:.2f}, the maximum; the blob
    drops to {cosines['bright blob']:.2f}. But the horizontal stroke, at right angles to the kernel's,
    still scores {cosines['horizontal stroke']:.2f}, and near-blank noise (|s| = {norm(noise):.3f}) scores
    {cosines['almost blank (noise)']:.2f}. The exact negative of the kernel scores
    {np.sum(-kernel * kernel) / (norm(kernel) ** 2):.2f}.
""")
captions = [f"{name}\ndot {dots[name]:.2f}, cosine {cosines[name]:.2f}" for name in patches]
fig = viz.plot_small_arrays([kernel] + list(patches.values()),
                            names=["KERNEL: vertical stroke"] + captions, fmt="{:.2f}",
                            cols=3, title="A vertical-stroke kernel and five 5x5 patches")
_lesson.save(fig, "kernel_and_patches", out)

# %% [markdown]
# Two problems remain. The cosine is *broad*: a stroke at right angles to the kernel's still
# scores well. And it is *blind to strength*: near-blank noise scores as if it were a real
# half-match. p fixes the first problem, q the second.
#
# One more property: the sign. A patch that is the exact negative of the kernel scores -1.
# Inside a network, where values are signed, "clearly the opposite" is as informative as
# "clearly the same".
#
# ## 3. On a real digit: where does the kernel fire?
#
# Lesson 2 scores every 5x5 window of a real digit with a plain loop over positions (lesson 3
# shows the fast way). In the figure, the **square** marks the position where the dot product
# is largest, the **circle** the position where the cosine is largest; the figure's legend
# says the same.

# %%
_lesson.section("3. On a real digit: where does the kernel fire?")
images, labels = data.load_mnist_sample("validation")
digit = images[35].astype(np.float64) / 255.0        # (28, 28), values 0..1: a bold zero
print(f"Validation digit #35, a {labels[35]} drawn with a thick pen.")


def patch_rows(image, k=5):
    """Every k x k patch of a 2-D image, flattened: ((H-k+1) * (W-k+1), k*k).

    A plain loop over positions, to keep this lesson simple; lesson 3 shows the fast way.
    """
    h, w = image.shape
    return np.array([image[i:i + k, j:j + k].ravel()
                     for i in range(h - k + 1) for j in range(w - k + 1)])


def scs_map(image, kern, p=1.0, q=0.0):
    """sign(c) |c|^p for every patch of image: (H-k+1, W-k+1). p=1, q=0 is the plain cosine."""
    rows = patch_rows(image, kern.shape[0])                       # (576, 25) for 28x28, k=5
    norms_s = np.sqrt(np.sum(rows * rows, axis=1) + EPS) + q      # (576,)
    c = rows @ kern.ravel() / (norms_s * norm(kern))              # (576,)
    y = np.sign(c) * np.abs(c) ** p
    side = image.shape[0] - kern.shape[0] + 1
    return y.reshape(side, -1)


dot_map = (patch_rows(digit) @ kernel.ravel()).reshape(24, 24)    # (24, 24)
cos_map = scs_map(digit, kernel)                                  # (24, 24)
top = np.unravel_index(np.argmax(dot_map), dot_map.shape)          # strongest dot product
side = np.unravel_index(np.argmax(cos_map), cos_map.shape)         # strongest cosine
print(f"dot product map {dot_map.shape}: largest {dot_map[top]:.2f} at (row, col) = "
      f"{tuple(map(int, top))}, where the cosine is {cos_map[top]:.2f}")
print(f"cosine map {cos_map.shape}:      largest {cos_map[side]:.2f} at (row, col) = "
      f"{tuple(map(int, side))}, where the dot product is {dot_map[side]:.2f}")
print(f"positions where the cosine is above 0.5: {np.mean(cos_map > 0.5):.0%}")
fig = viz.plot_feature_maps([dot_map / dot_map.max(), cos_map],
                            names=["dot product / its max", "cosine"], image=digit,
                            image_name=f"digit (label {labels[35]})", cols=3, vmax=1.0,
                            title="Vertical-stroke kernel: dot product versus cosine")
for ax in fig.axes[1:3]:                            # mark the two positions (x = col, y = row)
    ax.plot(top[1], top[0], "s", mfc="none", mec="black", ms=9, label="largest dot product")
    ax.plot(side[1], side[0], "o", mfc="none", mec="black", ms=9, label="largest cosine")
fig.legend(*fig.axes[1].get_legend_handles_labels(), loc="lower center", ncol=2, fontsize=8,
           bbox_to_anchor=(0.5, -0.08))
_lesson.save(fig, "dot_vs_cosine_on_a_digit", out)

# %% [markdown]
# The square sits on the top of the zero: a thick, horizontal run of ink, which the dot
# product loves for its amount of ink. The circle sits on the left side of the zero: a
# vertical stroke, which is what the kernel describes. But the cosine map is broad: the top
# of the ring still scores well, and a large share of all positions score above 0.5.

# %% [markdown]
# ## 4. Sharpening with p
#
# A perfect match (c = 1) keeps scoring 1 whatever p is. Everything else shrinks, the weaker
# the faster. p > 1 turns a broad cosine into a selective detector; p < 1 does the opposite.
# In an SCS layer each kernel learns its own p.

# %%
_lesson.section("4. Sharpening with p")
print("sign(c) |c|^p for the cosines of step 2:\n")
p_values = (0.5, 1, 2, 4, 8)
print(f"    {'patch':24s}" + "".join(f"  p={p:<4g}" for p in p_values))
for name, c in cosines.items():
    print(f"    {name:24s}" + "".join(f"  {np.sign(c) * abs(c) ** p:6.3f}" for p in p_values))
print(f"\nAt p = 4 the horizontal stroke is down to {cosines['horizontal stroke'] ** 4:.3f}, while the "
      f"blob keeps {cosines['bright blob'] ** 4:.3f}.")
fig = viz.plot_response_curves(p_values)
_lesson.save(fig, "sharpening_curves", out)

print("\nOn the zero, at the two positions of step 3:")
sharp_maps = [scs_map(digit, kernel, p=p) for p in (1, 2, 4, 8)]
for p, m in zip((1, 2, 4, 8), sharp_maps, strict=True):
    print(f"    p = {p}: top of the ring {m[top]:.3f}, left side {m[side]:.3f}, "
          f"positions above 0.5: {np.mean(m > 0.5):5.1%}")
fig = viz.plot_feature_maps(sharp_maps, names=[f"p = {p}" for p in (1, 2, 4, 8)], image=digit,
                            image_name="digit", cols=5, vmax=1.0,
                            title="The same cosine map, sharpened: only the vertical sides survive")
_lesson.save(fig, "sharpened_maps", out)

# %% [markdown]
# ## 5. The noise floor q
#
# c = (s . w) / ((|s| + q) |w|): q is added to the patch's length only. It barely touches
# patches much longer than q and flattens patches much shorter than q.
#
# What q does **not** do: make a blank patch score 0. A blank patch (all zeros) has
# s . w = 0 with every kernel, so its c is exactly 0 whatever q is, even q = 0: eps inside the
# square root keeps the denominator from being 0 (the first row of the q = 0 column below
# shows it). q matters for the *almost* blank patch: faint noise, whose cosine alone would
# look like a real match.

# %%
_lesson.section("5. The noise floor q")
q_values = (0.0, 0.01, 0.1, 1.0)
print(f"    {'patch':24s} {'|s|':>6s}" + "".join(f"  q={q:<5g}" for q in q_values))
for name, s in {"blank (all zeros)": np.zeros((5, 5)), **patches}.items():
    cs = [np.sum(s * kernel) / ((norm(s) + q) * norm(kernel)) for q in q_values]
    print(f"    {name:24s} {norm(s):6.3f}" + "".join(f"  {c:7.3f}" for c in cs))
_lesson.say(f"""
    The noise patch (|s| = {norm(noise):.3f}) drops from {cosines['almost blank (noise)']:.2f} to
    {np.sum(noise * kernel) / ((norm(noise) + 0.1) * norm(kernel)):.2f} at q = 0.1, while the bold stroke keeps
    {np.sum(kernel * kernel) / ((norm(kernel) + 0.1) * norm(kernel)):.2f}.
""")
fig = viz.plot_response_curves(None, q_values=q_values, cos_angle=cosines["almost blank (noise)"],
                               norm_marks={"noise patch": norm(noise),
                                           "faint stroke": norm(patches["faint vertical stroke"]),
                                           "bold stroke": norm(kernel)})
_lesson.save(fig, "noise_floor_curves", out)

# %% [markdown]
# Too large a q (1.0) also dims real but faint strokes. A side effect: with q > 0, |c| < 1
# always (Cauchy-Schwarz). An SCS layer learns one q per layer.
#
# The same on the digit, with faint noise on the paper (real scans are never perfectly
# clean). The windows whose clean version holds no ink see only noise: q silences them.

# %%

noisy = digit + _lesson.rng(1).uniform(0.0, 0.05, size=digit.shape)
q_maps = [scs_map(noisy, kernel, p=2, q=q) for q in q_values]
# Positions whose window holds no ink in the clean digit: all they see is noise.
background = (patch_rows(digit).max(axis=1) == 0).reshape(24, 24)
print(f"{background.sum()} of the 576 windows see only paper (and the noise on it).")
for q, m in zip(q_values, q_maps, strict=True):
    print(f"    q = {q:<4g}: mean |y| where there is only noise {np.abs(m[background]).mean():.3f}, "
          f"largest y on the strokes {m.max():.3f}")
fig = viz.plot_feature_maps(q_maps, names=[f"p = 2, q = {q:g}" for q in q_values], image=noisy,
                            image_name="digit + faint noise", cols=5, vmax=1.0,
                            title="A noisy digit: the noise floor q silences the background")
_lesson.save(fig, "noise_floor_on_a_digit", out)

# %% [markdown]
# ## 6. That is one SharpCosSim2D layer
#
# The layer computes the same numbers, for many kernels and many images at once, and it can
# also run backwards to learn w, p and q. Lesson 3 opens its forward pass.

# %%
_lesson.section("6. That is one SharpCosSim2D layer")
layer = SharpCosSim2D(1, 1, 5, p_init=2.0, q_init=0.1, dtype=np.float64)
layer.params["w"][0, 0] = kernel                    # (K, C, kh, kw) = (1, 1, 5, 5)
y = layer.forward(noisy[None, None])                # input (N, C, H, W) = (1, 1, 28, 28)
mine = scs_map(noisy, kernel, p=2, q=0.1)
print(f"layer output {y.shape}; largest difference from this lesson's loop: "
      f"{np.abs(y[0, 0] - mine).max():.1e}")

# %% [markdown]
# ## Try this
#
# Printed by the cell below; teachers find the answers in `lessons/answers.md`.

# %%
_lesson.try_this(
    "Give the kernel a negative surround: profile (-0.5, 0.5, 1, 0.5, -0.5). Does the dot "
    "product still prefer the blob? What happens to the cosine of the horizontal stroke?",
    "Make the kernel a diagonal stroke (np.eye(5), softened) and redo steps 3 and 4 on a 7 "
    "(labels == 7 picks them).",
    "In step 4, find the p at which the horizontal stroke's score falls below 0.01. Would you "
    "want p that large in a trained network? (Hint: the cosine of a good but imperfect match.)",
    "Put q on both lengths, c = (s . w) / ((|s| + q)(|w| + q)), as some implementations do. "
    "Which numbers in step 5 change, and why does it matter little once w is learned?",
)
_lesson.finish()
