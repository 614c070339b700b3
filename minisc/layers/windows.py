"""Sliding windows, the machinery shared by SharpCosSim2D and Conv2D.

Both layers look at the input through a kh x kw window that slides with a given stride. Here
that window is a *read-only strided view*: no pixel is copied until the layer asks for the
patch matrix, and the backward pass adds gradients back onto the pixels with one vectorized
add per kernel offset (kh * kw adds, never a loop over pixels or batch items).

Memory layout. The public API is channels-first, (N, C, H, W). Inside the window code the
channel axis is moved last, (N, H, W, C): then one patch row is kh*kw runs of C contiguous
numbers, and the patch matrix comes out in the row order (n, h_out, w_out) that a matrix
product wants. ``pad_nhwc`` makes that channels-last copy (padded, if asked).

Groups. With ``groups=G`` the C input channels are split into G groups of C/G neighbours, and
each kernel looks at the channels of one group only (G = C is "depthwise"). The patch matrix
then has one (M, D) block per group, D = kh * kw * C/G: shape (G, M, D). One batched matrix
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


def pad_nhwc(x_nhwc, padding):
    """Zero-pad the two spatial axes of a channels-last array.

    x_nhwc: (N, H, W, C)  ->  (N, H + 2*padding, W + 2*padding, C), C-contiguous.
    Without padding the input is returned as is when it is already contiguous (no copy).
    """
    if padding == 0:
        return np.ascontiguousarray(x_nhwc)
    n, h, w, c = x_nhwc.shape
    xp = np.zeros((n, h + 2 * padding, w + 2 * padding, c), dtype=x_nhwc.dtype)
    xp[:, padding:padding + h, padding:padding + w, :] = x_nhwc
    return xp


def windows(xp, kh, kw, stride):
    """All kh x kw windows of a padded channels-last array, as a read-only view.

    xp: (N, Hp, Wp, C), C-contiguous  ->  view of shape (N, H_out, W_out, kh, kw, C)

    ``view[n, i, j, a, b, c] == xp[n, i*stride + a, j*stride + b, c]``. The view shares memory
    with ``xp``: stepping one output row moves ``stride`` input rows (stride sH*stride), one
    kernel row moves one input row (stride sH), and so on.
    """
    if not xp.flags.c_contiguous:
        raise ValueError("windows() needs a C-contiguous array; call pad_nhwc first")
    n, hp, wp, c = xp.shape
    h_out = (hp - kh) // stride + 1
    w_out = (wp - kw) // stride + 1
    s_n, s_h, s_w, s_c = xp.strides
    return as_strided(
        xp,
        shape=(n, h_out, w_out, kh, kw, c),
        strides=(s_n, s_h * stride, s_w * stride, s_h, s_w, s_c),
        writeable=False,
    )


def patch_matrix(xp, kh, kw, stride, groups=1):
    """The im2col matrix, one block per group: one row per window position, one column per
    window element.

    xp: (N, Hp, Wp, C)  ->  (G, N * H_out * W_out, kh * kw * C/G), a fresh copy.
    Rows are ordered (n, i, j); columns (a, b, c), i.e. kernel row, kernel column, channel of
    the group.

    Memory order. Copying is fastest when the innermost copied run is long. With C/G channels
    a patch row is kh runs of kw*C/G numbers: long enough for C/G >= 2 or so, but only kw
    numbers for one channel per group (a grey image, or a depthwise layer). So for C/G == 1 the
    *transpose* of each block is built, one row per window element (runs of W_out neighbouring
    pixels), and its transposed view is returned. The numbers are the same; matrix products
    (``@``) accept either order without copying.
    """
    view = windows(xp, kh, kw, stride)                               # (N, Ho, Wo, kh, kw, C)
    n, h_out, w_out = view.shape[:3]
    c_g = xp.shape[3] // groups
    m, d = n * h_out * w_out, kh * kw * c_g
    view = view.reshape(n, h_out, w_out, kh, kw, groups, c_g)        # split C into (G, C/G)
    if c_g == 1:
        # (G, kh, kw, C/G, N, Ho, Wo) -> (G, D, M), C-contiguous; its transposed view is (G, M, D)
        return view.transpose(5, 3, 4, 6, 0, 1, 2).reshape(groups, d, m).transpose(0, 2, 1)
    return view.transpose(5, 0, 1, 2, 3, 4, 6).reshape(groups, m, d)


def col2im(dcols, padded_shape, kh, kw, stride):
    """The adjoint of patch_matrix: add every patch-row gradient back onto its pixels.

    dcols: (G, N * H_out * W_out, kh * kw * C/G)  ->  (N, Hp, Wp, C)

    A pixel that sits in several windows collects the sum of their gradients. One vectorized
    add per kernel offset (a, b): the (a, b) column block of every patch lands on the strided
    slice of pixels ``[a : a + stride*H_out : stride, b : b + stride*W_out : stride]``.
    """
    n, hp, wp, c = padded_shape
    groups = dcols.shape[0]
    h_out = (hp - kh) // stride + 1
    w_out = (wp - kw) // stride + 1
    # (G, N, Ho, Wo, kh, kw, C/G) -> (N, Ho, Wo, kh, kw, G, C/G): patches in pixel order
    d7 = dcols.reshape(groups, n, h_out, w_out, kh, kw, c // groups).transpose(1, 2, 3, 4, 5, 0, 6)
    dxp = np.zeros(padded_shape, dtype=dcols.dtype)
    dxp_g = dxp.reshape(n, hp, wp, groups, c // groups)                # a view: channels by group
    for a in range(kh):
        for b in range(kw):
            dxp_g[:, a:a + stride * h_out:stride, b:b + stride * w_out:stride] += d7[:, :, :, a, b]
    return dxp


def col2im_of_product(left, right, padded_shape, kh, kw, stride):
    """``col2im(left @ right, ...)``, without ever holding the (G, M, D) product.

    left: (G, M, K/G), right: (G, K/G, kh * kw * C/G) with columns ordered (a, b, c)
    ->  (N, Hp, Wp, C)

    The backward pass of a layer built on patch_matrix gets the patch gradients as such a
    product (dL/dcols = dL/d(output) @ kernels). Instead of forming all of it (M * D numbers
    per group) and then reading it back, take one kernel offset (a, b) at a time: the gradient
    of every patch's (a, b) pixel is ``left @ right[..., (a, b) columns]``, added onto its
    pixels at once. Same products, same adds, kh * kw of each.
    """
    n, hp, wp, c = padded_shape
    groups, m, _ = left.shape
    c_g = c // groups
    h_out = (hp - kh) // stride + 1
    w_out = (wp - kw) // stride + 1
    right_blocks = right.reshape(groups, right.shape[1], kh * kw, c_g)  # (G, K/G, kh*kw, C/G)
    block = np.empty((groups, m, c_g), dtype=np.result_type(left, right))  # reused buffer
    dxp = np.zeros(padded_shape, dtype=block.dtype)
    dxp_g = dxp.reshape(n, hp, wp, groups, c_g)                        # a view: channels by group
    for a in range(kh):
        for b in range(kw):
            np.matmul(left, right_blocks[:, :, a * kw + b, :], out=block)   # (G, M, C/G)
            dxp_g[:, a:a + stride * h_out:stride, b:b + stride * w_out:stride] += \
                block.reshape(groups, n, h_out, w_out, c_g).transpose(1, 2, 3, 0, 4)
    return dxp


def box_sum(plane, kh, kw, stride):
    """Sum of every kh x kw window of a stack of single-channel images.

    plane: (..., Hp, Wp)  ->  (..., H_out, W_out). Used for the patch norms: the squared length
    of a patch is ``box_sum((x**2).sum(channels))``, with no patch matrix needed.

    A box sum is separable: add kw shifted columns, then kh shifted rows of that. The same
    numbers are added, in kh + kw vectorized adds instead of kh * kw.
    """
    hp, wp = plane.shape[-2:]
    h_out = (hp - kh) // stride + 1
    w_out = (wp - kw) // stride + 1
    rows = plane[..., 0:stride * w_out:stride].copy()                   # (..., Hp, W_out)
    for b in range(1, kw):
        rows += plane[..., b:b + stride * w_out:stride]
    out = rows[..., 0:stride * h_out:stride, :].copy()                  # (..., H_out, W_out)
    for a in range(1, kh):
        out += rows[..., a:a + stride * h_out:stride, :]
    return out


def box_sum_adjoint(r, padded_hw, kh, kw, stride):
    """The adjoint of box_sum: spread each window's value back onto all of its pixels.

    r: (..., H_out, W_out)  ->  (..., Hp, Wp). Separable like box_sum: spread down the kh
    rows, then across the kw columns.
    """
    h_out, w_out = r.shape[-2:]
    hp, wp = padded_hw
    rows = np.zeros(r.shape[:-2] + (hp, w_out), dtype=r.dtype)          # (..., Hp, W_out)
    for a in range(kh):
        rows[..., a:a + stride * h_out:stride, :] += r
    out = np.zeros(r.shape[:-2] + (hp, wp), dtype=r.dtype)
    for b in range(kw):
        out[..., b:b + stride * w_out:stride] += rows
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
