"""Sharpened Cosine Similarity, the layer minisc is about.

Sharpened cosine similarity (SCS) was proposed by Brandon Rohrer as an alternative to
convolution (https://github.com/brohrer/sharpened-cosine-similarity). Like a convolution it
slides a kernel over the image; unlike a convolution it scores each patch by the *cosine* of
the angle between patch and kernel, so a faint stroke and a bold stroke of the same shape score
the same, and then *sharpens* that cosine with a learned exponent.

For one patch s (the C*kh*kw numbers under the window) and one kernel w_k:

    norm_s = sqrt(s . s + eps) + q        q > 0: learned noise floor (one per layer)
    norm_w = sqrt(w_k . w_k + eps)
    c      = (s . w_k) / (norm_s * norm_w)            |c| < 1 because q > 0
    y      = sign(c) * max(|c|, TINY) ** p_k          p_k > 0: learned, one per kernel

- eps sits *inside* the square root: d sqrt(u)/du is infinite at u = 0, which is every blank
  patch of an MNIST background, and 0 * inf = NaN in the backward pass.
- |c| is clamped to TINY before the power: with p < 1, d|c|**p/dc is infinite at c = 0, and
  ln|c| (needed for dL/dp) is -inf there.
- q keeps near-blank patches near 0 instead of amplifying noise into confident cosines.
- Where the clamp acts (c == 0 on every blank patch) the backward pass uses dy/dc = 0, the
  derivative of the clamped function, as common SCS implementations do. For p > 1 that is
  also the derivative of sign(c)|c|**p; for p < 1 the latter is infinite; for p == 1 exactly
  it would be 1, a case that only arises before the first update of a layer built with
  p_init=1.

Parameters
    params["w"]: (K, C, kh, kw)   the kernels
    params["p"]: (K,)             sharpening exponents, kept in [P_MIN, P_MAX]
    params["q"]: (1,)             noise floor, kept >= Q_MIN
``p`` and ``q`` are stored as themselves (not log-transformed), so you can print and plot them.
After each optimizer step, ``constrain()`` clips them back into range.
"""

import numpy as np

from .base import Layer, as_rng, pair
from .windows import (
    box_sum,
    box_sum_adjoint,
    check_window_args,
    check_window_fits,
    col2im_of_product,
    output_size,
    pad_nhwc,
    patch_matrix,
)

EPS = 1e-12      # inside the square roots of both norms
TINY = 1e-30     # |c| is clamped to this before the power and the log
P_MIN = 0.1      # smallest sharpening exponent allowed after an update
P_MAX = 10.0     # largest: beyond ~10, |c|**p underflows and the kernel stops learning
Q_MIN = 1e-4     # q must stay positive for |c| < 1 and a finite blank-patch response


class SharpCosSim2D(Layer):
    """Sharpened cosine similarity over sliding windows.

    Parameters
    ----------
    in_channels, out_channels : int
        C (input channels) and K (number of kernels).
    kernel_size : int or (kh, kw)
    stride : int, default 1
    padding : int, default 0
        Zeros added on every side of both spatial axes.
    p_init : float, default 2.0
        Starting exponent for every kernel.
    q_init : float, default 0.1
        Starting noise floor.
    dtype : np.float32 (default) or np.float64
    rng : None, int seed or numpy Generator, for the kernel initialisation.

    Shapes
    ------
    forward:  x (N, C, H, W)  ->  y (N, K, H_out, W_out),
              H_out = (H + 2*padding - kh) // stride + 1, likewise W_out.
    backward: dy (N, K, H_out, W_out)  ->  dx (N, C, H, W), and fills ``grads``.

    The output is a channels-first *view* of kernel-major memory: ``y.transpose(1, 0, 2, 3)``
    is a C-contiguous (K, N, H_out, W_out) array, the layout the layer computes in (see the
    comments in ``forward``). Index it like any (N, K, H_out, W_out) array; ``np.ascontiguousarray``
    gives a C-ordered copy when you need one.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 p_init=2.0, q_init=0.1, dtype=np.float32, rng=None):
        super().__init__(dtype)
        name = type(self).__name__
        check_window_args(name, in_channels=in_channels, out_channels=out_channels, stride=stride,
                          padding=padding)
        if not P_MIN <= p_init <= P_MAX:
            raise ValueError(f"{name}: p_init must be in [{P_MIN}, {P_MAX}], got {p_init}")
        if not q_init >= Q_MIN:
            raise ValueError(f"{name}: q_init must be >= {Q_MIN}, got {q_init}")
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.kernel_size = pair(kernel_size, "kernel_size", name)
        self.stride = int(stride)
        self.padding = int(padding)
        self.p_init = float(p_init)
        self.q_init = float(q_init)

        kh, kw = self.kernel_size
        # Glorot/Xavier-uniform scale. The cosine ignores the kernel's length, but the optimizer
        # does not: Adam's steps are ~lr in size, so the kernel's scale sets how fast it turns.
        fan_in = in_channels * kh * kw
        fan_out = out_channels * kh * kw
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        w = as_rng(rng).uniform(-limit, limit, size=(out_channels, in_channels, kh, kw))
        self.params = {
            "w": w.astype(self.dtype),
            "p": np.full(out_channels, p_init, dtype=self.dtype),
            "q": np.full(1, q_init, dtype=self.dtype),
        }
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    # ------------------------------------------------------------------------------------
    def config(self):
        return dict(in_channels=self.in_channels, out_channels=self.out_channels,
                    kernel_size=list(self.kernel_size), stride=self.stride,
                    padding=self.padding, p_init=self.p_init, q_init=self.q_init)

    def output_shape(self, input_shape):
        c, h, w = input_shape
        kh, kw = self.kernel_size
        return (self.out_channels, output_size(h, kh, self.stride, self.padding),
                output_size(w, kw, self.stride, self.padding))

    def constrain(self):
        np.clip(self.params["p"], P_MIN, P_MAX, out=self.params["p"])
        np.maximum(self.params["q"], Q_MIN, out=self.params["q"])

    def __str__(self):
        kh, kw = self.kernel_size
        return (f"SharpCosSim2D({self.in_channels}->{self.out_channels}, {kh}x{kw}, "
                f"stride {self.stride}, padding {self.padding})")

    # ------------------------------------------------------------------------------------
    def forward(self, x):
        """x: (N, C, H, W)  ->  y: (N, K, H_out, W_out)."""
        x = self._check_input(x, ndim=4, channels=self.in_channels)
        self._cache = None              # let the last step's arrays go before making new ones
        kh, kw = self.kernel_size
        n, c_in, h, w = x.shape
        check_window_fits(self, h, w)
        st = self.stride
        k = self.out_channels
        p = self.params["p"]                                     # (K,)
        q = self.params["q"]                                     # (1,)

        # Kernels as rows of a (K, D) matrix, columns ordered (kernel row, kernel col, channel)
        # to match the patch matrix below; then scaled to unit length.
        w_rows = self.params["w"].transpose(0, 2, 3, 1).reshape(k, -1)      # (K, D)
        norm_w = np.sqrt(np.einsum("kd,kd->k", w_rows, w_rows) + EPS)       # (K,)
        w_hat = w_rows / norm_w[:, None]                                    # (K, D)

        # Patches: pad, take the strided window view, copy it into the patch matrix.
        xp = pad_nhwc(x.transpose(0, 2, 3, 1), self.padding)               # (N, Hp, Wp, C)
        cols = patch_matrix(xp, kh, kw, st)                                 # (M, D)
        h_out = output_size(h, kh, st, self.padding)
        w_out = output_size(w, kw, st, self.padding)
        m = cols.shape[0]

        # Patch norms from a box sum of x**2: no need to square the (bigger) patch matrix.
        sq_sum = box_sum(np.einsum("nhwc,nhwc->nhw", xp, xp), kh, kw, st)   # (N, Ho, Wo)
        root_s = np.sqrt(sq_sum.reshape(-1) + EPS)                          # (M,)
        norm_s = root_s + q                                                 # (M,)

        # From here on every (K, M) array is kernel-major: one row per kernel, one column per
        # patch. Then "per kernel" numbers (p) scale whole rows and "per patch" numbers
        # (norm_s) are one row broadcast down the K rows: both are numpy's fast, contiguous
        # inner loops, where the (M, K) layout would run loops only K long.
        c = w_hat @ cols.T                                                  # (K, M)  BLAS
        c /= norm_s                                                         # (K, M)  cosines

        # a = max(|c|, TINY), then y = sign(c) * a**p. Computed as
        #   e = a**(p-1) = exp((p-1) * ln a)   and   y = c * e:
        # c * a**(p-1) is sign(c) * a**p wherever a == |c|, so no sign() pass is needed, and e
        # is also the slope the backward pass wants (dy/dc = p * e). ln a is kept for dL/dp.
        abs_c = np.abs(c)                                                   # (K, M)
        dead = abs_c <= TINY                                                # (K, M) bool
        if not dead.any():
            dead = None                 # no blank patch, nothing to mask: skip the masking below
        # The clamp, with TINY as an (M,) row: numpy's SIMD maximum loop wants two arrays.
        np.maximum(abs_c, np.full(m, TINY, dtype=self.dtype), out=abs_c)
        log_c = np.log(abs_c, out=abs_c)                                    # (K, M)  ln a
        e = np.multiply(log_c, (p - 1)[:, None])                            # (K, M)
        np.exp(e, out=e)                                                    # (K, M)  a**(p-1)
        y = np.multiply(c, e)                                               # (K, M)
        # Where the clamp acted, c * e is 0 for c == 0, as it should be. A cosine with
        # 0 < |c| <= TINY (patches of ~1e-30 scale) must give sign(c) * TINY**p instead:
        # two counts find out whether there is any, and those few entries are set directly.
        tiny = None
        if dead is not None and np.count_nonzero(dead) != np.count_nonzero(c == 0):
            tiny = np.nonzero(dead & (c != 0))                              # (kernels, patches)
            y[tiny] = np.sign(c[tiny]) * TINY ** p[tiny[0]]

        self._cache = dict(x_shape=x.shape, xp_shape=xp.shape, xp=xp, cols=cols,
                           w_hat=w_hat, norm_w=norm_w, root_s=root_s, norm_s=norm_s,
                           dead=dead, tiny=tiny, log_c=log_c, e=e, y=y)
        # (K, M) is (K, N, Ho, Wo) in memory: hand it on as an (N, K, Ho, Wo) view.
        out = y.reshape(k, n, h_out, w_out).transpose(1, 0, 2, 3)           # (N, K, Ho, Wo)
        self._y_shape = out.shape
        return out

    # ------------------------------------------------------------------------------------
    def backward(self, dy):
        """dy: (N, K, H_out, W_out)  ->  dx: (N, C, H, W); fills grads["w"], ["p"], ["q"]."""
        dy = self._check_grad(dy)
        cc = self._cache
        kh, kw = self.kernel_size
        st = self.stride
        k = self.out_channels
        p = self.params["p"]
        y, e, log_c, dead = cc["y"], cc["e"], cc["log_c"], cc["dead"]
        norm_s, root_s, norm_w, w_hat = cc["norm_s"], cc["root_s"], cc["norm_w"], cc["w_hat"]
        # dL/dy, kernel-major like the forward arrays (no copy when dy has that memory order)
        g = dy.transpose(1, 0, 2, 3).reshape(k, -1)                         # (K, M)

        # y = sign(c) * a**p = c * e,   a = max(|c|, TINY),   e = a**(p-1)
        #   dy/dp = y * ln a
        #   dy/dc = p * a**(p-1) = p * e   (even in c: no sign), and 0 where the clamp acted
        gy = np.multiply(g, y)                                              # (K, M)
        self.grads["p"][...] = np.einsum("km,km->k", gy, log_c)
        v = np.multiply(g, e)                                               # (K, M)
        if dead is not None:
            np.copyto(v, 0, where=dead)                                     # dL/dc = p * v

        # c = (s . w_hat) / norm_s,   norm_s = sqrt(s.s + eps) + q
        #   dc/d(s . w_hat) = 1 / norm_s
        #   dc/d norm_s     = -c / norm_s
        v /= norm_s                                                         # (K, M)
        # So dL/d(s . w_hat) = p * v. The factor p is one number per kernel: it is applied to
        # the small (K, D) matrices below rather than to the (K, M) array (one pass less).
        #
        # dL/dnorm_s = -sum_k (dL/dc * c) / norm_s, and dL/dc * c = g * p * e * c = p * g * y
        # wherever the clamp did not act (elsewhere dL/dc = 0 and y = 0): a matrix-vector
        # product with gy from above, instead of another (K, M) pass and keeping c around.
        gc_c = p @ gy                                                       # (M,)  sum over K
        if cc["tiny"] is not None:      # entries with 0 < |c| <= TINY: y != 0 but dL/dc = 0
            kk, mm = cc["tiny"]
            np.subtract.at(gc_c, mm, p[kk] * gy[kk, mm])
        dl_dnorm_s = -gc_c / norm_s                                         # (M,)

        # norm_s = sqrt(s.s + eps) + q  ->  dnorm_s/dq = 1, summed over every patch
        self.grads["q"][0] = dl_dnorm_s.sum()

        # w_hat = w / norm_w, norm_w = sqrt(w.w + eps)
        #   dL/dw = (dL/dw_hat - w_hat * (w_hat . dL/dw_hat)) / norm_w
        dw_hat = (v @ cc["cols"]) * p[:, None]                              # (K, D)  BLAS
        radial = np.einsum("kd,kd->k", w_hat, dw_hat)                       # (K,)
        dw_rows = (dw_hat - w_hat * radial[:, None]) / norm_w[:, None]      # (K, D)
        self.grads["w"][...] = dw_rows.reshape(k, kh, kw, self.in_channels).transpose(0, 3, 1, 2)

        if not self.needs_input_grad:
            return None

        # dL/ds has two parts:
        #   through the dot product:  sum_k p[k] v[k, m] w_hat[k], i.e. the rows of
        #                             v.T @ (p * w_hat), added back onto the pixels (col2im)
        #   through norm_s:           dL/dnorm_s * s / sqrt(s.s + eps)
        # The second is a per-patch scalar times the patch itself, so on the pixels it becomes
        # x * (box-sum adjoint of those scalars): no patch-sized array needed.
        dxp = col2im_of_product(v.T, w_hat * p[:, None], cc["xp_shape"], kh, kw, st)  # BLAS
        n, hp, wp, _ = cc["xp_shape"]
        h_out = (hp - kh) // st + 1
        w_out = (wp - kw) // st + 1
        r = (dl_dnorm_s / root_s).reshape(n, h_out, w_out)                  # (N, Ho, Wo)
        spread = box_sum_adjoint(r, (hp, wp), kh, kw, st)                   # (N, Hp, Wp)
        dxp += cc["xp"] * spread[..., None]

        pad = self.padding
        _, _, h, w = cc["x_shape"]
        dx = dxp[:, pad:pad + h, pad:pad + w, :]                            # (N, H, W, C)
        return dx.transpose(0, 3, 1, 2)                                     # (N, C, H, W) view
