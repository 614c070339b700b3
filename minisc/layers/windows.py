"""Sliding windows, the machinery shared by SharpCosSim2D and Conv2D.

Both layers look at the input through a kh x kw window that slides with a given stride. Here
that window is a *read-only strided view*: no pixel is copied until the layer asks for the
patch matrix, and the backward pass adds gradients back onto the pixels with one vectorized
add per kernel offset (kh * kw adds, never a loop over pixels or batch items).

Memory layout. The public API is channels-first, (N, C, H, W). Inside the window code the
channel axis is moved last, (N, H, W, C): then one patch row is kh*kw runs of C contiguous
numbers, the patch matrix comes out in the row order (n, h_out, w_out) that a matrix product
wants, and the layer output (N*H_out*W_out, K) is already channels-last. Layers hand arrays
to each other as channels-first *views* of channels-last memory, so no transposing copy is
made between layers; ``x.transpose(0, 2, 3, 1)`` on such a view costs nothing.
"""

import numpy as np
from numpy.lib.stride_tricks import as_strided


def output_size(size, kernel, stride, padding):
    """Number of window positions along one axis: floor((size + 2*padding - kernel) / stride) + 1."""
    return (size + 2 * padding - kernel) // stride + 1


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


def patch_matrix(xp, kh, kw, stride):
    """The im2col matrix: one row per window position, one column per window element.

    xp: (N, Hp, Wp, C)  ->  (N * H_out * W_out, kh * kw * C), a fresh C-contiguous copy.
    Rows are ordered (n, i, j); columns (a, b, c), i.e. kernel row, kernel column, channel.
    """
    view = windows(xp, kh, kw, stride)
    n, h_out, w_out = view.shape[:3]
    return view.reshape(n * h_out * w_out, kh * kw * xp.shape[3])


def col2im(dcols, padded_shape, kh, kw, stride):
    """The adjoint of patch_matrix: add every patch-row gradient back onto its pixels.

    dcols: (N * H_out * W_out, kh * kw * C)  ->  (N, Hp, Wp, C)

    A pixel that sits in several windows collects the sum of their gradients. One vectorized
    add per kernel offset (a, b): the (a, b) column block of every patch lands on the strided
    slice of pixels ``[a : a + stride*H_out : stride, b : b + stride*W_out : stride]``.
    """
    n, hp, wp, c = padded_shape
    h_out = (hp - kh) // stride + 1
    w_out = (wp - kw) // stride + 1
    d6 = dcols.reshape(n, h_out, w_out, kh, kw, c)
    dxp = np.zeros(padded_shape, dtype=dcols.dtype)
    for a in range(kh):
        for b in range(kw):
            dxp[:, a:a + stride * h_out:stride, b:b + stride * w_out:stride, :] += d6[:, :, :, a, b, :]
    return dxp


def box_sum(plane, kh, kw, stride):
    """Sum of every kh x kw window of a single-channel image stack.

    plane: (N, Hp, Wp)  ->  (N, H_out, W_out). Used for the patch norms: the squared length of
    a patch is ``box_sum((x**2).sum(channels))``, with no patch matrix needed.
    """
    n, hp, wp = plane.shape
    h_out = (hp - kh) // stride + 1
    w_out = (wp - kw) // stride + 1
    out = np.zeros((n, h_out, w_out), dtype=plane.dtype)
    for a in range(kh):
        for b in range(kw):
            out += plane[:, a:a + stride * h_out:stride, b:b + stride * w_out:stride]
    return out


def box_sum_adjoint(r, padded_hw, kh, kw, stride):
    """The adjoint of box_sum: spread each window's value back onto all of its pixels.

    r: (N, H_out, W_out)  ->  (N, Hp, Wp)
    """
    n, h_out, w_out = r.shape
    hp, wp = padded_hw
    out = np.zeros((n, hp, wp), dtype=r.dtype)
    for a in range(kh):
        for b in range(kw):
            out[:, a:a + stride * h_out:stride, b:b + stride * w_out:stride] += r
    return out
