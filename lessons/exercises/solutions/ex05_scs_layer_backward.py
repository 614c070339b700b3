"""Reference solution to exercise 5: SCS backward for a batch of patches, dL/dw and dL/dq."""

import numpy as np

EPS = 1e-12     # inside both square roots
TINY = 1e-30    # |c| is clamped to this before the power


def scs_forward(s, w, p, q):
    """s (M, D), w (K, D), p (K,), q float -> (y (M, K), cache)."""
    root_s = np.sqrt(np.sum(s * s, axis=1) + EPS)             # (M,)
    norm_s = root_s + q                                       # (M,)
    norm_w = np.sqrt(np.sum(w * w, axis=1) + EPS)             # (K,)
    dot = s @ w.T                                             # (M, K)
    c = dot / (norm_s[:, None] * norm_w[None, :])             # (M, K)
    abs_c = np.maximum(np.abs(c), TINY)                       # (M, K), clamped
    y = np.sign(c) * abs_c ** p                               # (M, K)
    cache = dict(s=s, w=w, p=p, q=q, root_s=root_s, norm_s=norm_s, norm_w=norm_w,
                 dot=dot, c=c, abs_c=abs_c, y=y)
    return y, cache


def scs_backward(dL_dy, cache):
    """dL_dy (M, K) -> dict of dL_dc, dL_ddot (M, K), dL_dnorm_s (M,), dL_dnorm_w (K,), dL_dw (K, D), dL_dq."""
    s, w, p = cache["s"], cache["w"], cache["p"]
    norm_s, norm_w = cache["norm_s"], cache["norm_w"]
    c, abs_c = cache["c"], cache["abs_c"]

    # 1. y = sign(c) * |c|**p  ->  dy_dc = p |c|**(p-1), 0 where |c| was clamped
    dy_dc = np.where(np.abs(c) > TINY, p * abs_c ** (p - 1), 0.0)      # (M, K)
    dL_dc = dL_dy * dy_dc                                               # (M, K)

    # 2. c = dot / (norm_s * norm_w)
    dL_ddot = dL_dc / (norm_s[:, None] * norm_w[None, :])               # (M, K)
    dL_dnorm_w = np.sum(dL_dc * (-c / norm_w[None, :]), axis=0)         # (K,)  shared by all m
    dL_dnorm_s = np.sum(dL_dc * (-c / norm_s[:, None]), axis=1)         # (M,)  shared by all k

    # 3. dot = s @ w.T   and   4. norm_w = sqrt(w . w + eps)
    dL_dw = dL_ddot.T @ s + (dL_dnorm_w / norm_w)[:, None] * w          # (K, D)

    # 5. norm_s = root_s + q, with q shared by every patch
    dL_dq = float(np.sum(dL_dnorm_s))
    return dict(dL_dc=dL_dc, dL_ddot=dL_ddot, dL_dnorm_s=dL_dnorm_s, dL_dnorm_w=dL_dnorm_w,
                dL_dw=dL_dw, dL_dq=dL_dq)
