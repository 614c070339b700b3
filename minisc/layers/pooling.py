"""Pooling: MaxAbsPool2D (the partner of SCS) and the ordinary MaxPool2D.

SCS outputs are signed: -0.9 means "the opposite of my kernel, clearly", as informative as
+0.9. Max pooling would throw every negative response away, so SCS networks use *max-abs*
pooling: in each window keep the element with the largest absolute value, sign and all.

Both pools use non-overlapping k x k windows (stride = pool size). Rows and columns that do
not fill a whole window are dropped, as in common max pooling; with ``ceil_mode=True`` they
are kept instead, as windows that run past the edge and pool only what they cover (a 7x7 map
pools to 4x4, not 3x3). That is done by padding the input up to whole windows with a value
that never wins: 0 for max-abs pooling (|0| beats nothing), the most negative float for max
pooling. The first position of every window is always a real element, and ties go to it.

How it is vectorized: each window has k*k positions (a, b). The elements at position (a, b)
of *all* windows form the strided slice ``x[:, :, a::k, b::k]`` (trimmed to whole windows).
We walk over the k*k positions (4 for k = 2), keeping a running winner per window and the
index of the position it came from. The backward pass sends each gradient to that position.
Ties go to the first position in row-major order, so results are deterministic.

Speed notes. The walk works on any memory layout and keeps the input's, so whatever order a
layer computed in is never copied into another. Every choice is made with arithmetic on masks
(``y * ~better + candidate * better``) rather than ``np.where`` or ``np.copyto(..., where=)``,
which branch on every element and run several times slower on random masks.
"""

import numpy as np

from .base import Layer, pair


class _WindowPool(Layer):
    """Shared machinery: pick one element per window by a score, route gradients back to it."""

    fill = 0.0      # what padding holds in ceil mode: a value that never wins a window

    def __init__(self, pool_size=2, ceil_mode=False, dtype=np.float32):
        super().__init__(dtype)
        self.pool_size = pair(pool_size, "pool_size", type(self).__name__)
        self.ceil_mode = bool(ceil_mode)

    def config(self):
        return dict(pool_size=list(self.pool_size), ceil_mode=self.ceil_mode)

    def _out_hw(self, h, w):
        kh, kw = self.pool_size
        if self.ceil_mode:
            return -(-h // kh), -(-w // kw)           # ceil(h / kh), ceil(w / kw)
        return h // kh, w // kw

    def output_shape(self, input_shape):
        c, h, w = input_shape
        return (c, *self._out_hw(h, w))

    def __str__(self):
        kh, kw = self.pool_size
        return f"{type(self).__name__}({kh}x{kw}{', ceil' if self.ceil_mode else ''})"

    def _score(self, v):
        raise NotImplementedError

    def forward(self, x):
        """x: (N, C, H, W)  ->  y: (N, C, Ho, Wo), Ho = H // kh (or ceil(H / kh) in ceil mode)."""
        x = self._check_input(x, ndim=4)
        self._cache = None                  # let the last step's arrays go before new ones
        kh, kw = self.pool_size
        n, c, h, w = x.shape
        ho, wo = self._out_hw(h, w)
        if ho == 0 or wo == 0:
            raise ValueError(f"{self}: input {h}x{w} is smaller than one {kh}x{kw} window")
        if ho * kh > h or wo * kw > w:      # ceil mode: pad up to whole windows
            padded = np.full_like(x, self.fill, shape=(n, c, ho * kh, wo * kw))  # x's memory order
            padded[:, :, :h, :w] = x
            x = padded

        def part(i):  # position i = (a, b) of every window: (N, C, Ho, Wo) strided view
            a, b = divmod(i, kw)
            return x[:, :, a:a + kh * ho:kh, b:b + kw * wo:kw]

        y = part(0).copy(order="K")                    # running winner, in x's memory order
        best = self._score(y)                          # its score
        arg = np.zeros_like(y, dtype=np.uint8 if kh * kw < 256 else np.int32)
        cand = np.empty_like(y)                        # buffers shared by all positions
        better = np.empty_like(y, dtype=bool)
        worse = np.empty_like(better)
        for i in range(1, kh * kw):
            # One strided read of position i; every operation after it runs on contiguous memory.
            np.copyto(cand, part(i))
            score = self._score(cand)
            np.greater(score, best, out=better)        # strict: ties keep the earlier one
            # y <- cand where better: exact, since one of the two products is always 0 * finite
            np.logical_not(better, out=worse)
            y *= worse
            cand *= better
            y += cand
            np.maximum(best, score, out=best)
            # The winner is the position of the last strict improvement, which is also the
            # largest i that improved: a running maximum of i * better.
            np.maximum(arg, better * arg.dtype.type(i), out=arg)
        # winners, and the (possibly padded) input: dx takes its shape and memory layout
        self._cache = dict(arg=arg, x_shape=(h, w), x_layout=x)
        return y

    def backward(self, dL_dy):
        """dL_dy: (N, C, Ho, Wo)  ->  dL_dx: (N, C, H, W), zero except at each window's winner."""
        dL_dy = self._check_grad(dL_dy)
        arg, x_layout = self._cache["arg"], self._cache["x_layout"]
        h, w = self._cache["x_shape"]
        kh, kw = self.pool_size
        ho, wo = dL_dy.shape[2], dL_dy.shape[3]
        # y[n, c, i, j] = x[n, c, i*kh + a, j*kw + b] for the winning (a, b):
        #   dL/dx at the winner = dL/dy, everywhere else 0.
        # The kh*kw slices below cover every element of whole windows, so dx needs zeros
        # only where rows or columns were dropped. dx takes the input's memory layout.
        trimmed = ho * kh < x_layout.shape[2] or wo * kw < x_layout.shape[3]
        dx = (np.zeros_like if trimmed else np.empty_like)(x_layout)
        # dL_dy may come in another memory order (the next layer's choice); one copy into the
        # order of the stored winners keeps the kh*kw multiplies below on contiguous runs.
        g = np.empty_like(arg, dtype=dx.dtype)
        g[...] = dL_dy
        for i in range(kh * kw):
            a, b = divmod(i, kw)
            np.multiply(g, arg == i, out=dx[:, :, a:a + kh * ho:kh, b:b + kw * wo:kw])
        return dx[:, :, :h, :w]                        # without the ceil-mode padding


class MaxAbsPool2D(_WindowPool):
    """Keep, in each pool_size window, the element of largest |x|, sign kept.

    pool_size: int or (kh, kw); windows do not overlap.
    ceil_mode: False drops rows and columns that do not fill a window; True keeps them.
    forward:  (N, C, H, W) -> (N, C, H // kh, W // kw) (ceil in ceil mode);  backward: the reverse.
    """

    def _score(self, v):
        return np.abs(v)


class MaxPool2D(_WindowPool):
    """Keep, in each pool_size window, the largest element (ordinary max pooling).

    pool_size: int or (kh, kw); windows do not overlap.
    ceil_mode: False drops rows and columns that do not fill a window; True keeps them.
    forward:  (N, C, H, W) -> (N, C, H // kh, W // kw) (ceil in ceil mode);  backward: the reverse.
    """

    @property
    def fill(self):
        return np.finfo(self.dtype).min     # loses every comparison, and 0 * it is 0, not NaN

    def _score(self, v):
        return v.copy()
