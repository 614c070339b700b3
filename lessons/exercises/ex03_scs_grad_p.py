"""Exercise 3: the gradient of sharpened cosine similarity with respect to p (and to c).

About 15-25 minutes. Grade yourself from the repository root with

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

    dL_dp[k] = sum over m of  dL_dy[m, k] * dy_dp[m, k]

Your task
---------
``sharpen`` (the forward step) is written for you. Fill in ``dy_dc``, ``dy_dp`` and ``dL_dp``
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
    - Is the derivative odd or even in c? Compare c = 0.5 and c = -0.5 on paper first.
    - Look at how ``sharpen`` avoids 0 ** (negative number), and do the same *before* the
      power. Beware: ``np.where(cond, A, B)`` computes both A and B in full, so a dangerous
      expression inside it still runs (and warns) where cond is False.
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
    - Which y: signed or not? Work out c = -0.5, p = 2 by hand and compare with the example
      printed at the bottom of this file.
    - Of what exactly do you take the logarithm, so that c = 0 stays finite?
    """
    # ---- YOUR CODE HERE ----
    raise NotImplementedError("ex03: dy_dp() is still a blank; fill it in")
    # ---- END OF YOUR CODE ----


def dL_dp(c, p, dL_dy):
    """dL_dp for a batch: the gradient a layer stores in grads["p"].

    Parameters
    ----------
    c : float array (M, K), cosines of M patches with K kernels
    p : float array (K,), one exponent per kernel
    dL_dy : float array (M, K), the gradient of the loss for every patch and kernel

    Returns
    -------
    float array (K,): dL_dp[k] = sum over m of dL_dy[m, k] * dy_dp[m, k].

    Hints
    -----
    - Reuse your ``dy_dp``. Which axis holds the patches, and which result shape do you need?
    """
    # ---- YOUR CODE HERE ----
    raise NotImplementedError("ex03: dL_dp() is still a blank; fill it in")
    # ---- END OF YOUR CODE ----


if __name__ == "__main__":
    c = np.array([[0.5, -0.5, 0.0]])
    p = np.array([2.0, 2.0, 0.5])
    print("c      =", c)
    print("p      =", p)
    print("y      =", sharpen(c, p))
    print("dy/dc  =", dy_dc(c, p))              # [1, 1, 0]
    print("dy/dp  =", dy_dp(c, p))              # [-0.173, 0.173, 0]
    print("dL_dp for dL_dy = 1:", dL_dp(c, p, np.ones_like(c)))
