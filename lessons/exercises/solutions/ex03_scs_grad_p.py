"""Reference solution to exercise 3: the gradient of SCS with respect to p (and to c)."""

import numpy as np

TINY = 1e-30  # |c| is clamped to this before the power and the log


def sharpen(c, p):
    """y = sign(c) * max(|c|, TINY) ** p; c (M, K), p (K,) -> (M, K)."""
    a = np.maximum(np.abs(c), TINY)
    return np.sign(c) * a ** p


def dy_dc(c, p):
    """p * max(|c|, TINY) ** (p - 1), and 0 where |c| <= TINY; c (M, K), p (K,) -> (M, K)."""
    a = np.maximum(np.abs(c), TINY)               # clamp first: no 0 ** negative
    d = p * a ** (p - 1)                           # even in c: no sign(c)
    return np.where(np.abs(c) > TINY, d, 0.0)      # y is constant in c below the clamp


def dy_dp(c, p):
    """y * ln(max(|c|, TINY)); c (M, K), p (K,) -> (M, K)."""
    a = np.maximum(np.abs(c), TINY)
    return sharpen(c, p) * np.log(a)               # |c|**p = exp(p ln|c|)


def dL_dp(c, p, dL_dy):
    """dL_dp[k] = sum_m dL_dy[m, k] * dy_dp[m, k]; -> (K,)."""
    return np.sum(dL_dy * dy_dp(c, p), axis=0)     # every patch m pulls on the same p[k]
