"""Lesson 6: train a sharpened-cosine-similarity network on real handwritten digits.

What you will learn
- how the pieces of minisc fit together into a training loop: forward, loss, backward, step;
- what a single training step does to the loss and to the parameters p and q;
- how to train the flagship SCS network on your CPU in a few minutes, watch its progress, and
  read its loss and accuracy curves;
- how to save the trained model so lesson 7 can look inside it.

Run it from the repository root:

    python lessons/06_train_scs.py            # the real thing: a few minutes on a laptop
    python lessons/06_train_scs.py --quick    # a smoke test that finishes in seconds

Data: full MNIST (60,000 digits) if its files are on disk or can be downloaded, otherwise the
5,000-digit MNIST sample that ships with minisc. The lesson says which one it used.
"""

# %%
import _lesson  # before matplotlib and minisc: picks the plotting backend and finds minisc
import numpy as np

import minisc
from minisc import SoftmaxCrossEntropy, viz
from minisc.models import build_model
from minisc.train import DEFAULTS, evaluate, load_dataset, train

QUICK = _lesson.QUICK
OUT = _lesson.output_dir(__file__)
SEED = 0

# %% [1] The data ------------------------------------------------------------------------------
_lesson.section("1. The data")
data = load_dataset("sample" if QUICK else "auto", quick=QUICK)
x_train, y_train = data["x_train"], data["y_train"]
x_test, y_test = data["x_test"], data["y_test"]
print(f"x_train: {x_train.shape} {x_train.dtype}, values in [{x_train.min():.0f}, {x_train.max():.0f}]")
print(f"y_train: {y_train.shape} {y_train.dtype}, digits {sorted(set(y_train.tolist()))}")
print("Images are channels-first (N, C, H, W): one grey channel of 28x28 pixels.")

# %% [2] The model -----------------------------------------------------------------------------
_lesson.section("2. The flagship SCS network")
model = build_model("scs", rng=SEED)
print(model.summary())
first = model.layers[0]
print(f"""
Three SharpCosSim2D layers, each followed by MaxAbsPool2D, then one Dense layer that turns
the 128 pooled responses into 10 class scores. No ReLU, no batch norm, no dropout: the sharpened
cosine already is a nonlinearity, and its output is bounded in (-1, 1).

Each SCS layer has a kernel per output channel (w), one exponent p per kernel (started at
{first.params['p'][0]:.1f}) and one noise floor q per layer (started at {first.params['q'][0]:.2f}).
Together: {model.n_params:,} parameters.""")

# %% [3] One training step, by hand ------------------------------------------------------------
_lesson.section("3. One training step, by hand")
loss_fn = SoftmaxCrossEntropy()
opt = minisc.Adam(model, lr=0.01)
xb, yb = x_train[:64], y_train[:64].astype(np.int64)

logits = model.forward(xb)                       # (64, 10) class scores
loss = loss_fn.forward(logits, yb)               # one number: how wrong we are on average
print(f"forward:  logits {logits.shape}, loss {loss:.4f}  (chance level is ln 10 = {np.log(10):.4f})")
model.backward(loss_fn.backward())               # every layer.grads is now filled
g = first.grads
print(f"backward: first layer dL/dw {g['w'].shape}, |dL/dw| = {np.linalg.norm(g['w']):.2e}, "
      f"dL/dp[:3] = {np.round(g['p'][:3], 5)}, dL/dq = {g['q'][0]:.2e}")
p_before = first.params["p"].copy()
opt.step()                                       # every layer.params updated in place
print(f"step:     first-layer p moved by up to {np.abs(first.params['p'] - p_before).max():.4f}")
print(f"after one step, the same batch has loss {loss_fn.forward(model.forward(xb), yb):.4f}")
print("The training loop below repeats exactly this, batch after batch, epoch after epoch.")

# %% [4] Train ---------------------------------------------------------------------------------
_lesson.section("4. Train")
model = build_model("scs", rng=SEED)             # start afresh
settings = dict(DEFAULTS["scs"])
if data["name"] != "sample":
    settings["epochs"] = 3                       # 60,000 digits: 3 epochs already take minutes
if QUICK:
    settings["epochs"] = 1
print(f"settings: {settings}")
print("Adam, learning rate warmed up during the first epoch then decayed along a cosine;")
print(f"each image is shifted by up to {settings['shift']} pixels at random (augmentation).")
history = train(model, x_train, y_train, x_test, y_test, seed=SEED, **settings)

# %% [5] How did it go? ------------------------------------------------------------------------
_lesson.section("5. Curves and test accuracy")
_lesson.save(viz.plot_training_curves(history), "training_curves.png", OUT)
test_loss, test_acc = evaluate(model, x_test, y_test)
print(f"test accuracy: {test_acc:.2%} on {len(y_test):,} digits the network never trained on "
      f"({data['description']})")
print(f"training took {history['seconds'][-1]:.0f} s")
for i, layer in enumerate(model.layers):
    if isinstance(layer, minisc.SharpCosSim2D):
        p = layer.params["p"]
        print(f"layer {i} {layer}: p from {p.min():.2f} to {p.max():.2f} "
              f"(mean {p.mean():.2f}), q = {layer.params['q'][0]:.4f}")
print("p moved away from 2: each kernel chose how sharp it wants to be.")

# %% [6] Save the model ------------------------------------------------------------------------
_lesson.section("6. Save the model")
path = model.save(OUT / "model.npz")
print(f"saved model: {path}")
again = minisc.load(path)
same = np.array_equal(again.forward(x_test[:10]), model.forward(x_test[:10]))
print(f"reloaded with minisc.load: identical outputs = {same}. Lesson 7 opens this file.")
_lesson.save(viz.plot_kernels(model.layers[0].params["w"], p=model.layers[0].params["p"],
                              title="first-layer kernels after training (red +, blue -)"),
             "first_layer_kernels.png", OUT)

# %% Try this -----------------------------------------------------------------------------------
_lesson.section("Try this")
print("""- Train longer or shorter from the command line and compare test accuracy:
      python -m minisc.train --data sample --model scs --epochs 10
- Start every p at 1 (plain cosine similarity): pass p_init=1.0 to the SharpCosSim2D layers in
  minisc/models.py. Does the network still learn? Where do the p values end up?
- Turn the augmentation off (--shift 0). What happens to train accuracy and to test accuracy?
- Raise the learning rate to 0.1 (--lr 0.1). Does anything become NaN? Why not? (Hint: the
  output of SCS is bounded, and p is clipped to [0.1, 10].)""")
_lesson.finish()
