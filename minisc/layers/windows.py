"""Sliding windows, the machinery shared by SharpCosSim2D and Conv2D.

Both layers look at the input through a kh x kw window that slides with a given stride. Here
that window is a *read-only strided view*: no pixel is copied until the layer asks for the
patch matrix, and the backward pass adds gradients back onto the pixels with one vectorized
add per kernel offset (kh * kw adds, never a loop over pixels or batch items).

Memory layout. The public API is channels-first, (N, C, H, W). Inside the window code the
channel axis is moved last, (N, H, W, C): then one patch row is kh*kw runs of C contiguous
numbers, and the patch matrix comes out in the row order (n, h_out, w_out) that a matrix
product wants. ``x.transpose(0, 2, 3, 1)`` is free when x is a channels-first view of
channels-last memory; otherwise ``pad_nhwc`` makes the one transposing copy.

Layers hand arrays to each other as channels-first *views* of whatever memory order they
computed in, so no layer pays for a copy only to satisfy the API: SharpCosSim2D's outputs
are views of kernel-major (K, N, H_out, W_out) memory, its input gradients views of
channels-last memory, and the pools keep the memory order of their input.

Speed notes. For a single-channel image ``patch_matrix`` builds the transpose (see there);
``col2im_of_product`` forms the patch gradients one kernel offset at a time and adds each
onto the pixels while it is in the cache; ``box_sum`` is separable.
"""

import numpy as np
from numpy.lib.stride_tricks import as_strided


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


def patch_matrix(xp, kh, kw, stride):
    """The im2col matrix: one row per window position, one column per window element.

    xp: (N, Hp, Wp, C)  ->  (N * H_out * W_out, kh * kw * C), a fresh copy.
    Rows are ordered (n, i, j); columns (a, b, c), i.e. kernel row, kernel column, channel.

    Memory order. Copying is fastest when the innermost copied run is long. With C channels a
    patch row is kh runs of kw*C numbers: long enough for C >= 2 or so, but only kw numbers
    for a single-channel image. So for C == 1 the *transpose* is built, one row per window
    element (runs of W_out neighbouring pixels), and its transposed view is returned: an
    F-contiguous (M, D) matrix. The numbers are the same; matrix products (``@``) accept
    either order without copying.
    """
    view = windows(xp, kh, kw, stride)
    n, h_out, w_out = view.shape[:3]
    m, d = n * h_out * w_out, kh * kw * xp.shape[3]
    if xp.shape[3] == 1:
        # (kh, kw, C, N, H_out, W_out) -> (D, M), C-contiguous; .T is the (M, D) matrix
        return view.transpose(3, 4, 5, 0, 1, 2).reshape(d, m).T
    return view.reshape(m, d)


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


def col2im_of_product(left, right, padded_shape, kh, kw, stride):
    """``col2im(left @ right, ...)``, without ever holding the (M, D) product.

    left: (M, K), right: (K, kh * kw * C) with columns ordered (a, b, c)  ->  (N, Hp, Wp, C)

    The backward pass of a layer built on patch_matrix gets the patch gradients as such a
    product (dL/dcols = dL/d(output) @ kernels). Instead of forming all of it (M * D numbers)
    and then reading it back in runs of C, take one kernel offset at a time: the (M, C)
    gradient of every patch's (a, b) pixel is ``left @ right[:, (a, b) columns]``, and it is
    added onto its pixels right away, while it is still in the cache. Same products, same adds.
    """
    n, hp, wp, c = padded_shape
    h_out = (hp - kh) // stride + 1
    w_out = (wp - kw) // stride + 1
    right_blocks = right.reshape(right.shape[0], kh * kw, c)            # (K, kh*kw, C) view
    block = np.empty((left.shape[0], c), dtype=np.result_type(left, right))  # (M, C) reused
    dxp = np.zeros(padded_shape, dtype=block.dtype)
    for a in range(kh):
        for b in range(kw):
            np.matmul(left, right_blocks[:, a * kw + b, :], out=block)
            dxp[:, a:a + stride * h_out:stride, b:b + stride * w_out:stride, :] += \
                block.reshape(n, h_out, w_out, c)
    return dxp


def box_sum(plane, kh, kw, stride):
    """Sum of every kh x kw window of a single-channel image stack.

    plane: (N, Hp, Wp)  ->  (N, H_out, W_out). Used for the patch norms: the squared length of
    a patch is ``box_sum((x**2).sum(channels))``, with no patch matrix needed.

    A box sum is separable: add kw shifted columns, then kh shifted rows of that. The same
    numbers are added, in kh + kw vectorized adds instead of kh * kw.
    """
    n, hp, wp = plane.shape
    h_out = (hp - kh) // stride + 1
    w_out = (wp - kw) // stride + 1
    rows = plane[:, :, 0:stride * w_out:stride].copy()                  # (N, Hp, W_out)
    for b in range(1, kw):
        rows += plane[:, :, b:b + stride * w_out:stride]
    out = rows[:, 0:stride * h_out:stride].copy()                       # (N, H_out, W_out)
    for a in range(1, kh):
        out += rows[:, a:a + stride * h_out:stride]
    return out


def box_sum_adjoint(r, padded_hw, kh, kw, stride):
    """The adjoint of box_sum: spread each window's value back onto all of its pixels.

    r: (N, H_out, W_out)  ->  (N, Hp, Wp). Separable like box_sum: spread down the kh rows,
    then across the kw columns.
    """
    n, h_out, w_out = r.shape
    hp, wp = padded_hw
    rows = np.zeros((n, hp, w_out), dtype=r.dtype)                      # (N, Hp, W_out)
    for a in range(kh):
        rows[:, a:a + stride * h_out:stride] += r
    out = np.zeros((n, hp, wp), dtype=r.dtype)
    for b in range(kw):
        out[:, :, b:b + stride * w_out:stride] += rows
    return out
