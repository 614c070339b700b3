# %% [markdown]
# # Lesson 10: write your own layer: a depthwise SCS, checked and trained
#
# **You will learn**
#
# - the layer contract every minisc layer follows, spelled out;
# - how to write a new layer from its forward equation: forward, cache, backward, parameters,
#   with the derivative names of lesson 4 (`dL_dy`, `dL_dc`, `dL_ddot`, `dL_dnorm_s`, ...);
# - how to prove the backward pass right with gradcheck before trusting it;
# - how a depthwise SCS layer plus a 1x1 ("pointwise") SCS layer does the work of a full SCS
#   layer with a fraction of the parameters: the building block of the 1,398-parameter MNIST
#   network by Raphael Pisoni, who introduced depthwise SCS (parameter-efficiency leaderboard,
#   `brohrer/parameter_efficiency_leaderboard`, May 2022; lesson 9 has the details);
# - how to make `minisc.load` understand your layer.
#
#     python lessons/10_your_own_layer.py [--quick]

# %%
import _lesson  # before matplotlib and minisc: picks the plotting backend and finds minisc
import numpy as np

import minisc
from minisc import Dense, Flatten, MaxAbsPool2D, Sequential, SharpCosSim2D, gradcheck, viz
from minisc.layers.base import as_rng
from minisc.layers.scs import EPS, P_MAX, P_MIN, Q_MIN, TINY
from minisc.layers.windows import WindowedLayer, output_size
from minisc.train import load_dataset, train

QUICK = _lesson.QUICK
OUT = _lesson.start("10_your_own_layer")

# %% [markdown]
# ## 1. The layer contract
#
# A minisc layer is a subclass of `minisc.Layer` with:
#
#     forward(x)      compute y from x and cache what backward needs       x: (N, C, H, W)
#     backward(dy)    given dL_dy, return dL_dx and fill self.grads         never touch params!
#     params, grads   dicts of arrays, same keys and shapes; optimizers update params in place
#     constrain()     clip params into their valid range after each optimizer step
#     config()        the constructor's arguments, so minisc.load can rebuild the layer
#     output_shape()  (C, H, W) in -> shape out, for Sequential.summary()
#
# Helpers from the base class: `self._check_input(x, ndim=4, channels=C)` validates and
# converts the input; `self._check_grad(dy)` checks dy against the last output's shape
# (`self._y_shape`).
#
# ## 2. Writing DepthwiseSCS2D
#
# One kernel per input channel, channels kept apart: no patch matrix, no matrix product.
# The layer builds on `WindowedLayer`, the base class of every sliding-window layer in minisc:
# it checks the channel, kernel, stride and padding arguments and provides `output_shape()`
# and a readable `__str__`, so the new layer only adds its parameters, `config()`, `forward()`
# and `backward()`.

# %%
_lesson.section("2. Writing DepthwiseSCS2D")


@minisc.register_layer                       # lets minisc.load rebuild it from a saved file
class DepthwiseSCS2D(WindowedLayer):
    """Sharpened cosine similarity with one kernel per input channel, channels kept apart.

    For every channel c and window position: s = the kh*kw patch of channel c only, and

        norm_s = sqrt(s . s + eps) + q
        c      = (s . w_c) / (norm_s * sqrt(w_c . w_c + eps))
        y      = sign(c) * max(|c|, TINY) ** p_c

    params: w (C, kh, kw), p (C,), q (1,).   x (N, C, H, W) -> y (N, C, H_out, W_out).
    A full SharpCosSim2D(C -> K) has K*C*kh*kw weights; this has only C*kh*kw. A 1x1
    SharpCosSim2D(C -> K) after it mixes the channels back together.
    """

    def __init__(self, channels, kernel_size, stride=1, padding=0, p_init=2.0, q_init=0.1,
                 dtype=np.float32, rng=None):
        # C channels in, C out, one group per channel: checks, output_shape and __str__ come free
        super().__init__(channels, channels, kernel_size, stride, padding, groups=channels, dtype=dtype)
        self.channels = self.in_channels
        self.p_init, self.q_init = float(p_init), float(q_init)
        kh, kw = self.kernel_size
        w = as_rng(rng).uniform(-1, 1, size=(channels, kh, kw))
        self.params = {"w": w.astype(self.dtype),
                       "p": np.full(channels, p_init, dtype=self.dtype),
                       "q": np.full(1, q_init, dtype=self.dtype)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def config(self):
        """This constructor's arguments (not WindowedLayer's), so minisc.load can rebuild it."""
        return dict(channels=self.channels, kernel_size=list(self.kernel_size), stride=self.stride,
                    padding=self.padding, p_init=self.p_init, q_init=self.q_init)

    def constrain(self):
        np.clip(self.params["p"], P_MIN, P_MAX, out=self.params["p"])
        np.maximum(self.params["q"], Q_MIN, out=self.params["q"])

    def _slices(self, h_out, w_out):
        """For each kernel offset (a, b): the pixels it touches in every window, as a slice pair."""
        kh, kw = self.kernel_size
        s = self.stride
        for a in range(kh):
            for b in range(kw):
                yield a, b, (slice(a, a + s * h_out, s), slice(b, b + s * w_out, s))

    def forward(self, x):
        x = self._check_input(x, ndim=4, channels=self.channels)
        n, c, h, w = x.shape
        kh, kw = self.kernel_size
        h_out = output_size(h, kh, self.stride, self.padding)
        w_out = output_size(w, kw, self.stride, self.padding)
        if h_out < 1 or w_out < 1:
            raise ValueError(f"{self}: kernel larger than the padded input {x.shape}")
        pad = self.padding
        xp = np.pad(x.transpose(0, 2, 3, 1), ((0, 0), (pad, pad), (pad, pad), (0, 0)))   # (N, Hp, Wp, C)
        norm_w = np.sqrt((self.params["w"] ** 2).sum(axis=(1, 2)) + EPS)   # (C,)
        w_hat = self.params["w"] / norm_w[:, None, None]               # (C, kh, kw)
        # Depthwise: no patch matrix, no matrix product. Loop over the kh*kw kernel offsets;
        # each adds one shifted, strided slice of the image (all windows at once) times the
        # kernel weight at that offset (one weight per channel, broadcast over N, H, W).
        dot = np.zeros((n, h_out, w_out, c), dtype=self.dtype)          # (N, Ho, Wo, C)
        sq_sum = np.zeros_like(dot)
        for a, b, (rows, cols) in self._slices(h_out, w_out):
            part = xp[:, rows, cols, :]                                  # (N, Ho, Wo, C)
            dot += part * w_hat[:, a, b]
            sq_sum += part * part
        root_s = np.sqrt(sq_sum + EPS)
        norm_s = root_s + self.params["q"][0]
        cos = dot / norm_s
        abs_c = np.maximum(np.abs(cos), TINY)
        log_c = np.log(abs_c)
        y = np.sign(cos) * np.exp(log_c * self.params["p"])             # p broadcasts over C
        self._cache = (x.shape, xp, w_hat, norm_w, root_s, norm_s, cos, abs_c, log_c, y)
        out = y.transpose(0, 3, 1, 2)                                    # (N, C, Ho, Wo)
        self._y_shape = out.shape
        return out

    def backward(self, dy):
        dy = self._check_grad(dy)
        x_shape, xp, w_hat, norm_w, root_s, norm_s, cos, abs_c, log_c, y = self._cache
        dL_dy = dy.transpose(0, 2, 3, 1)                                 # (N, Ho, Wo, C)
        p = self.params["p"]
        # y = sign(c) a**p, a = max(|c|, TINY):  dy_dp = y ln a,  dy_dc = p a**(p-1) = p |y| / a
        # (0 where the clamp acted)
        self.grads["p"][...] = (dL_dy * y * log_c).sum(axis=(0, 1, 2))                # dL_dp
        dL_dc = np.where(abs_c > TINY, dL_dy * p * np.abs(y) / abs_c, 0)
        # c = dot / norm_s with dot = s . w_hat (w_hat = w / norm_w, so norm_w is in w_hat):
        #   dc/d dot = 1 / norm_s,  dc/d norm_s = -c / norm_s
        dL_ddot = dL_dc / norm_s
        dL_dnorm_s = -dL_dc * cos / norm_s
        # norm_s = sqrt(s . s + eps) + q:  d norm_s/dq = 1,  d norm_s/ds = s / sqrt(s . s + eps)
        self.grads["q"][0] = dL_dnorm_s.sum()                                         # dL_dq
        dL_dnorm_s_per_s = dL_dnorm_s / root_s
        h_out, w_out = dL_dy.shape[1:3]
        dL_dw_hat = np.zeros_like(w_hat)
        dL_dxp = np.zeros_like(xp)
        for a, b, (rows, cols) in self._slices(h_out, w_out):
            part = xp[:, rows, cols, :]                                  # s at offset (a, b)
            dL_dw_hat[:, a, b] = (dL_ddot * part).sum(axis=(0, 1, 2))
            dL_dxp[:, rows, cols, :] += dL_ddot * w_hat[:, a, b] + dL_dnorm_s_per_s * part   # dL_ds
        # w_hat = w / norm_w:  dL_dw = (dL_dw_hat - w_hat (w_hat . dL_dw_hat)) / norm_w
        radial = (w_hat * dL_dw_hat).sum(axis=(1, 2), keepdims=True)
        self.grads["w"][...] = (dL_dw_hat - w_hat * radial) / norm_w[:, None, None]    # dL_dw
        pad = self.padding
        _, _, h, w = x_shape
        return dL_dxp[:, pad:pad + h, pad:pad + w, :].transpose(0, 3, 1, 2)           # dL_dx


layer = DepthwiseSCS2D(3, 3, padding=1, rng=0)
x = np.random.default_rng(1).random((2, 3, 7, 7), dtype=np.float32)
print(f"{layer}: {x.shape} -> {layer.forward(x).shape}, {layer.n_params} parameters")

# %% [markdown]
# ## 3. gradcheck before anything else
#
# The threshold is the one of lesson 4: a worst relative error under gradcheck's threshold
# (`_lesson.GRADCHECK_THRESHOLD`) means right. A wrong sign or a forgotten term shows up as an
# error of 1e-2 or more. Try it: flip the sign of the q gradient in `backward()` above and
# rerun this lesson.
#
# One false alarm to know about: with p < 1 on a blank patch (all zeros, like MNIST's
# background) c = 0, where |c|**p has a kink with an infinite slope. Finite differences then
# see a huge slope that the layer, rightly, does not report (it uses dy/dc = 0 there), and
# gradcheck fails although the code is right. Check p < 1 on lit patches, as the input here
# is, and blank patches with p > 1 (`minisc/gradcheck.py` says more).

# %%
_lesson.section("3. gradcheck before anything else")
errors = gradcheck(layer, x, verbose=True)
ok = max(errors.values()) < _lesson.GRADCHECK_THRESHOLD
print(f"worst relative error {max(errors.values()):.1e}, threshold {_lesson.GRADCHECK_THRESHOLD:g}: "
      f"{'correct' if ok else 'SOMETHING IS WRONG'}")
if not ok:
    raise SystemExit("gradcheck failed: fix backward() before training")

# %% [markdown]
# A second, independent check: minisc's own `SharpCosSim2D` computes the same thing when each
# kernel sees one channel only (`groups=C`, a depthwise layer). Same kernels, same p and q:
# the outputs and every gradient must agree.

# %%
builtin = SharpCosSim2D(3, 3, 3, padding=1, groups=3, dtype=np.float64)
builtin.params["w"][...] = layer.params["w"][:, None]         # (C, kh, kw) -> (K, C/G, kh, kw)
builtin.params["p"][...] = layer.params["p"]
builtin.params["q"][...] = layer.params["q"]
x64 = x.astype(np.float64)
mine64 = DepthwiseSCS2D(3, 3, padding=1, dtype=np.float64)
mine64.params = {k: v.astype(np.float64) for k, v in layer.params.items()}
mine64.grads = {k: np.zeros_like(v) for k, v in mine64.params.items()}
dL_dy = np.random.default_rng(2).standard_normal(mine64.forward(x64).shape)
diffs = {"y": np.abs(mine64.forward(x64) - builtin.forward(x64)).max()}
diffs["dL_dx"] = np.abs(mine64.backward(dL_dy) - builtin.backward(dL_dy)).max()
for key in ("w", "p", "q"):
    diffs[f"dL_d{key}"] = np.abs(mine64.grads[key].reshape(builtin.grads[key].shape) - builtin.grads[key]).max()
print(f"{builtin}\nlargest differences: " + ", ".join(f"{k} {v:.1e}" for k, v in diffs.items()))

# %% [markdown]
# ## 4. Depthwise + pointwise in a network

# %%
_lesson.section("4. Depthwise + pointwise, trained on digits")


def separable_net(rng=0):
    r = as_rng(rng)
    return Sequential([
        SharpCosSim2D(1, 12, 5, rng=r), MaxAbsPool2D(2),               # 28 -> 24 -> 12
        DepthwiseSCS2D(12, 3, rng=r), SharpCosSim2D(12, 16, 1, rng=r),  # 12 -> 10, mix channels
        MaxAbsPool2D(2),                                                # -> 5
        DepthwiseSCS2D(16, 3, padding=1, rng=r), SharpCosSim2D(16, 16, 1, rng=r),
        MaxAbsPool2D(2), Flatten(), Dense(16 * 2 * 2, 10, rng=r),        # -> 2x2 -> 64 -> 10
    ], input_shape=(1, 28, 28))


net = separable_net()
print(net.summary())
full = SharpCosSim2D(12, 16, 3)
print(f"\nFor comparison, one full SharpCosSim2D(12 -> 16, 3x3) alone has {full.n_params:,} "
      f"parameters;\nDepthwiseSCS2D(12, 3x3) + SharpCosSim2D(12 -> 16, 1x1) has "
      f"{DepthwiseSCS2D(12, 3).n_params + SharpCosSim2D(12, 16, 1).n_params:,}.")
data = _lesson.thin(load_dataset("sample", quick=QUICK), 2)
epochs = 1 if QUICK else 25
history = train(net, data["x_train"], data["y_train"], data["x_test"], data["y_test"],
                epochs=epochs, lr=0.02, batch_size=64, shift=2, seed=0)
print(f"{net.n_params:,} parameters, test accuracy {history['val_acc'][-1]:.2%}")

# %% [markdown]
# ## 5. Save and load it

# %%
_lesson.section("5. Save and load a model with your layer")
path = net.save(OUT / "separable_scs.npz")
again = minisc.load(path)
same = np.array_equal(again.forward(data["x_test"][:8]), net.forward(data["x_test"][:8]))
print(f"saved {path}; reloaded identical: {same} (thanks to @minisc.register_layer)")
_lesson.save(viz.plot_training_curves(history, title=f"depthwise-separable SCS, {net.n_params:,} parameters"),
             "separable_training.png", OUT)

# %% [markdown]
# ## Try this
#
# Printed by the cell below; teachers find the answers in `lessons/answers.md`.

# %%
_lesson.try_this(
    "Add a depth multiplier M: M kernels per input channel (w of shape (C*M, kh, kw)). "
    "Which lines change? Run gradcheck again.",
    "Time DepthwiseSCS2D against SharpCosSim2D(C, C, 3, groups=C) on a batch of 64 digits' "
    "feature maps (time.perf_counter around forward and backward). Which is faster, and why?",
    "Shrink separable_net until it has under 1,400 parameters. How close to 99% can you get with "
    "full MNIST (python -m minisc.data download mnist)?",
)
_lesson.finish()
