"""Slow, obviously-correct loop versions of minisc's vectorized kernels.

Each function here does one patch, one kernel, one pixel at a time, following the formulas
as they are written on paper. They exist for two reasons: the tests compare the fast layers
against them, and you can read them first to see *what* is computed before reading *how* the
layers compute it quickly. Never use them for training: they are hundreds of times slower.

All functions take and return channels-first arrays, like the layers.
"""

import numpy as np

from .layers.scs import EPS, TINY


def _pad(x, padding):
    """(N, C, H, W) -> (N, C, H + 2*padding, W + 2*padding), zeros around."""
    return np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))


def _out_size(size, k, stride, padding):
    return (size + 2 * padding - k) // stride + 1


# ---------------------------------------------------------------------------------------------
# Sharpened cosine similarity
def _scs_patch(xp, w, q, n, k, i, j, stride, groups):
    """The pieces of one patch and one kernel: (s, norm_s, root_s, norm_w, c)."""
    n_k, c_g, kh, kw = w.shape
    g = k // (n_k // groups)                          # the group of kernel k
    s = xp[n, g * c_g:(g + 1) * c_g, i * stride:i * stride + kh, j * stride:j * stride + kw]
    root_s = np.sqrt(np.sum(s * s) + EPS)
    norm_s = root_s + q
    norm_w = np.sqrt(np.sum(w[k] * w[k]) + EPS)
    c = np.sum(s * w[k]) / (norm_s * norm_w)
    return s, norm_s, root_s, norm_w, c


def scs_forward(x, w, p, q, stride=1, padding=0, groups=1, alpha=1.0):
    """x (N, C, H, W), w (K, C/groups, kh, kw), p (K,), q scalar -> y (N, K, H_out, W_out).

    y = alpha * sign(c) * |c|**p, and y = 0 where |c| <= TINY (those cosines count as 0).
    """
    n_batch, _, h, wd = x.shape
    n_k, _, kh, kw = w.shape
    xp = _pad(x, padding)
    h_out, w_out = _out_size(h, kh, stride, padding), _out_size(wd, kw, stride, padding)
    y = np.zeros((n_batch, n_k, h_out, w_out), dtype=x.dtype)
    q = float(np.asarray(q).reshape(-1)[0])
    for n in range(n_batch):
        for k in range(n_k):
            for i in range(h_out):
                for j in range(w_out):
                    c = _scs_patch(xp, w, q, n, k, i, j, stride, groups)[4]
                    if abs(c) > TINY:
                        y[n, k, i, j] = alpha * np.sign(c) * abs(c) ** p[k]
    return y


def scs_backward(x, w, p, q, dy, stride=1, padding=0, groups=1, alpha=1.0):
    """Gradients of L = sum(y * dy): returns (dx, dw, dp, dq, dalpha), shaped like x, w, p, (1,), (1,).

    Straight from the chain rule, one patch and one kernel at a time (all 0 where |c| <= TINY):
        dy/dc = alpha p |c|**(p-1),   dy/dp = alpha sign(c) |c|**p ln|c|
        dc/ds = w / (norm_s norm_w) - c s / (norm_s sqrt(s.s + eps))
        dc/dw = s / (norm_s norm_w) - c w / (norm_w**2)
        dc/dq = -c / norm_s
        dy/dalpha = sign(c) |c|**p
    """
    n_batch, _, h, wd = x.shape
    n_k, c_g, kh, kw = w.shape
    xp = _pad(x, padding)
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    dp = np.zeros_like(p)
    dq = dalpha = 0.0
    q = float(np.asarray(q).reshape(-1)[0])
    h_out, w_out = _out_size(h, kh, stride, padding), _out_size(wd, kw, stride, padding)
    for n in range(n_batch):
        for k in range(n_k):
            g = k // (n_k // groups)
            for i in range(h_out):
                for j in range(w_out):
                    s, norm_s, root_s, norm_w, c = _scs_patch(xp, w, q, n, k, i, j, stride, groups)
                    if abs(c) <= TINY:
                        continue
                    y = np.sign(c) * abs(c) ** p[k]
                    grad = dy[n, k, i, j]
                    dalpha += grad * y
                    dp[k] += grad * alpha * y * np.log(abs(c))
                    gc = grad * alpha * p[k] * abs(c) ** (p[k] - 1)
                    dw[k] += gc * (s / (norm_s * norm_w) - c * w[k] / norm_w ** 2)
                    dxp[n, g * c_g:(g + 1) * c_g, i * stride:i * stride + kh,
                        j * stride:j * stride + kw] += gc * (w[k] / (norm_s * norm_w)
                                                             - c * s / (norm_s * root_s))
                    dq += gc * (-c / norm_s)
    dx = dxp[:, :, padding:padding + h, padding:padding + wd]
    return dx, dw, dp, np.array([dq]), np.array([dalpha])


# ---------------------------------------------------------------------------------------------
# Convolution
def conv_forward(x, w, b, stride=1, padding=0, groups=1):
    """x (N, C, H, W), w (K, C/groups, kh, kw), b (K,) -> y (N, K, H_out, W_out)."""
    n_batch, _, h, wd = x.shape
    n_k, c_g, kh, kw = w.shape
    xp = _pad(x, padding)
    h_out, w_out = _out_size(h, kh, stride, padding), _out_size(wd, kw, stride, padding)
    y = np.zeros((n_batch, n_k, h_out, w_out), dtype=x.dtype)
    for n in range(n_batch):
        for k in range(n_k):
            g = k // (n_k // groups)                  # the group of kernel k
            for i in range(h_out):
                for j in range(w_out):
                    s = xp[n, g * c_g:(g + 1) * c_g, i * stride:i * stride + kh, j * stride:j * stride + kw]
                    y[n, k, i, j] = np.sum(s * w[k]) + b[k]
    return y


def conv_backward(x, w, dy, stride=1, padding=0, groups=1):
    """Gradients of L = sum(y * dy): (dx, dw, db)."""
    n_batch, _, h, wd = x.shape
    n_k, c_g, kh, kw = w.shape
    xp = _pad(x, padding)
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    db = np.zeros(n_k, dtype=x.dtype)
    for n in range(n_batch):
        for k in range(n_k):
            g = k // (n_k // groups)
            for i in range(dy.shape[2]):
                for j in range(dy.shape[3]):
                    chans = slice(g * c_g, (g + 1) * c_g)
                    rows = slice(i * stride, i * stride + kh)
                    cols = slice(j * stride, j * stride + kw)
                    grad = dy[n, k, i, j]
                    dw[k] += grad * xp[n, chans, rows, cols]
                    dxp[n, chans, rows, cols] += grad * w[k]
                    db[k] += grad
    return dxp[:, :, padding:padding + h, padding:padding + wd], dw, db


# ---------------------------------------------------------------------------------------------
# Pooling
def pool_forward(x, pool_size=2, mode="maxabs", ceil_mode=False):
    """Non-overlapping pooling, mode "maxabs" or "max": returns (y, winners).

    winners[n, c, i, j] = (row, col) in x of the element chosen for y[n, c, i, j]; ties go to
    the first in row-major order. ceil_mode keeps the windows that run past the edge, pooling
    the elements they cover.
    """
    kh, kw = (pool_size, pool_size) if np.isscalar(pool_size) else pool_size
    n_batch, n_c, h, wd = x.shape
    ho, wo = (-(-h // kh), -(-wd // kw)) if ceil_mode else (h // kh, wd // kw)
    y = np.zeros((n_batch, n_c, ho, wo), dtype=x.dtype)
    winners = np.zeros((n_batch, n_c, ho, wo, 2), dtype=int)
    for n in range(n_batch):
        for c in range(n_c):
            for i in range(ho):
                for j in range(wo):
                    best = None
                    for a in range(kh):
                        for b in range(kw):
                            if i * kh + a >= h or j * kw + b >= wd:
                                continue                      # past the edge (ceil mode)
                            v = x[n, c, i * kh + a, j * kw + b]
                            score = abs(v) if mode == "maxabs" else v
                            if best is None or score > best:
                                best = score
                                y[n, c, i, j] = v
                                winners[n, c, i, j] = (i * kh + a, j * kw + b)
    return y, winners


def pool_backward(x_shape, winners, dy):
    """dx: dy routed to the winning element of each window, zero elsewhere."""
    dx = np.zeros(x_shape, dtype=dy.dtype)
    n_batch, n_c, ho, wo = dy.shape
    for n in range(n_batch):
        for c in range(n_c):
            for i in range(ho):
                for j in range(wo):
                    r, s = winners[n, c, i, j]
                    dx[n, c, r, s] += dy[n, c, i, j]
    return dx


# ---------------------------------------------------------------------------------------------
# Dense
def dense_forward(x, w, b):
    """x (N, I), w (I, O), b (O,) -> y (N, O), one sum at a time."""
    y = np.zeros((x.shape[0], w.shape[1]), dtype=x.dtype)
    for n in range(x.shape[0]):
        for o in range(w.shape[1]):
            y[n, o] = b[o] + sum(x[n, i] * w[i, o] for i in range(w.shape[0]))
    return y
