# %% [markdown]
# # Lesson 7: look inside the trained SCS network
#
# **You will learn**
#
# - what the first-layer kernels look like after training, drawn as signed images (red where
#   the kernel wants ink, blue where it wants background, white where it does not care), and
#   how sharp each one chose to be (its learned p);
# - what the deeper kernels look like, and why they are harder to read;
# - what each layer "sees" in one digit: its feature maps, layer after layer;
# - where the learned exponents p and noise floors q ended up;
# - which digits the network confuses, and what the digits it gets wrong look like.
#
# Run lesson 6 first: this lesson opens the model it saved and says how that model was
# trained. A model from a quick run (`--quick`) has barely learned anything: the lesson warns
# when it opens one. (If it finds no model, it trains a short one itself, so it always runs.)
#
#     python lessons/07_inside_the_network.py [--quick]

# %%
import _lesson  # before matplotlib and minisc: picks the plotting backend and finds minisc
import numpy as np

import minisc
from minisc import viz
from minisc.models import build_model
from minisc.train import load_dataset, train

QUICK = _lesson.QUICK
OUT = _lesson.start("07_inside_the_network")
MODEL_PATH = OUT.parent / "06_train_scs" / "model.npz"

# %% [markdown]
# ## 1. The trained model, and how it was trained

# %%
_lesson.section("1. The trained model")
data = load_dataset("sample" if QUICK else "auto", quick=QUICK)
x_test, y_test = data["x_test"], data["y_test"]
if MODEL_PATH.exists():
    model = minisc.load(MODEL_PATH)
    print(f"loaded {MODEL_PATH}")
    record = model.metadata                      # {} for a file saved without a record
    if record:
        settings = ", ".join(f"{k} {v}" for k, v in (record.get("settings") or {}).items())
        accuracy = record.get("final_test_accuracy")
        print(f"trained: model {record.get('model')}, data {record.get('data')}, "
              f"{record.get('epochs_done', record.get('epochs'))} of {record.get('epochs')} epochs, "
              f"seed {record.get('seed')}" + (f", {settings}" if settings else "")
              + (f"; final test accuracy {accuracy:.2%}" if accuracy is not None else ""))
        if record.get("quick"):
            print("WARNING: this model comes from a quick run (lesson 6 with --quick or "
                  "MINISC_QUICK=1): one epoch on a few hundred digits. Its kernels are close to "
                  "their random start and its accuracy is far below a trained network's. Run "
                  "python lessons/06_train_scs.py without --quick for the real thing.")
    else:
        print("WARNING: this model file does not record how it was trained (an older file): "
              "it may come from a quick run. Rerun lesson 6 to be sure.")
else:
    print(f"{MODEL_PATH} not found (run lessons/06_train_scs.py to make it).")
    epochs = 1 if QUICK else 8
    print(f"Training a stand-in for {epochs} epoch(s) so this lesson has something to show...")
    model = build_model("scs", rng=0)
    train(model, data["x_train"], data["y_train"], epochs=epochs, lr=0.01, shift=2, seed=0,
          log=lambda *a: None)
print(model.summary())
_, acc = _lesson.evaluate(model, x_test, y_test)
print(f"test accuracy: {acc:.2%} on {len(y_test):,} held-out digits")
scs_layers = [(i, layer) for i, layer in enumerate(model.layers) if isinstance(layer, minisc.SharpCosSim2D)]

# %% [markdown]
# ## 2. First-layer kernels
#
# Each tile is one kernel. Red: the kernel wants ink there; blue: it wants background. Since
# SCS compares *directions*, only the pattern matters, not the overall brightness: every
# kernel is drawn on its own colour scale.

# %%
_lesson.section("2. First-layer kernels")
i0, first = scs_layers[0]
w, p = first.params["w"], first.params["p"]
print(f"layer {i0}: {w.shape[0]} kernels of shape {w.shape[1:]} (channels, rows, columns)")
print(f"learned p per kernel: {np.round(p, 2)}")
sharpest = int(np.argmax(p))
print(f"the sharpest kernel is #{sharpest} (p = {p[sharpest]:.2f}): it fires only on a close match.")
_lesson.save(viz.plot_kernels(w, p=p, title=f"layer {i0}: all {len(p)} first-layer kernels"),
             "kernels_layer0.png", OUT)

# %% [markdown]
# ## 3. Deeper kernels
#
# A deeper kernel looks at feature maps, not at pixels, so it is a stack of small patterns,
# one per input channel: one row per kernel in the figures.

# %%
_lesson.section("3. Deeper kernels")
for i, layer in scs_layers[1:]:
    w = layer.params["w"]
    print(f"layer {i}: kernels {w.shape}: each looks at {w.shape[1]} feature maps")
    _lesson.save(viz.plot_kernels(w, p=layer.params["p"], max_kernels=12,
                                  title=f"layer {i}: the first 12 kernels, one row each"),
                 f"kernels_layer{i}.png", OUT)

# %% [markdown]
# ## 4. What each layer sees in one digit
#
# Each figure shows the digit first, then the feature maps of one SCS layer. Red: the patch
# matches the kernel; blue: it matches the kernel's negative. Blank background stays white
# (0): a blank patch has dot product 0 with every kernel, so its cosine is 0 whatever q is.
# (q's job is the *almost* blank patch, lesson 2.) In deeper layers, a window over pooled
# zeros is blank again, and stays 0 the same way.

# %%
_lesson.section("4. What each layer sees in one digit")
digit = x_test[:1]                                   # (1, 1, 28, 28)
print(f"digit label: {y_test[0]}")
h = digit
for i, layer in enumerate(model.layers):
    h = layer.forward(h)
    if isinstance(layer, minisc.SharpCosSim2D):
        maps = h[0]                                  # (K, H_out, W_out)
        print(f"after layer {i} ({layer}): {maps.shape}, values in [{maps.min():+.2f}, {maps.max():+.2f}]")
        _lesson.save(viz.plot_feature_maps(maps, image=digit[0], image_name=f"input: a {y_test[0]}",
                                           title=f"feature maps after layer {i} for a '{y_test[0]}'"),
                     f"feature_maps_layer{i}.png", OUT)
blank_maps = model.layers[0].forward(np.zeros((1, 1, 28, 28), np.float32))
print(f"A blank image gives first-layer maps of exactly 0: {not blank_maps.any()}")

# %% [markdown]
# ## 5. The learned p and q
#
# Where p fell below 1 the layer is *less* selective than a cosine; where it rose, more. A
# small final q means the layer trusts faint input. (Lesson 6 draws p and q against epochs:
# `output/06_train_scs/p_and_q.png`.)

# %%
_lesson.section("5. The learned p and q")
p_by_layer = {f"layer {i}": layer.params["p"] for i, layer in scs_layers}
for i, layer in scs_layers:
    p, q = layer.params["p"], layer.params["q"][0]
    print(f"layer {i}: p mean {p.mean():.2f} (min {p.min():.2f}, max {p.max():.2f}); q = {q:.4f}")
_lesson.save(viz.plot_p_histogram(p_by_layer), "p_histogram.png", OUT)

# %% [markdown]
# ## 6. Where it goes wrong

# %%
_lesson.section("6. Where it goes wrong")
logits = model.predict(x_test)
pred = logits.argmax(axis=1)
cm = viz.confusion_matrix(y_test, pred, 10)
off = cm - np.diag(np.diag(cm))
a, b = np.unravel_index(np.argmax(off), off.shape)
print(f"{int(off.sum())} mistakes out of {len(y_test):,}; the most common: a {a} read as a {b} "
      f"({off[a, b]} times)")
_lesson.save(viz.plot_confusion_matrix(cm), "confusion_matrix.png", OUT)
wrong = np.nonzero(pred != y_test)[0]
if len(wrong):
    z = logits[wrong] - logits[wrong].max(axis=1, keepdims=True)
    probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    _lesson.save(viz.plot_misclassified(x_test[wrong], y_test[wrong], pred[wrong], probs=probs),
                 "misclassified.png", OUT)
    print("Look at the misclassified digits: would you have read them correctly?")

# %% [markdown]
# ## Try this
#
# Printed by the cell below; teachers find the answers in `lessons/answers.md`.

# %%
_lesson.try_this(
    'Find the kernel with the smallest p in layer 0 and set its p to 8 (model.layers[0].params["p"]). '
    "How does test accuracy change? And its feature map?",
    "Feed the network a blank image (np.zeros((1, 1, 28, 28), np.float32)): what does every layer "
    "output, and why is that a good thing?",
    "Invert a digit (1 - x): SCS keeps the sign, so which feature maps flip sign?",
    "Retrain with lesson 6 and a different seed (--seed 1): do the first-layer kernels come out the same?",
)
_lesson.finish()
