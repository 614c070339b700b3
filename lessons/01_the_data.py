# %% [markdown]
# # Lesson 1: the data
#
# Before any network, look at what it will learn from: real handwritten digits from MNIST
# (by Yann LeCun, Corinna Cortes and Christopher J.C. Burges). minisc ships 5,000 of them, so
# everything here works offline.
#
# **You will learn**
#
# - what a digit is to a computer: a 28x28 grid of numbers from 0 to 255;
# - how the pixel values are spread, and how to turn them into the float32 arrays a network
#   takes (channels-first: N, C, H, W);
# - how many examples of each class there are, and the fixed train/validation split;
# - what the "average" 0, 1, ... 9 looks like, and which digits look alike;
# - how to get the full MNIST (60,000 + 10,000 digits).
#
# Run it from the repository root (or from `lessons/`), or open it as a notebook:
#
#     python lessons/01_the_data.py            # the whole lesson, a few seconds
#     python lessons/01_the_data.py --quick    # fewer pictures, for a smoke test
#
# Figures are saved to `output/01_the_data/` and shown on screen when there is one.

# %%
import _lesson  # before matplotlib and minisc: picks the plotting backend and finds minisc
import matplotlib.pyplot as plt
import numpy as np

from minisc import data, viz

out = _lesson.start("01_the_data")
n_show = 16 if _lesson.QUICK else 40

# %% [markdown]
# ## 1. Load the embedded sample
#
# The digits are real MNIST training digits, stored in `datasets/mnist_sample.npz` (about
# 0.8 MB): each a 28x28 grid of unsigned bytes, with its label 0..9.

# %%
_lesson.section("1. Load the embedded sample")
images, labels = data.load_mnist_sample()
print(f"images: {type(images).__name__} {images.dtype} {images.shape}")
print(f"labels: {type(labels).__name__} {labels.dtype} {labels.shape}")
print(f"{len(images):,} digits; the file lists them class by class: the first ten labels are "
      f"{labels[:10].tolist()}.")

# A shuffled look, so every class shows up:
look = _lesson.rng(1).choice(len(images), size=n_show, replace=False)
fig = viz.plot_digits(images[look], labels[look], n=n_show, title="Some digits from the sample")
_lesson.save(fig, "digits", out)

# %% [markdown]
# ## 2. One digit, as the numbers it really is
#
# The rows and columns that hold ink, printed as numbers, then the whole digit with one
# character per pixel.

# %%
_lesson.section("2. One digit, as the numbers it really is")
i = int(look[0])
digit = images[i]
rows = np.flatnonzero(digit.max(axis=1))          # rows and columns that hold any ink
cols = np.flatnonzero(digit.max(axis=0))
r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
print(f"Digit #{i}, labelled {labels[i]}. Its ink fills rows {r0}..{r1 - 1} and columns "
      f"{c0}..{c1 - 1}; those are printed, the rest is all 0.\n")
for row in digit[r0:r1, c0:c1]:
    print(" ".join(f"{v:3d}" if v else "  ." for v in row))

print("\nThe same digit with one character per pixel, darker characters for larger values:\n")
ramp = " .:-=+*#%@"                                 # 10 shades, 0 -> " ", 255 -> "@"
for row in digit[:, max(c0 - 1, 0):c1 + 1]:
    line = "".join(ramp[int(v) * (len(ramp) - 1) // 255] * 2 for v in row)   # x2: looks square
    if line.strip():
        print("    " + line)

# %% [markdown]
# ## 3. The values: a range of 0..255, mostly 0
#
# Blank background matters for SCS: a window that sees only background has length 0, and the
# cosine of a zero vector is 0/0. Lessons 2 and 4 show how minisc keeps that finite.

# %%
_lesson.section("3. The values: a range of 0..255, mostly 0")
zero = np.mean(images == 0)
full_ink = np.mean(images == 255)
print(f"smallest {images.min()}, largest {images.max()}, mean {images.mean():.1f}")
print(f"{zero:.1%} of all pixels are exactly 0 (background); {full_ink:.1%} are exactly 255.")
ink = images[images > 0]
print(f"The other pixels ({ink.size / images.size:.1%}) are the pen's soft edges and body: "
      f"median {np.median(ink):.0f}.")
fig, ax = plt.subplots(figsize=(7, 3.2))
ax.hist(images.ravel(), bins=np.arange(0, 257, 4), color="tab:gray", log=True)
ax.set_xlabel("pixel value")
ax.set_ylabel("pixels (log scale)")
ax.set_title(f"All {images.size:,} pixel values: a tall spike at 0 (paper), a smaller one near 255 (ink)")
fig.tight_layout()
_lesson.save(fig, "pixel_values", out)

# %% [markdown]
# ## 4. From bytes to the float32 batch a network takes
#
# Two changes: the values are divided by 255, and a channel axis is added. minisc arrays are
# channels-first, (N, C, H, W): N images, C channels (1 for grey digits), H rows, W columns.
# A colour photo would have C = 3.
#
# Why not compute with the bytes directly? uint8 arithmetic wraps around silently, as the
# cell shows.
#
# Some networks prefer inputs with mean 0 and standard deviation 1; with `standardize=True`,
# `to_float` uses the full MNIST's 0.1307 and 0.3081. SCS does not need it: the cosine
# already ignores how bright a patch is.

# %%
_lesson.section("4. From bytes to the float32 batch a network takes")
x = data.to_float(images)
print(f"to_float(images): {x.dtype} {x.shape}, values {x.min():.1f}..{x.max():.1f}")
print(f"np.array([200], np.uint8) + 100 gives {(np.array([200], np.uint8) + 100).tolist()}, not [300]")
print(f"this sample: pixel mean {x.mean():.4f}, standard deviation {x.std():.4f}")

# %% [markdown]
# ## 5. The classes and the fixed train/validation split
#
# The split is stratified (each class split 450/50) and fixed: it is drawn with one seeded
# generator, so every run, every lesson and every student gets the same 500 validation
# digits. A network is trained on the training part only; the validation part tells how
# well it does on digits it has never seen. The cell checks that no digit is in both parts
# by comparing the raw bytes of every image.

# %%
_lesson.section("5. The classes and the fixed train/validation split")
counts = np.bincount(labels, minlength=10)
print("class:   " + " ".join(f"{k:4d}" for k in range(10)))
print("digits:  " + " ".join(f"{c:4d}" for c in counts))
x_train_u8, y_train = data.load_mnist_sample("train")
x_val_u8, y_val = data.load_mnist_sample("validation")
print(f"\ntraining:   {len(y_train):,} digits, {np.bincount(y_train).min()}"
      f"..{np.bincount(y_train).max()} per class")
print(f"validation: {len(y_val):,} digits, {np.bincount(y_val).min()}"
      f"..{np.bincount(y_val).max()} per class")

# No digit is in both parts: compare the raw bytes of every image.
train_set = {img.tobytes() for img in x_train_u8}
shared = sum(img.tobytes() in train_set for img in x_val_u8)
print(f"validation digits whose exact pixels also appear in training: {shared}")
fig = viz.plot_class_balance({"training": y_train, "validation": y_val},
                             title="Digits per class in the embedded sample")
_lesson.save(fig, "class_balance", out)

# %% [markdown]
# ## 6. The average digit of each class
#

# %%
_lesson.section("6. The average digit of each class")
x_train = data.to_float(x_train_u8)[:, 0]                       # (4500, 28, 28) floats
means = np.stack([x_train[y_train == k].mean(axis=0) for k in range(10)])    # (10, 28, 28)
fig = viz.plot_digits(means, labels=np.arange(10), n=10, cols=10,
                      title="The mean training digit of each class")
_lesson.save(fig, "mean_digits", out)

flat = means.reshape(10, -1)
unit = flat / np.linalg.norm(flat, axis=1, keepdims=True)
cos = unit @ unit.T                                              # (10, 10)
print("Cosine similarity between the mean digits (1.00 on the diagonal):\n")
print("      " + "".join(f"{k:6d}" for k in range(10)))
for k in range(10):
    print(f"{k:6d}" + "".join(f"{v:6.2f}" for v in cos[k]))
off = cos - 2 * np.eye(10)
a, b = np.unravel_index(np.argmax(off), off.shape)
c, d = np.unravel_index(np.argmin(cos), cos.shape)
print(f"\nMost alike: {a} and {b} ({cos[a, b]:.2f}). Least alike: {c} and {d} ({cos[c, d]:.2f}).")

# %% [markdown]
# Even the least alike pair scores well above 0: all digits put ink near the centre. A
# cosine on whole images is a blunt tool. Lesson 2 sharpens it and applies it to small
# patches, which is what an SCS layer does.
#
# ## 7. The full MNIST

# %%
_lesson.section("7. The full MNIST")
try:
    full_x, _ = data.load_mnist("train", download=False)
    print(f"The full MNIST training set is on disk: {full_x.shape[0]:,} digits. "
          "Lessons 6 and 7 train on it automatically.")
except FileNotFoundError:
    print("The full MNIST is not on disk (only the 5,000-digit sample, which is enough here).")
    print("To get it (about 11 MB, checked against the official checksums):")
    print("    python -m minisc.data download mnist")
    print("Lessons 6 and 7 then train on it automatically. See datasets/README.md.")

# %% [markdown]
# ## Try this
#
# The list is printed by the cell below (answers: `lessons/answers.md`).

# %%
_lesson.try_this(
    "Print a digit the model of lesson 6 gets wrong, as numbers: is it badly written, or just "
    "unusual (thick, slanted, off-centre)?",
    "Replace the mean digit by the median (np.median) or by the pixel-wise standard deviation: "
    "where do writers disagree most?",
    "Compute the cosine similarity of every validation digit to each class mean and predict the "
    "most similar class. How many of the 500 does this 'nearest mean' classifier get right?",
    "Load Fashion-MNIST (minisc.data.load_fashion_mnist, see datasets/README.md) and run steps "
    "3 and 6 on it: are its images as sparse as the digits?",
)
_lesson.finish()
