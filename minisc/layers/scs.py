"""Sharpened Cosine Similarity, the layer minisc is about.

Sharpened cosine similarity (SCS) was proposed by Brandon Rohrer as an alternative to
convolution (https://github.com/brohrer/sharpened-cosine-similarity). Like a convolution it
slides a kernel over the image; unlike a convolution it scores each patch by the *cosine* of
the angle between patch and kernel, so a faint stroke and a bold stroke of the same shape score
the same, and then *sharpens* that cosine with a learned exponent.

For one patch s (the C*kh*kw numbers under the window) and one kernel w (lesson 4 derives
every line of the backward pass from these five):

    dot    = s . w
    norm_s = sqrt(s . s + eps) + q         q > 0: learned noise floor (one per layer)
    norm_w = sqrt(w . w + eps)
    c      = dot / (norm_s * norm_w)       |c| < 1 because q > 0
    y      = sign(c) * |c|**p              p > 0: learned, one per kernel

and, when the layer is built with ``alpha_init``, one more learned number per layer scales
every output: y = alpha * sign(c) * |c|**p.

Three numerical guards, each explained here once:

- eps sits *inside* the square roots: d sqrt(u)/du is infinite at u = 0, which is every blank
  patch of an MNIST background, and 0 * inf = NaN in the backward pass.
- Cosines with |c| <= TINY (1e-30) count as exactly 0: y = 0, dy/dc = 0 and dy/dp = 0 there
  (``_abs_power`` below). Blank patches give c == 0 exactly, where |c|**(p-1) and ln|c| are
  infinite for p < 1; dy/dc = 0 is the slope of y for p > 1 and the usual choice of SCS
  implementations for p <= 1. No real image gives 0 < |c| <= 1e-30; there the true y, at most
  1e-30**p, is rounded to 0.
- Squares of float32 pixels overflow beyond ~1e19, and the cosine of a patch should not
  depend on its scale: where a patch norm comes out infinite, the norms are summed again in
  float64 (``_patch_roots``). Every other input gets them in its own dtype, at half the cost.

Groups. With ``groups=G`` the C input channels and K kernels are split into G groups; kernel k
of group g sees only the C/G channels of group g, and the patch norm covers those channels
only. ``groups = in_channels = out_channels`` is a *depthwise* layer: one 2-D kernel per
channel (Raphael Pisoni's depthwise SCS). Every array below then carries a leading group axis
G; with G = 1 it has length 1 and the layer is the plain one.

Pooling inside the layer. An SCS layer is almost always followed by max-abs pooling, which
keeps the output of largest |y| in each window. Since |y| = |alpha| * |c|**p grows with |c|
(p > 0), that is the output of largest |c|: built with ``pool_size``, the layer pools the
*cosines* first and sharpens only the winners. The numbers are those of SharpCosSim2D followed
by MaxAbsPool2D(pool_size, ceil_mode), while ln and exp, the costly part, run on a quarter of
the elements (2x2 windows). One exception, rare and within float32 precision: two cosines of
a window that differ in their last bits can sharpen to the same |y|, a tie the separate pool
gives to the window's first element, while this layer keeps the one of larger |c|. In the
backward pass the gradients reach the cosines through the pool's own backward (each winner's
gradient goes back to its position, the rest get 0), and every line after that is the one of
the unpooled layer.

Parameters
    params["w"]: (K, C/G, kh, kw)   the kernels
    params["p"]: (K,)               sharpening exponents, kept in [P_MIN, P_MAX]
    params["q"]: (1,)               noise floor, kept >= Q_MIN
    params["alpha"]: (1,)           output scale, only when built with alpha_init
``p`` and ``q`` are stored as themselves (not log-transformed), so you can print and plot them.
After each optimizer step, ``constrain()`` clips them back into range. A layer built with
``log_steps`` asks the optimizer to step ln p and ln q instead of p and q (the way the
published SCS records learn them; see ``Optimizer._log_update``); what is stored stays p and q.
"""

import numbers

import numpy as np

from .base import as_rng
from .pooling import MaxAbsPool2D
from .windows import (
    WindowedLayer,
    box_sum,
    box_sum_adjoint,
    check_window_fits,
    col2im_of_product,
    output_size,
    pad_batch_last,
    patch_matrix,
)

EPS = 1e-12      # inside the square roots of both norms
TINY = 1e-30     # cosines with |c| <= TINY count as 0
P_MIN = 0.1      # smallest sharpening exponent allowed after an update
P_MAX = 10.0     # largest: beyond ~10, |c|**p underflows and the kernel stops learning
Q_MIN = 1e-4     # q must stay positive for |c| < 1 and a finite blank-patch response


def _abs_power(c, exponent):
    """|c|**exponent, set to 0 wherever |c| <= TINY (those cosines count as 0), and ln|c|.

    c: (G, K/G, M), exponent: (G, K/G, 1)  ->  two arrays shaped like c. ln|c| is taken of
    max(|c|, TINY), so it is finite everywhere (every use of it is multiplied by a 0 there).
    """
    abs_c = np.abs(c)
    live = abs_c > TINY
    log_abs_c = np.log(np.maximum(abs_c, TINY, out=abs_c), out=abs_c)  # ln max(|c|, TINY), in place
    c_pow = np.multiply(exponent, log_abs_c)
    np.exp(c_pow, out=c_pow)                                            # |c|**exponent
    c_pow *= live                                                       # 0 where |c| <= TINY
    return c_pow, log_abs_c


def _patch_roots(xg, kh, kw, stride, dtype):
    """sqrt(s . s + eps) of every patch, without a patch matrix.

    xg: (G, C/G, Hp, Wp, N), the padded input by group  ->  (G, 1, M) in ``dtype``.
    s . s is a box sum of x**2 over each window and the group's channels. The sums are taken
    in ``dtype``; if one overflows (float32 pixels beyond ~1e19), all are taken again in float64.
    """
    for acc in ((dtype,) if dtype == np.float64 else (dtype, np.float64)):
        with np.errstate(over="ignore"):        # an overflow is caught below, not warned about
            x2 = np.einsum("gchwn,gchwn->ghwn", xg, xg, dtype=acc)         # (G, Hp, Wp, N)
            root = np.sqrt(box_sum(x2, kh, kw, stride) + EPS)               # (G, Ho, Wo, N)
        if np.isfinite(root).all():
            break
    return root.reshape(len(xg), 1, -1).astype(dtype, copy=False)


class SharpCosSim2D(WindowedLayer):
    """Sharpened cosine similarity over sliding windows.

    Parameters
    ----------
    in_channels, out_channels : int
        C (input channels) and K (number of kernels).
    kernel_size : int or (kh, kw)
    stride : int, default 1
    padding : int, default 0
        Zeros added on every side of both spatial axes.
    groups : int, default 1
        G, dividing both C and K. Kernel k sees only the C/G input channels of its group.
    p_init : float, default 2.0
        Starting exponent for every kernel.
    q_init : float, default 0.1
        Starting noise floor.
    alpha_init : float or None, default None
        If a number, the layer learns one output scale alpha, starting there.
    init : "glorot" (default) or "lecun"
        How the kernels are drawn: Glorot/Xavier uniform, limit sqrt(6 / (fan_in + fan_out)),
        or LeCun uniform, limit sqrt(3 / fan_in), the choice of the published SCS records.
    pool_size : int, (kh, kw) or None, default None
        If given, the layer ends with max-abs pooling over windows of this size, computed before
        the sharpening (see "Pooling inside the layer" above).
    ceil_mode : bool, default False
        With pool_size: keep the windows that run past the edge, as MaxAbsPool2D's ceil_mode.
    log_steps : dict or None, default None
        Parameters the optimizer steps in log space, each with a learning-rate factor, for
        example {"p": 0.2, "q": 1 / 0.3}: see ``Layer.log_steps`` in base.py. Only p and q
        (always positive) may be listed.
    dtype : np.float32 (default) or np.float64
    rng : None, int seed or numpy Generator, for the kernel initialisation.

    Shapes
    ------
    forward:  x (N, C, H, W)  ->  y (N, K, H_out, W_out),
              H_out = (H + 2*padding - kh) // stride + 1, likewise W_out; with pool_size, the
              pooled size of that, as MaxAbsPool2D gives it.
    backward: dL_dy (N, K, H_out, W_out)  ->  dL_dx (N, C, H, W), and fills ``grads``.
    Inside, M = N * H_out * W_out patches, D = kh * kw * C/G numbers per patch.
    """

    valid_ranges = {"p": (P_MIN, P_MAX), "q": (Q_MIN, np.inf)}

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, groups=1,
                 p_init=2.0, q_init=0.1, alpha_init=None, init="glorot", log_steps=None,
                 pool_size=None, ceil_mode=False, dtype=np.float32, rng=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, groups, dtype)
        name = type(self).__name__
        if not P_MIN <= p_init <= P_MAX:
            raise ValueError(f"{name}: p_init must be in [{P_MIN}, {P_MAX}], got {p_init}")
        if not q_init >= Q_MIN:
            raise ValueError(f"{name}: q_init must be >= {Q_MIN}, got {q_init}")
        if alpha_init is not None and not np.isfinite(alpha_init):
            raise ValueError(f"{name}: alpha_init must be a finite number or None, got {alpha_init}")
        if init not in ("glorot", "lecun"):
            raise ValueError(f"{name}: init must be 'glorot' or 'lecun', got {init!r}")
        log_steps = dict(log_steps or {})
        for key, factor in log_steps.items():
            if key not in ("p", "q"):
                raise ValueError(f"{name}: log_steps may list 'p' and 'q' only, got {key!r}")
            if not (isinstance(factor, numbers.Real) and np.isfinite(factor) and factor > 0):
                raise ValueError(f"{name}: log_steps[{key!r}] must be a number > 0, got {factor!r}")
        self.init = init
        self.log_steps = {key: float(factor) for key, factor in log_steps.items()}
        self.p_init = float(p_init)
        self.q_init = float(q_init)
        self.alpha_init = None if alpha_init is None else float(alpha_init)
        # the pool at the end, if any: its forward and backward are used as they are
        self.pool = None if pool_size is None else MaxAbsPool2D(pool_size, ceil_mode, dtype=dtype)

        kh, kw = self.kernel_size
        c_g = self.in_channels // self.groups
        # The cosine ignores the kernel's length, but the optimizer does not: Adam's steps are
        # ~lr in size, so the kernel's scale sets how fast it turns.
        fan_in = c_g * kh * kw
        fan_out = self.out_channels // self.groups * kh * kw
        if init == "glorot":
            limit = np.sqrt(6.0 / (fan_in + fan_out))
        else:
            limit = np.sqrt(3.0 / fan_in)
        w = as_rng(rng).uniform(-limit, limit, size=(self.out_channels, c_g, kh, kw))
        self.params = {
            "w": w.astype(self.dtype),
            "p": np.full(self.out_channels, p_init, dtype=self.dtype),
            "q": np.full(1, q_init, dtype=self.dtype),
        }
        if self.alpha_init is not None:
            self.params["alpha"] = np.full(1, self.alpha_init, dtype=self.dtype)
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    # ------------------------------------------------------------------------------------
    def config(self):
        config = dict(super().config(), p_init=self.p_init, q_init=self.q_init,
                      alpha_init=self.alpha_init, init=self.init, log_steps=dict(self.log_steps))
        if self.pool is not None:       # only then, so files saved before the option still match
            config.update(self.pool.config())
        return config

    def output_shape(self, input_shape):
        shape = super().output_shape(input_shape)
        return shape if self.pool is None else self.pool.output_shape(shape)

    def replica(self):
        twin = super().replica()
        if self.pool is not None:
            twin.pool = self.pool.replica()     # its own cache of winners
        return twin

    def astype(self, dtype):
        super().astype(dtype)
        if self.pool is not None:
            self.pool.astype(dtype)
        return self

    def __str__(self):
        text = super().__str__()
        if self.pool is None:
            return text
        kh, kw = self.pool.pool_size
        return f"{text[:-1]}, max-abs pool {kh}x{kw}{', ceil' if self.pool.ceil_mode else ''})"

    def constrain(self):
        np.clip(self.params["p"], P_MIN, P_MAX, out=self.params["p"])
        np.maximum(self.params["q"], Q_MIN, out=self.params["q"])

    # ------------------------------------------------------------------------------------
    def forward(self, x):
        """x: (N, C, H, W)  ->  y: (N, K, H_out, W_out)."""
        x = self._check_input(x, ndim=4, channels=self.in_channels)
        self._cache = None              # let the last step's arrays go before making new ones
        n, _, h_in, w_in = x.shape
        check_window_fits(self, h_in, w_in)
        kh, kw = self.kernel_size
        G, st = self.groups, self.stride
        h_out = output_size(h_in, kh, st, self.padding)
        w_out = output_size(w_in, kw, st, self.padding)
        p = self.params["p"].reshape(G, -1, 1)                              # (G, K/G, 1)
        q = self.params["q"][0]

        # Kernels as rows of D = C/G * kh * kw weights, one block of K/G rows per group.
        w_rows = self.params["w"].reshape(G, self.out_channels // G, -1)    # (G, K/G, D)
        # Patches as columns: pad, take the strided window view, copy (see windows.py).
        xp = pad_batch_last(x, self.padding)                                # (C, Hp, Wp, N)
        s = patch_matrix(xp, kh, kw, st, G)                                 # (G, D, M)

        # dot = s . w                 every patch with every kernel of its group: BLAS
        dot = w_rows @ s                                                    # (G, K/G, M)
        # norm_s = sqrt(s . s + eps) + q
        xg = xp.reshape((G, -1) + xp.shape[1:])                             # (G, C/G, Hp, Wp, N)
        root_s = _patch_roots(xg, kh, kw, st, self.dtype)                   # (G, 1, M)
        norm_s = root_s + q                                                 # (G, 1, M)
        # norm_w = sqrt(w . w + eps)
        root_w = np.sqrt(np.einsum("gkd,gkd->gk", w_rows, w_rows) + EPS)    # (G, K/G)
        norm_w = root_w[..., None]                                          # (G, K/G, 1)
        # c = dot / (norm_s * norm_w), divided in place: dot is not needed again
        c = dot
        c /= norm_w
        c /= norm_s                                                         # (G, K/G, M)
        cosines = c                     # every cosine, before any pooling: backward needs them
        if self.pool is not None:
            # max-abs pool the cosines: the winner of |c| is the winner of |y| (see the top).
            # c's memory is (K, Ho, Wo, N); the pool gets it as an (N, K, Ho, Wo) view and
            # answers in the same batch-last order, so the reshape back copies nothing.
            try:
                c = self.pool.forward(c.reshape(self.out_channels, h_out, w_out, n).transpose(3, 0, 1, 2))
            except ValueError as err:       # e.g. an output smaller than one pool window
                raise ValueError(f"{self}: {err}") from None
            h_out, w_out = c.shape[2:]
            c = c.transpose(1, 2, 3, 0).reshape(G, self.out_channels // G, -1)  # (G, K/G, M pooled)
        # y = sign(c) * |c|**p  =  c * |c|**(p-1)   (the same number, without a sign pass)
        c_pow, log_abs_c = _abs_power(c, p - 1)                             # (G, K/G, M) each
        y = c * c_pow                                                       # (G, K/G, M)
        out = y
        if "alpha" in self.params:
            out = self.params["alpha"][0] * y                               # (G, K/G, M)

        self._cache = dict(x_shape=x.shape, xp=xp, s=s, w_rows=w_rows, root_s=root_s,
                           norm_s=norm_s, root_w=root_w, norm_w=norm_w, c=cosines, c_pow=c_pow,
                           log_abs_c=log_abs_c, y=y)
        if self.pool is not None and not self.training:
            self.pool._cache = None             # evaluation mode: nothing kept, the pool's winners neither
        # (G, K/G, M) is (K, Ho, Wo, N) in memory: hand it on as an (N, K, Ho, Wo) view.
        return out.reshape(self.out_channels, h_out, w_out, n).transpose(3, 0, 1, 2)

    # ------------------------------------------------------------------------------------
    def backward(self, dL_dy):
        """dL_dy: (N, K, H_out, W_out)  ->  dL_dx: (N, C, H, W); fills grads (w, p, q, alpha)."""
        dL_dy = self._check_grad(dL_dy)
        cache = self._cache
        s, y = cache["s"], cache["y"]
        norm_s, norm_w, root_s, root_w = cache["norm_s"], cache["norm_w"], cache["root_s"], cache["root_w"]
        kh, kw = self.kernel_size
        G, K = self.groups, self.out_channels
        p = self.params["p"].reshape(G, -1, 1)                              # (G, K/G, 1)
        # dL/dy with one row per kernel and one column per patch, like the forward arrays (no
        # copy when it comes as a view of batch-last memory, as the pools pass it on)
        dL_dy = dL_dy.transpose(1, 2, 3, 0).reshape(G, K // G, -1)          # (G, K/G, M)

        if "alpha" in self.params:
            # out = alpha * y   ->   dL/dalpha = sum dL/dout * y,   dL/dy = alpha * dL/dout
            # (with alpha, what came in above is dL/dout; from here on dL_dy is dL/dy)
            self.grads["alpha"][0] = np.vdot(dL_dy, y)
            dL_dy = self.params["alpha"][0] * dL_dy                         # (G, K/G, M)

        # y = sign(c) * |c|**p
        #   dy/dp = y * ln|c|                      dL/dp = sum over patches of dL/dy * dy/dp
        #   dy/dc = p * |c|**(p-1)                 (even in c: the sign cancels)
        dL_dy_y = dL_dy * y                                                 # (G, K/G, M)
        self.grads["p"][...] = np.einsum("gkm,gkm->gk", dL_dy_y, cache["log_abs_c"]).reshape(K)
        dL_dc = dL_dy * cache["c_pow"]                                      # (G, K/G, M)
        dL_dc *= p                                                  # dL/dc = dL/dy * p |c|**(p-1)
        if self.pool is not None:
            # from the pooled cosines back to all of them: 0 except at each window's winner
            dL_dc = self._unpool(dL_dc)                                     # (G, K/G, M)

        # c = dot / (norm_s * norm_w)
        #   dc/ddot    = 1 / (norm_s * norm_w)
        #   dc/dnorm_s = -c / norm_s               summed over the kernels that saw the patch
        #   dc/dnorm_w = -c / norm_w               summed over the patches the kernel saw
        dL_ddot = dL_dc / norm_w
        dL_ddot /= norm_s                                           # dL/ddot = dL/dc / (norm_s * norm_w)
        dL_dc_c = dL_dc * cache["c"]                                # dL/dc * c, which both sums need
        dL_dnorm_s = -dL_dc_c.sum(axis=1, keepdims=True) / norm_s            # (G, 1, M)
        dL_dnorm_w = -dL_dc_c.sum(axis=2, keepdims=True) / norm_w            # (G, K/G, 1)

        # norm_s = sqrt(s . s + eps) + q   ->   dnorm_s/dq = 1, for every patch
        self.grads["q"][0] = dL_dnorm_s.sum()

        # dot = s . w,  norm_w = sqrt(w . w + eps)
        #   dL/dw = sum over patches of dL/ddot * s  +  dL/dnorm_w * w / sqrt(w . w + eps)
        w_rows = cache["w_rows"]                                            # (G, K/G, D)
        dL_dw = dL_ddot @ s.transpose(0, 2, 1) + dL_dnorm_w * w_rows / root_w[..., None]
        #                                                                   (G, K/G, D)  BLAS
        self.grads["w"][...] = dL_dw.reshape(self.params["w"].shape)

        if not self.needs_input_grad:
            return None

        # dot = s . w,  norm_s = sqrt(s . s + eps) + q
        #   dL/ds = sum over kernels of dL/ddot * w  +  dL/dnorm_s * s / sqrt(s . s + eps)
        # and dL/dx adds each patch's dL/ds back onto the pixels it came from. Two steps:
        # - the first term is the product w.T @ dL/ddot; col2im_of_product adds it onto the
        #   pixels one row of kernel offsets at a time (kh products, kh * kw strided adds);
        xp = cache["xp"]
        dL_dxp = col2im_of_product(w_rows, dL_ddot, xp.shape, kh, kw, self.stride)  # (C, Hp, Wp, N)
        # - the second is a per-patch number times the patch itself, so on the pixels it is
        #   x times the box-sum adjoint of those numbers (each pixel collects its windows').
        _, hp, wp, n = xp.shape
        h_out, w_out = output_size(hp, kh, self.stride, 0), output_size(wp, kw, self.stride, 0)
        per_patch = (dL_dnorm_s / root_s).reshape(G, h_out, w_out, n)       # (G, Ho, Wo, N)
        spread = box_sum_adjoint(per_patch, (hp, wp), kh, kw, self.stride)   # (G, Hp, Wp, N)
        by_group = (G, -1, hp, wp, n)                                        # (G, C/G, Hp, Wp, N)
        dL_dxp.reshape(by_group)[...] += xp.reshape(by_group) * spread[:, None]

        pad = self.padding
        _, _, h_in, w_in = cache["x_shape"]
        dL_dx = dL_dxp[:, pad:pad + h_in, pad:pad + w_in, :]                # (C, H, W, N)
        return dL_dx.transpose(3, 0, 1, 2)                                  # (N, C, H, W) view

    def _unpool(self, d_pooled):
        """(G, K/G, M pooled) -> (G, K/G, M): the pool's backward, in the layer's array layout.

        Both ends are batch-last memory, (K, Ho, Wo, N), seen by the pool as (N, K, Ho, Wo)
        views; the result is copied only when ceil mode padded the cosines (the pool then
        returns a trimmed view)."""
        k, n = self.out_channels, self._y_shape[0]
        d = self.pool.backward(d_pooled.reshape((k,) + self._y_shape[2:] + (n,)).transpose(3, 0, 1, 2))
        return d.transpose(1, 2, 3, 0).reshape(self.groups, k // self.groups, -1)
