# %% [markdown]
# # Lesson 6: train a sharpened-cosine-similarity network on real handwritten digits
#
# **You will learn**
#
# - how the pieces of minisc fit together into a training loop: forward, loss, backward, step,
#   written out in ten lines you can read and change;
# - what a single training step does to the loss and to the parameters p and q;
# - how to watch training: loss and accuracy curves, the first-layer kernels taking shape
#   epoch by epoch (also as an animation), and p and q moving;
# - how to save the trained model, with a record of how it was trained, so lesson 7 can look
#   inside it.
#
#     python lessons/06_train_scs.py                     # the real thing (times: lessons/what_to_expect.md)
#     python lessons/06_train_scs.py --quick             # a smoke test: seconds
#     python lessons/06_train_scs.py --shift 0 --lr 0.03 --epochs 5 --seed 1 --p-init 1
#
# The flags are the experiments of "Try this" at the end; `--help` lists them, and an unknown
# flag stops the lesson with a message. In a notebook, change the values in the cell that
# calls `_lesson.start` instead.
#
# Data: full MNIST (60,000 digits) if its files are on disk or can be downloaded, otherwise the
# 5,000-digit MNIST sample that ships with minisc. The lesson says which one it used.

# %%
import time

import _lesson  # before matplotlib and minisc: picks the plotting backend and finds minisc
import numpy as np

import minisc
from minisc import SoftmaxCrossEntropy, viz
from minisc.models import build_model
from minisc.train import DEFAULTS, load_dataset, lr_at, random_shift

OUT = _lesson.start("06_train_scs", epochs=None, lr=0.01, shift=2, seed=0, p_init=2.0, data="auto")
opts = _lesson.options            # epochs=None: 1 in quick mode, 3 on full MNIST, 30 on the sample
QUICK = _lesson.QUICK

# %% [markdown]
# ## 1. The data

# %%
_lesson.section("1. The data")
data = load_dataset("sample" if QUICK else opts.data, quick=QUICK)
x_train, y_train = data["x_train"], data["y_train"].astype(np.int64)
x_test, y_test = data["x_test"], data["y_test"]
print(f"x_train: {x_train.shape} {x_train.dtype}, values in [{x_train.min():.0f}, {x_train.max():.0f}]")
print(f"y_train: {y_train.shape} {y_train.dtype}, digits {sorted(set(y_train.tolist()))}")
print("Images are channels-first (N, C, H, W): one grey channel of 28x28 pixels.")

# %% [markdown]
# ## 2. The flagship SCS network
#
# Three SharpCosSim2D layers, each followed by MaxAbsPool2D, then one Dense layer that turns
# the pooled responses into 10 class scores. No ReLU, no batch norm, no dropout: the
# sharpened cosine already is a nonlinearity, and its output is bounded in (-1, 1).
#
# Each SCS layer has a kernel per output channel (w), one exponent p per kernel and one noise
# floor q per layer.


# %%
def fresh_model():
    """The flagship network, every p started at opts.p_init (2 unless --p-init says otherwise)."""
    model = build_model("scs", rng=opts.seed)
    for layer in model.layers:
        if isinstance(layer, minisc.SharpCosSim2D):
            layer.params["p"][:] = opts.p_init
    return model


_lesson.section("2. The flagship SCS network")
model = fresh_model()
print(model.summary())
scs_layers = [layer for layer in model.layers if isinstance(layer, minisc.SharpCosSim2D)]
first = scs_layers[0]
print(f"p started at {first.params['p'][0]:.1f}, q at {first.params['q'][0]:.2f}; "
      f"{model.n_params:,} parameters in all.")

# %% [markdown]
# ## 3. One training step, by hand
#
# Forward (class scores), loss (one number: how wrong we are on average), backward (every
# layer's `grads` filled, from `dL_dlogits` back to the first layer's `dL_dw`, `dL_dp`,
# `dL_dq`), step (the optimizer moves every parameter a little against its gradient).

# %%
_lesson.section("3. One training step, by hand")
loss_fn = SoftmaxCrossEntropy()
opt = minisc.Adam(model, lr=opts.lr)
xb, yb = x_train[:64], y_train[:64]

logits = model.forward(xb)                       # (64, 10) class scores
loss = loss_fn.forward(logits, yb)
print(f"forward:  logits {logits.shape}, loss {loss:.4f}  (chance level is ln 10 = {np.log(10):.4f})")
model.backward(loss_fn.backward())               # every layer.grads is now filled
g = first.grads
print(f"backward: first layer dL_dw {g['w'].shape}, |dL_dw| = {np.linalg.norm(g['w']):.2e}, "
      f"dL_dp[:3] = {np.round(g['p'][:3], 5)}, dL_dq = {g['q'][0]:.2e}")
p_before = first.params["p"].copy()
opt.step()                                       # every layer.params updated in place
print(f"step:     first-layer p moved by up to {np.abs(first.params['p'] - p_before).max():.4f}")
print(f"after one step, the same batch has loss {loss_fn.forward(model.forward(xb), yb):.4f}")

# %% [markdown]
# ## 4. The training loop, written out
#
# The loop repeats that step, batch after batch, epoch after epoch. Two additions: every image
# is shifted by up to `shift` pixels at random (augmentation: the network sees a slightly
# different digit each epoch), and the learning rate warms up during the first epoch and
# then decays along a cosine (`lr_at`). After every epoch the loop records what we want to
# watch: loss and accuracy, p and q of every SCS layer, and a copy of the first-layer kernels.
# (`minisc.train.train` is the same loop with a progress bar and more checks; lesson 8 uses it.)

# %%
_lesson.section("4. Train")
model = fresh_model()                            # start afresh
scs_layers = [layer for layer in model.layers if isinstance(layer, minisc.SharpCosSim2D)]
epochs = opts.epochs or (1 if QUICK else 3 if data["name"] != "sample" else DEFAULTS["scs"]["epochs"])
batch_size = DEFAULTS["scs"]["batch_size"]
opt = minisc.Adam(model, lr=opts.lr)
rng = np.random.default_rng(opts.seed)           # drives the shuffling and the shifts
steps_per_epoch = -(-len(y_train) // batch_size)
total_steps, warmup = epochs * steps_per_epoch, min(steps_per_epoch, epochs * steps_per_epoch // 5)
print(f"{epochs} epochs of {steps_per_epoch} batches of {batch_size}, Adam lr {opts.lr}, "
      f"shift {opts.shift}, seed {opts.seed}, p started at {opts.p_init}")
print("The same run from the command line: python -m minisc.train --model scs "
      f"--data {data['name']} --epochs {epochs} --lr {opts.lr} --shift {opts.shift} --seed {opts.seed}"
      + (f"  (p_init {opts.p_init} is this lesson's own)" if opts.p_init != 2.0 else ""))

history = {key: [] for key in ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "p", "q")}
snapshots = {0: scs_layers[0].params["w"].copy()}          # epoch 0: before training


def record(epoch, train_loss, train_acc):
    """After an epoch: test loss and accuracy, p and q of every SCS layer, the kernels."""
    val_loss, val_acc = _lesson.evaluate(model, x_test, y_test)
    for key, value in (("epoch", epoch), ("train_loss", train_loss), ("train_acc", train_acc),
                       ("val_loss", val_loss), ("val_acc", val_acc),
                       ("p", [layer.params["p"].tolist() for layer in scs_layers]),
                       ("q", [float(layer.params["q"][0]) for layer in scs_layers])):
        history[key].append(value)
    snapshots[epoch] = scs_layers[0].params["w"].copy()
    print(f"epoch {epoch:3d}/{epochs}  loss {train_loss:.4f}  train acc {train_acc:.2%}  "
          f"test acc {val_acc:.2%}  ({time.perf_counter() - start:.0f} s)")


history["p"].append([layer.params["p"].tolist() for layer in scs_layers])     # before training
history["q"].append([float(layer.params["q"][0]) for layer in scs_layers])
start, step = time.perf_counter(), 0
for epoch in range(1, epochs + 1):
    order = rng.permutation(len(y_train))
    loss_sum, correct = 0.0, 0
    for b in range(steps_per_epoch):
        idx = order[b * batch_size:(b + 1) * batch_size]
        xb, yb = random_shift(x_train[idx], opts.shift, rng), y_train[idx]
        opt.lr = lr_at(step, total_steps, warmup, opts.lr)
        logits = model.forward(xb)                       # forward
        loss = loss_fn.forward(logits, yb)               # loss
        model.backward(loss_fn.backward())               # backward
        opt.step()                                       # step
        step += 1
        loss_sum += loss * len(yb)
        correct += int(np.sum(logits.argmax(axis=1) == yb))
    record(epoch, loss_sum / len(y_train), correct / len(y_train))
seconds = time.perf_counter() - start

# %% [markdown]
# ## 5. Watching it learn
#
# The loss and accuracy curves (the number written on the accuracy panel is the last test
# accuracy, the one this lesson reports; a star marks a better epoch if there was one), the
# first-layer kernels at a few epochs (each kernel on its own colour scale, since SCS ignores
# a kernel's length), p and q against epochs, and `kernels.gif`, an animation of the kernels
# over all epochs (open it in a browser or an image viewer).

# %%
_lesson.section("5. Watching it learn")
# history["p"] and ["q"] start with the values before training (epoch 0); the curves start at 1
curves = {key: history[key] for key in ("epoch", "train_loss", "train_acc", "val_loss", "val_acc")}
_lesson.save(viz.plot_training_curves(curves), "training_curves.png", OUT)
test_acc = history["val_acc"][-1]
print(f"test accuracy after the last epoch: {test_acc:.2%} on {len(y_test):,} digits the network "
      f"never trained on ({data['description']}); training took {seconds:.0f} s")
chosen = sorted({0, 1, epochs // 2, epochs})
_lesson.save(viz.plot_kernels_at_epochs(snapshots, epochs=chosen), "kernels_at_epochs.png", OUT)
_lesson.save(viz.plot_p_q(dict(history, epoch=[0] + history["epoch"])), "p_and_q.png", OUT)
gif = viz.animate_kernels(snapshots, OUT / "kernels.gif")
print(f"saved animation: {gif}")
for i, layer in enumerate(scs_layers):
    p = layer.params["p"]
    print(f"SCS layer {i + 1}: p from {p.min():.2f} to {p.max():.2f} (mean {p.mean():.2f}), "
          f"q = {layer.params['q'][0]:.4f}")

# %% [markdown]
# p moved away from where it started: each kernel chose how sharp it wants to be.
#
# ## 6. Save the model, with how it was trained
#
# The file holds the architecture, every parameter, and a record of the run (model, data,
# epochs, quick or not, seed, settings, final test accuracy), so lesson 7 can say what it
# opened.

# %%
_lesson.section("6. Save the model")
metadata = dict(model="scs", data=data["name"], epochs=epochs, epochs_done=epochs, quick=QUICK,
                seed=opts.seed, final_test_accuracy=test_acc,
                settings=dict(lr=opts.lr, shift=opts.shift, batch_size=batch_size, p_init=opts.p_init))
path = model.save(OUT / "model.npz", metadata=metadata)
print(f"saved model: {path}")
again = minisc.load(path)
same = np.array_equal(again.forward(x_test[:10]), model.forward(x_test[:10]))
print(f"reloaded with minisc.load: identical outputs = {same}; its record: {again.metadata}")
print("Lesson 7 opens this file.")

# %% [markdown]
# ## Try this
#
# Each experiment is a flag of this lesson (or a change in the `_lesson.start` cell in a
# notebook). Teachers find the answers in `lessons/answers.md`.

# %%
_lesson.try_this(
    "Train longer or shorter and compare test accuracy: --epochs 10. Where does the test "
    "accuracy stop improving?",
    "Start every p at 1, plain cosine similarity: --p-init 1. Does the network still learn? "
    "Where do the p values end up (p_and_q.png)?",
    "Turn the augmentation off: --shift 0. What happens to train accuracy and to test accuracy?",
    "Raise the learning rate: --lr 0.1. Does anything become NaN? Why not? (Hint: the output "
    "of SCS is bounded, and p is clipped to [0.1, 10].)",
    "Change the seed (--seed 1): do the first-layer kernels in kernels_at_epochs.png come out "
    "the same?",
)
_lesson.finish()
