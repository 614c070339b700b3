"""Conv2D and ReLU: the ordinary ConvNet building blocks, for head-to-head comparisons.

Conv2D shares its window machinery with SharpCosSim2D (``windows.py``): the only difference in
the forward pass is what happens after the dot product. Put the two files side by side to see
exactly what SCS adds.
"""

import numpy as np

from .base import Layer, as_rng, pair
from .windows import check_window_args, check_window_fits, col2im, output_size, pad_nhwc, patch_matrix


class Conv2D(Layer):
    """y[n, k, i, j] = sum over (c, a, b) of w[k, c, a, b] * x_pad[n, c, i*s + a, j*s + b] + b[k].

    params["w"]: (K, C, kh, kw), He-uniform;  params["b"]: (K,), zeros.
    forward:  x (N, C, H, W) -> y (N, K, H_out, W_out);  backward: the reverse.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dtype=np.float32, rng=None):
        super().__init__(dtype)
        name = type(self).__name__
        check_window_args(name, in_channels=in_channels, out_channels=out_channels, stride=stride,
                          padding=padding)
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = pair(kernel_size, "kernel_size", name)
        self.stride, self.padding = int(stride), int(padding)
        kh, kw = self.kernel_size
        limit = np.sqrt(6.0 / (in_channels * kh * kw))       # He-uniform, for ReLU networks
        w = as_rng(rng).uniform(-limit, limit, size=(out_channels, in_channels, kh, kw))
        self.params = {"w": w.astype(self.dtype), "b": np.zeros(out_channels, dtype=self.dtype)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def config(self):
        return dict(in_channels=self.in_channels, out_channels=self.out_channels,
                    kernel_size=list(self.kernel_size), stride=self.stride, padding=self.padding)

    def output_shape(self, input_shape):
        c, h, w = input_shape
        kh, kw = self.kernel_size
        return (self.out_channels, output_size(h, kh, self.stride, self.padding),
                output_size(w, kw, self.stride, self.padding))

    def __str__(self):
        kh, kw = self.kernel_size
        return (f"Conv2D({self.in_channels}->{self.out_channels}, {kh}x{kw}, "
                f"stride {self.stride}, padding {self.padding})")

    def forward(self, x):
        x = self._check_input(x, ndim=4, channels=self.in_channels)
        kh, kw = self.kernel_size
        n, _, h, w = x.shape
        check_window_fits(self, h, w)
        k = self.out_channels
        w_rows = self.params["w"].transpose(0, 2, 3, 1).reshape(k, -1)      # (K, D)
        xp = pad_nhwc(x.transpose(0, 2, 3, 1), self.padding)               # (N, Hp, Wp, C)
        cols = patch_matrix(xp, kh, kw, self.stride)                        # (M, D)
        y = cols @ w_rows.T + self.params["b"]                              # (M, K)
        h_out = output_size(h, kh, self.stride, self.padding)
        w_out = output_size(w, kw, self.stride, self.padding)
        self._cache = (x.shape, xp.shape, cols, w_rows)
        out = y.reshape(n, h_out, w_out, k).transpose(0, 3, 1, 2)
        self._y_shape = out.shape
        return out

    def backward(self, dy):
        dy = self._check_grad(dy)
        x_shape, xp_shape, cols, w_rows = self._cache
        kh, kw = self.kernel_size
        k = self.out_channels
        g = dy.transpose(0, 2, 3, 1).reshape(-1, k)                         # (M, K)
        # y = cols @ w_rows.T + b
        #   dL/dw_rows = g.T @ cols,  dL/db = sum_m g,  dL/dcols = g @ w_rows
        dw_rows = g.T @ cols                                                # (K, D)
        self.grads["w"][...] = dw_rows.reshape(k, kh, kw, self.in_channels).transpose(0, 3, 1, 2)
        self.grads["b"][...] = g.sum(axis=0)
        if not self.needs_input_grad:
            return None
        dxp = col2im(g @ w_rows, xp_shape, kh, kw, self.stride)             # (N, Hp, Wp, C)
        pad = self.padding
        _, _, h, w = x_shape
        return dxp[:, pad:pad + h, pad:pad + w, :].transpose(0, 3, 1, 2)


class ReLU(Layer):
    """y = max(x, 0), elementwise; any shape."""

    def __str__(self):
        return "ReLU()"

    def forward(self, x):
        x = self._check_input(x)
        self._mask = x > 0
        self._y_shape = x.shape
        return np.where(self._mask, x, 0).astype(self.dtype, copy=False)

    def backward(self, dy):
        dy = self._check_grad(dy)
        # y = max(x, 0)  ->  dy/dx = 1 where x > 0, else 0
        return np.where(self._mask, dy, 0).astype(self.dtype, copy=False)
