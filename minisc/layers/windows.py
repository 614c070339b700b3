"""Sliding windows, the machinery shared by SharpCosSim2D and Conv2D.

Both layers look at the input through a kh x kw window that slides with a given stride. Here
that window is a *read-only strided view*: no pixel is copied until the layer asks for the
patch matrix, and the backward pass adds gradients back onto the pixels with one vectorized
add per kernel offset (kh * kw adds, never a loop over pixels or batch items).

Memory layout. The public API is channels-first, (N, C, H, W). Inside the window code the
batch axis goes last, (C, H, W, N), "batch-last": the N images' pixels at one position sit
side by side. In that order

- a window offset (a, b) of every patch of a row is one run of W_out * N neighbouring numbers
  (stride 1), however few channels or pixels a map has: the patch matrix is copied in long
  runs, and the backward pass adds its gradients back in long runs;
- a kernel of a grouped or depthwise layer reads its own channels as one contiguous block;
- the patch matrix has one row per window element (channel, kernel row, kernel column) and
  one column per window position (i, j, n), so ``kernels @ patches`` is a plain matrix
  product whose result *is* a (K, H_out, W_out, N) array: the next layer finds its input
  already batch-last. A layer returns a channels-first view of that memory
  (``y.transpose(3, 0, 1, 2)``); every minisc layer accepts any memory order.

Groups. With ``groups=G`` the C input channels are split into G groups of C/G neighbours, and
each kernel looks at the channels of one group only (G = C is "depthwise"). The patch matrix
then has one (D, M) block per group, D = C/G * kh * kw: shape (G, D, M). One batched matrix
product (``np.matmul`` over the leading G axis) does all groups at once; G = 1 is the
ordinary, ungrouped layer.
"""

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .base import Layer, pair


def output_size(size, kernel, stride, padding):
    """Number of window positions along one axis: floor((size + 2*padding - kernel) / stride) + 1."""
    return (size + 2 * padding - kernel) // stride + 1


def check_window_args(who, **ints):
    """Validate the integer arguments of a windowed layer: channels >= 1, stride >= 1, padding >= 0."""
    for label, v in ints.items():
        lo = 0 if label == "padding" else 1
        if not isinstance(v, (int, np.integer)) or v < lo:
            raise ValueError(f"{who}: {label} must be an integer >= {lo}, got {v!r}")


def check_window_fits(layer, h, w):
    """A ValueError naming the layer when its kernel does not fit into the padded h x w input."""
    kh, kw = layer.kernel_size
    pad = layer.padding
    if h + 2 * pad < kh or w + 2 * pad < kw:
        raise ValueError(
            f"{layer}: kernel {kh}x{kw} is larger than the padded input {h + 2 * pad}x{w + 2 * pad} "
            f"(input {h}x{w}, padding {pad}); use a smaller kernel or more padding")


def pad_batch_last(x, padding):
    """An (N, C, H, W) array as a padded, batch-last, C-contiguous copy (or view).

    x: (N, C, H, W)  ->  (C, H + 2*padding, W + 2*padding, N), zeros around.
    Without padding, an input that already is a channels-first view of batch-last memory
    (every SCS output is) is returned as that memory, with no copy.
    """
    x_bl = x.transpose(1, 2, 3, 0)                                      # (C, H, W, N) view
    if padding == 0:
        return np.ascontiguousarray(x_bl)
    c, h, w, n = x_bl.shape
    xp = np.zeros((c, h + 2 * padding, w + 2 * padding, n), dtype=x.dtype)
    xp[:, padding:padding + h, padding:padding + w, :] = x_bl
    return xp


def windows(xp, kh, kw, stride):
    """All kh x kw windows of a padded batch-last array, as a read-only view.

    xp: (C, Hp, Wp, N), C-contiguous  ->  view of shape (C, kh, kw, H_out, W_out, N)

    ``view[c, a, b, i, j, n] == xp[c, i*stride + a, j*stride + b, n]``. The view shares memory
    with ``xp``: stepping one output row moves ``stride`` input rows (stride sH*stride), one
    kernel row moves one input row (sH), one kernel column one pixel (sW), one image sN.
    """
    if not xp.flags.c_contiguous:
        raise ValueError("windows() needs a C-contiguous array; call pad_batch_last first")
    c, hp, wp, n = xp.shape
    h_out = (hp - kh) // stride + 1
    w_out = (wp - kw) // stride + 1
    s_c, s_h, s_w, s_n = xp.strides
    return as_strided(
        xp,
        shape=(c, kh, kw, h_out, w_out, n),
        strides=(s_c, s_h, s_w, s_h * stride, s_w * stride, s_n),
        writeable=False,
    )


def patch_matrix(xp, kh, kw, stride, groups=1):
    """The im2col matrix, one block per group: one row per window element, one column per
    window position.

    xp: (C, Hp, Wp, N)  ->  (G, C/G * kh * kw, H_out * W_out * N), a fresh C-contiguous copy.
    Rows are ordered (c, a, b) (channel of the group, kernel row, kernel column), the order of
    a kernel's weights ``w[k].reshape(-1)``; columns (i, j, n), the order of the outputs.
    With stride 1 the copy reads runs of W_out * N neighbouring numbers.
    """
    view = windows(xp, kh, kw, stride)                               # (C, kh, kw, Ho, Wo, N)
    c, _, _, h_out, w_out, n = view.shape
    return view.reshape(groups, c // groups * kh * kw, h_out * w_out * n)


def col2im(dcols, padded_shape, kh, kw, stride):
    """The adjoint of patch_matrix: add every patch gradient back onto its pixels.

    dcols: (G, C/G * kh * kw, H_out * W_out * N)  ->  (C, Hp, Wp, N)

    A pixel that sits in several windows collects the sum of their gradients. One vectorized
    add per kernel offset (a, b): the (a, b) rows of every channel land on the strided slice of
    pixels ``[a : a + stride*H_out : stride, b : b + stride*W_out : stride]``.
    """
    c, hp, wp, n = padded_shape
    h_out = (hp - kh) // stride + 1
    w_out = (wp - kw) // stride + 1
    d6 = dcols.reshape(c, kh, kw, h_out, w_out, n)                      # rows (c, a, b) unfolded
    dxp = np.zeros(padded_shape, dtype=dcols.dtype)
    for a in range(kh):
        for b in range(kw):
            dxp[:, a:a + stride * h_out:stride, b:b + stride * w_out:stride] += d6[:, a, b]
    return dxp


def col2im_of_product(w_rows, d_out, padded_shape, kh, kw, stride):
    """``col2im(w_rows.T @ d_out, ...)`` per group, without ever holding the whole product.

    w_rows: (G, K/G, C/G * kh * kw), rows as in patch_matrix; d_out: (G, K/G, M)
    ->  (C, Hp, Wp, N)

    The backward pass of a layer built on patch_matrix gets the patch gradients as such a
    product (dL/dpatches = kernels.T @ dL/doutputs). Instead of forming all of it (D * M
    numbers per group) and then reading it back, take one row a of kernel offsets at a time:
    the gradient of every patch's pixels in row a, at every column offset b, is
    ``w_rows[..., (c, a, every b) rows].T @ d_out``, and each of its kw slices, one per b, is
    added onto its pixels at once. The same products and adds as col2im of the whole product,
    in kh products of C/G * kw rows each, which BLAS runs faster than kh * kw products of C/G
    rows (benchmarks/README.md). (A depthwise layer takes one offset at a time, below.)
    """
    c, hp, wp, n = padded_shape
    groups, k_g, m = d_out.shape
    h_out = (hp - kh) // stride + 1
    w_out = (wp - kw) // stride + 1
    w_blocks = w_rows.reshape(groups, k_g, c // groups, kh, kw)         # (G, K/G, C/G, kh, kw)
    dxp = np.zeros(padded_shape, dtype=np.result_type(w_rows, d_out))
    # A matrix product runs better wide: take a whole row of kernel offsets (kw of them) at a
    # time. With one kernel per group (depthwise) the product has an inner size of 1, and a
    # broadcast multiply computes the same numbers much faster; that one runs slower on the
    # wider blocks of a whole row, so it takes one offset at a time.
    width = kw if k_g > 1 else 1
    for a in range(kh):
        for b0 in range(0, kw, width):
            w_ab = w_blocks[:, :, :, a, b0:b0 + width].reshape(groups, k_g, -1).transpose(0, 2, 1)
            #                                                           (G, C/G * width, K/G)
            block = w_ab * d_out if k_g == 1 else w_ab @ d_out          # (G, C/G * width, M)
            block = block.reshape(c, width, h_out, w_out, n)            # rows (c, b) unfolded
            for j, b in enumerate(range(b0, b0 + width)):
                dxp[:, a:a + stride * h_out:stride, b:b + stride * w_out:stride] += block[:, j]
    return dxp


def box_sum(plane, kh, kw, stride):
    """Sum of every kh x kw window of a stack of single-channel, batch-last images.

    plane: (..., Hp, Wp, N)  ->  (..., H_out, W_out, N). Used for the patch norms: the squared
    length of a patch is ``box_sum((x**2).sum(channels of the group))``, with no patch matrix.

    A box sum is separable: add kw shifted columns, then kh shifted rows of that. The same
    numbers are added, in kh + kw vectorized adds instead of kh * kw.
    """
    hp, wp = plane.shape[-3:-1]
    h_out = (hp - kh) // stride + 1
    w_out = (wp - kw) // stride + 1
    rows = plane[..., 0:stride * w_out:stride, :].copy()                # (..., Hp, W_out, N)
    for b in range(1, kw):
        rows += plane[..., b:b + stride * w_out:stride, :]
    out = rows[..., 0:stride * h_out:stride, :, :].copy()               # (..., H_out, W_out, N)
    for a in range(1, kh):
        out += rows[..., a:a + stride * h_out:stride, :, :]
    return out


def box_sum_adjoint(r, padded_hw, kh, kw, stride):
    """The adjoint of box_sum: spread each window's value back onto all of its pixels.

    r: (..., H_out, W_out, N)  ->  (..., Hp, Wp, N). Separable like box_sum: spread down the kh
    rows, then across the kw columns.
    """
    h_out, w_out, n = r.shape[-3:]
    hp, wp = padded_hw
    rows = np.zeros(r.shape[:-3] + (hp, w_out, n), dtype=r.dtype)       # (..., Hp, W_out, N)
    for a in range(kh):
        rows[..., a:a + stride * h_out:stride, :, :] += r
    out = np.zeros(r.shape[:-3] + (hp, wp, n), dtype=r.dtype)
    for b in range(kw):
        out[..., b:b + stride * w_out:stride, :] += rows
    return out


class WindowedLayer(Layer):
    """What every sliding-window layer shares: channels, kernel size, stride, padding, groups.

    Subclasses (SharpCosSim2D, Conv2D, your own) call ``super().__init__(in_channels,
    out_channels, kernel_size, stride, padding, groups, dtype)`` and get the argument checks,
    ``config()``, ``output_shape()`` and a readable ``__str__``; they add their own parameters.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, groups=1,
                 dtype=np.float32):
        super().__init__(dtype)
        name = type(self).__name__
        check_window_args(name, in_channels=in_channels, out_channels=out_channels, stride=stride,
                          padding=padding, groups=groups)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: groups={groups} must divide both in_channels ({in_channels}) "
                             f"and out_channels ({out_channels})")
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.kernel_size = pair(kernel_size, "kernel_size", name)
        self.stride = int(stride)
        self.padding = int(padding)
        self.groups = int(groups)

    def config(self):
        return dict(in_channels=self.in_channels, out_channels=self.out_channels,
                    kernel_size=list(self.kernel_size), stride=self.stride,
                    padding=self.padding, groups=self.groups)

    def output_shape(self, input_shape):
        c, h, w = input_shape
        if c != self.in_channels:
            raise ValueError(f"{self} expects {self.in_channels} input channels, gets {c}")
        kh, kw = self.kernel_size
        return (self.out_channels, output_size(h, kh, self.stride, self.padding),
                output_size(w, kw, self.stride, self.padding))

    def __str__(self):
        kh, kw = self.kernel_size
        text = (f"{type(self).__name__}({self.in_channels}->{self.out_channels}, {kh}x{kw}, "
                f"stride {self.stride}, padding {self.padding}")
        if self.groups > 1:
            text += ", depthwise" if self.groups == self.in_channels == self.out_channels \
                else f", groups {self.groups}"
        return text + ")"
