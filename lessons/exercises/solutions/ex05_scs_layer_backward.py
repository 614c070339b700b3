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


def scs_backward(g, cache):
    """g (M, K) -> (dw (K, D), dq float)."""
    s, w, p = cache["s"], cache["w"], cache["p"]
    norm_s, norm_w = cache["norm_s"], cache["norm_w"]
    c, abs_c = cache["c"], cache["abs_c"]

    # 1. y = sign(c) * |c|**p  ->  dy/dc = p |c|**(p-1), 0 where |c| was clamped
    gc = g * np.where(np.abs(c) > TINY, p * abs_c ** (p - 1), 0.0)      # (M, K)

    # 2. c = dot / (norm_s * norm_w)
    g_dot = gc / (norm_s[:, None] * norm_w[None, :])                    # (M, K)
    g_norm_w = np.sum(gc * (-c / norm_w[None, :]), axis=0)              # (K,)
    g_norm_s = np.sum(gc * (-c / norm_s[:, None]), axis=1)              # (M,)

    # 3. dot = s @ w.T   and   4. norm_w = sqrt(w . w + eps)
    dw = g_dot.T @ s + (g_norm_w / norm_w)[:, None] * w                 # (K, D)

    # 5. norm_s = root_s + q, with q shared by every patch
    dq = float(np.sum(g_norm_s))
    return dw, dq
