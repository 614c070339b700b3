"""Conv2D and ReLU: the ordinary ConvNet building blocks, for head-to-head comparisons.

Conv2D shares its window machinery with SharpCosSim2D (``windows.py``): the only difference in
the forward pass is what happens after the dot product. Put the two files side by side to see
exactly what SCS adds.
"""

import numpy as np

from .base import Layer, as_rng
from .windows import WindowedLayer, check_window_fits, col2im_of_product, output_size, pad_batch_last, patch_matrix


class Conv2D(WindowedLayer):
    """y[n, k, i, j] = sum over (c, a, b) of w[k, c, a, b] * x_pad[n, c, i*s + a, j*s + b] + b[k].

    groups=G splits channels and kernels into G groups, as in SharpCosSim2D: kernel k sees only
    the C/G input channels of its group (the sum over c above runs over those).
    params["w"]: (K, C/G, kh, kw), He-uniform;  params["b"]: (K,), zeros.
    forward:  x (N, C, H, W) -> y (N, K, H_out, W_out);  backward: the reverse.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, groups=1,
                 dtype=np.float32, rng=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, groups, dtype)
        kh, kw = self.kernel_size
        c_g = self.in_channels // self.groups
        limit = np.sqrt(6.0 / (c_g * kh * kw))                 # He-uniform, for ReLU networks
        w = as_rng(rng).uniform(-limit, limit, size=(self.out_channels, c_g, kh, kw))
        self.params = {"w": w.astype(self.dtype), "b": np.zeros(self.out_channels, dtype=self.dtype)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def forward(self, x):
        x = self._check_input(x, ndim=4, channels=self.in_channels)
        kh, kw = self.kernel_size
        n, c, h, w = x.shape
        check_window_fits(self, h, w)
        G, K = self.groups, self.out_channels
        w_rows = self.params["w"].reshape(G, K // G, -1)                    # (G, K/G, D)
        xp = pad_batch_last(x, self.padding)                                # (C, Hp, Wp, N)
        cols = patch_matrix(xp, kh, kw, self.stride, G)                     # (G, D, M)
        y = w_rows @ cols + self.params["b"].reshape(G, K // G, 1)          # (G, K/G, M)  BLAS
        h_out = output_size(h, kh, self.stride, self.padding)
        w_out = output_size(w, kw, self.stride, self.padding)
        self._cache = (x.shape, xp.shape, cols, w_rows)
        return y.reshape(K, h_out, w_out, n).transpose(3, 0, 1, 2)         # (N, K, Ho, Wo) view

    def backward(self, dL_dy):
        dL_dy = self._check_grad(dL_dy)
        x_shape, xp_shape, cols, w_rows = self._cache
        kh, kw = self.kernel_size
        G, K = self.groups, self.out_channels
        dL_dy = dL_dy.transpose(1, 2, 3, 0).reshape(G, K // G, -1)          # (G, K/G, M)
        # y = w_rows @ cols + b
        #   dL/dw_rows = dL/dy @ cols.T,  dL/db = sum over positions of dL/dy,  dL/dcols = w_rows.T @ dL/dy
        dL_dw = dL_dy @ cols.transpose(0, 2, 1)                             # (G, K/G, D)
        self.grads["w"][...] = dL_dw.reshape(self.params["w"].shape)
        self.grads["b"][...] = dL_dy.sum(axis=2).reshape(K)
        if not self.needs_input_grad:
            return None
        # dL/dcols = w_rows.T @ dL/dy, added back onto the pixels one row of kernel offsets at a time
        dL_dxp = col2im_of_product(w_rows, dL_dy, xp_shape, kh, kw, self.stride)  # (C, Hp, Wp, N)
        pad = self.padding
        _, _, h, w = x_shape
        return dL_dxp[:, pad:pad + h, pad:pad + w, :].transpose(3, 0, 1, 2)


class ReLU(Layer):
    """y = max(x, 0), elementwise; any shape."""

    def __str__(self):
        return "ReLU()"

    def forward(self, x):
        x = self._check_input(x)
        self._cache = x > 0                                  # the mask of positive inputs
        return np.where(self._cache, x, 0).astype(self.dtype, copy=False)

    def backward(self, dL_dy):
        dL_dy = self._check_grad(dL_dy)
        # y = max(x, 0)  ->  dy/dx = 1 where x > 0, else 0
        return np.where(self._cache, dL_dy, 0).astype(self.dtype, copy=False)
