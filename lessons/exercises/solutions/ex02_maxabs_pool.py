"""Reference solution to exercise 2: MaxAbsPool, forward and backward (loop-free)."""

import numpy as np


def _windows_as_rows(a, size, ho, wo):
    """(N, C, >= Ho*size, >= Wo*size) -> (N, C, Ho, Wo, size*size), one row per window.

    Row order inside a window is reading order: (0, 0), (0, 1), ..., (1, 0), ...
    """
    n, c = a.shape[:2]
    a = a[:, :, :ho * size, :wo * size]                   # drop partial windows
    a = a.reshape(n, c, ho, size, wo, size)               # axes: n, c, i, a, j, b
    a = a.transpose(0, 1, 2, 4, 3, 5)                     # axes: n, c, i, j, a, b
    return a.reshape(n, c, ho, wo, size * size)


def maxabs_pool_forward(x, size=2):
    """x (N, C, H, W) -> (y (N, C, H // size, W // size), cache)."""
    n, c, h, w = x.shape
    ho, wo = h // size, w // size
    rows = _windows_as_rows(x, size, ho, wo)              # (N, C, Ho, Wo, size*size)
    winner = np.argmax(np.abs(rows), axis=-1)             # first largest |x|: ties to the first
    y = np.take_along_axis(rows, winner[..., None], axis=-1)[..., 0]
    return y, (x.shape, size, winner)


def maxabs_pool_backward(dy, cache):
    """dy (N, C, Ho, Wo) -> dx (N, C, H, W): dy at each window's winner, 0 elsewhere."""
    x_shape, size, winner = cache
    n, c, ho, wo = dy.shape
    # y[n, c, i, j] = x at the winner of window (i, j), so dL/dx there is dL/dy[n, c, i, j].
    rows = np.zeros((n, c, ho, wo, size * size), dtype=dy.dtype)
    np.put_along_axis(rows, winner[..., None], dy[..., None], axis=-1)
    # Undo _windows_as_rows: (N, C, Ho, Wo, a, b) -> (N, C, Ho, a, Wo, b) -> pixels.
    block = rows.reshape(n, c, ho, wo, size, size).transpose(0, 1, 2, 4, 3, 5)
    dx = np.zeros(x_shape, dtype=dy.dtype)                # dropped rows/columns stay 0
    dx[:, :, :ho * size, :wo * size] = block.reshape(n, c, ho * size, wo * size)
    return dx
