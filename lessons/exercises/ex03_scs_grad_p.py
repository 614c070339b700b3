"""Exercise 3: the gradient of sharpened cosine similarity with respect to p (and to c).

About 20-30 minutes. Grade yourself from the repository root with

    python -m pytest lessons/exercises/test_ex03_scs_grad_p.py

What you will learn
-------------------
The last step of SCS sharpens the cosine c of a patch and a kernel with the kernel's
exponent p (see exercise 1):

    y = sign(c) * |c| ** p

p is *learned*, like the kernel itself, so backpropagation needs dy/dp as well as dy/dc:

    dy/dc = p * |c| ** (p - 1)     even in c: the sign of c cancels (y is an odd function)
    dy/dp = y * ln|c|              because |c| ** p = exp(p * ln|c|)

Both misbehave at c = 0 (a blank patch, or a kernel perpendicular to the patch): for p < 1,
|c| ** (p - 1) is infinite there, and ln|c| is -inf. minisc therefore clamps |c| from below
before the power and the log:

    a = max(|c|, TINY),  TINY = 1e-30
    y = sign(c) * a ** p
    dy/dc = p * a ** (p - 1)   where |c| > TINY, and 0 where |c| <= TINY (y does not move
                               with c there: it is the constant sign(c) * TINY ** p)
    dy/dp = y * ln(a)          (finite everywhere; 0 at c = 0, where y = 0)

A layer computes many cosines at once: c[m, k] for every patch m of the batch and every
kernel k, and kernel k has its own exponent p[k]. The loss depends on p[k] through every
patch, so the chain rule *sums over the batch*:

    dL/dp[k] = sum over m of  g[m, k] * dy/dp[m, k],       g = dL/dy

Your task
---------
``sharpen`` (the forward step) is written for you. Fill in ``dy_dc``, ``dy_dp`` and ``grad_p``
between the ``YOUR CODE HERE`` markers and delete their ``raise NotImplementedError`` lines.
No loops needed: NumPy broadcasts a (K,) array of exponents across the rows of an (M, K) array.
"""

import numpy as np

TINY = 1e-30  # |c| is clamped to this before the power and the log


def sharpen(c, p):
    """The SCS sharpening step (given): y = sign(c) * max(|c|, TINY) ** p.

    c : float array (M, K), cosines of M patches with K kernels
    p : float array (K,), one exponent per kernel (broadcast across the rows of c)
    Returns y, a float array (M, K).
    """
    a = np.maximum(np.abs(c), TINY)
    return np.sign(c) * a ** p


def dy_dc(c, p):
    """Derivative of y = sharpen(c, p) with respect to c, elementwise.

    Parameters
    ----------
    c : float array (M, K)
    p : float array (K,), all > 0

    Returns
    -------
    float array (M, K): p * max(|c|, TINY) ** (p - 1) where |c| > TINY, and 0 where
    |c| <= TINY. Never NaN or inf, and no NumPy warnings, even at c = 0 with p < 1.

    Hints
    -----
    - The derivative is *even*: c = 0.5 and c = -0.5 give the same value. No sign(c) here.
    - Clamp first, then raise to the power: ``np.maximum(np.abs(c), TINY) ** (p - 1)``.
      ``np.where(cond, A, B)`` computes both A and B in full, so computing ``abs(c) ** (p - 1)``
      unclamped inside it still divides by zero at c = 0.
    """
    # ---- YOUR CODE HERE ----
    raise NotImplementedError("ex03: dy_dc() is still a blank; fill it in")
    # ---- END OF YOUR CODE ----


def dy_dp(c, p):
    """Derivative of y = sharpen(c, p) with respect to p, elementwise.

    Parameters
    ----------
    c : float array (M, K)
    p : float array (K,), all > 0

    Returns
    -------
    float array (M, K): y * ln(max(|c|, TINY)), with y = sharpen(c, p) (sign included).
    Finite everywhere; 0 where c = 0.

    Hints
    -----
    - Use the signed y: for c = -0.5, p = 2 the answer is -0.25 * ln(0.5) = +0.173.
    - ``np.log`` of the clamped |c|, never of |c| itself.
    """
    # ---- YOUR CODE HERE ----
    raise NotImplementedError("ex03: dy_dp() is still a blank; fill it in")
    # ---- END OF YOUR CODE ----


def grad_p(c, p, g):
    """dL/dp for a batch: the gradient a layer stores in grads["p"].

    Parameters
    ----------
    c : float array (M, K), cosines of M patches with K kernels
    p : float array (K,), one exponent per kernel
    g : float array (M, K), dL/dy for every patch and kernel

    Returns
    -------
    float array (K,): dL/dp[k] = sum over m of g[m, k] * dy/dp[m, k].

    Hints
    -----
    - Reuse your ``dy_dp``; which axis is the batch?
    """
    # ---- YOUR CODE HERE ----
    raise NotImplementedError("ex03: grad_p() is still a blank; fill it in")
    # ---- END OF YOUR CODE ----


if __name__ == "__main__":
    c = np.array([[0.5, -0.5, 0.0]])
    p = np.array([2.0, 2.0, 0.5])
    print("c      =", c)
    print("p      =", p)
    print("y      =", sharpen(c, p))
    print("dy/dc  =", dy_dc(c, p))              # [1, 1, 0]
    print("dy/dp  =", dy_dp(c, p))              # [-0.173, 0.173, 0]
    print("dL/dp for g = 1:", grad_p(c, p, np.ones_like(c)))
