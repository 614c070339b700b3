# %% [markdown]
# # Lesson 9: parameter efficiency, or how small can an SCS network be and still read digits?
#
# **You will learn**
#
# - where the parameters of an SCS network live (kernels, one p per kernel, one q per layer,
#   the read-out) and how to count them by hand;
# - how accuracy falls as the network shrinks, measured on a family of networks of one layout;
# - what the published records are, where they are published, and what it takes to reach them.
#
#     python lessons/09_parameter_efficiency.py [--quick]
#
# It trains five small networks for 60 epochs each (times: `lessons/what_to_expect.md`);
# seconds with `--quick`.

# %%
import time

import _lesson  # before matplotlib and minisc: picks the plotting backend and finds minisc
import matplotlib.pyplot as plt
from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

from minisc import Dense, Flatten, MaxAbsPool2D, Sequential, SharpCosSim2D
from minisc.layers.base import as_rng
from minisc.train import load_dataset, train

QUICK = _lesson.QUICK
OUT = _lesson.start("09_parameter_efficiency")
EPOCHS = 1 if QUICK else 60
SEED = 0

# %% [markdown]
# ## 1. Counting parameters by hand
#
# For SharpCosSim2D(C -> K, kh x kw): K*C*kh*kw kernel weights + K exponents p + 1 q.
#
#     layer 0: 8*1*5*5 + 8 + 1 =  209
#     layer 2: 8*8*3*3 + 8 + 1 =  585
#     layer 4: 10*8*3*3 + 10 + 1 = 731
#     Dense(40 -> 10): 40*10 + 10 = 410          total 1,935
#
# Note what is *not* there: no biases in the SCS layers, no batch-norm statistics. The
# read-out layer is a fifth of the budget: the pooled 2x2 map of 10 channels is all it sees.

# %%
_lesson.section("1. Counting parameters by hand")


def small_scs(k1, k2, k3, rng=SEED):
    """The scs-tiny layout with k1, k2, k3 kernels in its three SCS layers.

    28x28 -> SCS 5x5 (k1) -> 24x24 -> pool -> 12x12 -> SCS 3x3 (k2) -> 10x10 -> pool -> 5x5
          -> SCS 3x3, padding 1 (k3) -> 5x5 -> pool -> 2x2 -> Dense(4*k3 -> 10)
    """
    r = as_rng(rng)
    return Sequential([
        SharpCosSim2D(1, k1, 5, rng=r), MaxAbsPool2D(2),
        SharpCosSim2D(k1, k2, 3, rng=r), MaxAbsPool2D(2),
        SharpCosSim2D(k2, k3, 3, padding=1, rng=r), MaxAbsPool2D(2),
        Flatten(), Dense(4 * k3, 10, rng=r),
    ], input_shape=(1, 28, 28))


model = small_scs(8, 8, 10)
print(model.summary())
print(f"by hand: {8*1*5*5 + 8 + 1} + {8*8*3*3 + 8 + 1} + {10*8*3*3 + 10 + 1} + {40*10 + 10} = "
      f"{8*1*5*5 + 8 + 1 + 8*8*3*3 + 8 + 1 + 10*8*3*3 + 10 + 1 + 40*10 + 10:,}")

# %% [markdown]
# ## 2. A family of networks, from ~2,000 parameters down

# %%
_lesson.section(f"2. Train a family of shrinking networks ({EPOCHS} epochs each)")
data = _lesson.thin(load_dataset("sample", quick=QUICK), 3)
family = [(8, 8, 10), (6, 6, 8), (4, 6, 6), (4, 4, 4), (2, 3, 3)]
if QUICK:
    family = family[::2]                         # three of them: a smoke test
results = []
for k1, k2, k3 in family:
    model = small_scs(k1, k2, k3)
    start = time.perf_counter()
    hist = train(model, data["x_train"], data["y_train"], data["x_test"], data["y_test"],
                 epochs=EPOCHS, lr=0.03, batch_size=64, shift=2, seed=SEED, log=lambda *a: None)
    acc = hist["val_acc"][-1]
    results.append((model.n_params, acc, (k1, k2, k3)))
    print(f"kernels {k1:2d}-{k2:2d}-{k3:2d}: {model.n_params:5,d} parameters -> test accuracy "
          f"{acc:.2%}   ({time.perf_counter() - start:.0f} s)")

# %% [markdown]
# ## 3. Accuracy against size

# %%
_lesson.section("3. Accuracy against size")
fig, ax = plt.subplots(figsize=(6.5, 4.2))
ax.plot([r[0] for r in results], [100 * r[1] for r in results], "o-", color="#b2182b")
for n, acc, ks in results:
    ax.annotate("-".join(map(str, ks)), (n, 100 * acc), textcoords="offset points", xytext=(4, -12),
                fontsize=8)
ax.set_xscale("log")
ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
ax.xaxis.set_major_formatter(ScalarFormatter())
ax.xaxis.set_minor_formatter(NullFormatter())          # no crowded labels on the minor ticks
ax.set_xlabel("parameters (log scale)")
ax.set_ylabel("test accuracy (%)")
ax.set_title(f"small SCS networks, {len(data['y_train']):,} training digits")
ax.grid(alpha=0.3)
fig.tight_layout()
_lesson.save(fig, "accuracy_vs_parameters.png", OUT)

# %% [markdown]
# **Published marks to measure against** (full MNIST, 60,000 training digits, many epochs).
# The source is the parameter-efficiency leaderboard that Brandon Rohrer kept for SCS and
# other small networks, in the GitHub repository `brohrer/parameter_efficiency_leaderboard`
# (final state May 2022); its entries report the official test set's accuracy after the last
# epoch.
#
# - **1,398 parameters, >= 99% on MNIST**: a 3-layer SCS network with paired depthwise and
#   pointwise layers, by Raphael Pisoni (leaderboard entry; his blog post describes the
#   network; its code is not public). Depthwise SCS is his idea.
# - **About 3,000 parameters, 99%**: a plain SCS network, by the same author (his blog).
# - For comparison, first place on that MNIST board (910 parameters) is not an SCS network but
#   a ConvNet with a Hough-voting layer (S. Tanaka).
#
# We train on 4,500 digits for a few minutes, so expect to land lower. The depthwise trick,
# one small kernel per channel followed by a 1x1 mixing layer, is the subject of lesson 10:
# it is how the record network spends so few parameters.
#
# ## Try this
#
# Printed by the cell below; teachers find the answers in `lessons/answers.md`.

# %%
_lesson.try_this(
    "Find the smallest network in the family that still reaches 95%: try kernels 3-4-4.",
    "Spend the budget differently: a wider first layer and a narrower last one, or kernel 3x3 in "
    "the first layer. Which layer is the bottleneck?",
    "Replace the final Dense read-out by a fourth SCS layer with 10 kernels and a global "
    "MaxAbsPool2D: a network without a single bias.",
    "Train the best small network on full MNIST (python -m minisc.data download mnist) for a few "
    "epochs: how close to 99% does it get?",
)
_lesson.finish()
