"""Exercise 5 (harder, optional): the backward pass of SCS for a batch of patches, dL/dw and dL/dq.

About 60-90 minutes. Do exercises 1 and 3 first. Grade yourself from the repository root with

    python -m pytest lessons/exercises/test_ex05_scs_layer_backward.py

What you will learn
-------------------
This is the heart of minisc's SharpCosSim2D layer, without the sliding window: M patches,
already cut out and flattened into the rows of a matrix s (M, D), are scored against K
kernels, the rows of w (K, D). (A layer gets s from the image by copying out every window;
that part is plain bookkeeping.) The forward pass, written for you below, is

    root_s[m] = sqrt(s[m] . s[m] + eps)                          (M,)
    norm_s[m] = root_s[m] + q                                    (M,)   q: the noise floor
    norm_w[k] = sqrt(w[k] . w[k] + eps)                          (K,)
    dot[m, k] = s[m] . w[k]                                      (M, K) = s @ w.T
    c[m, k]   = dot[m, k] / (norm_s[m] * norm_w[k])              (M, K)
    y[m, k]   = sign(c) * max(|c|, TINY) ** p[k]                 (M, K)

Given dL_dy (M, K), you will compute dL_dw (K, D) and dL_dq (a number) by walking back
through these lines, one at a time, the way every minisc backward pass is written (the names
are those of lesson 4 and minisc/layers/scs.py):

    1. y -> c:    dL_dc = dL_dy * dy_dc, with dy_dc = p * max(|c|, TINY) ** (p - 1), and 0
                  where |c| <= TINY (exercise 3).                                    (M, K)
    2. c -> dot, norm_s, norm_w, through the local derivatives
           dc/d dot = 1 / (norm_s * norm_w),   dc/d norm_w = -c / norm_w,   dc/d norm_s = -c / norm_s
       giving dL_ddot (M, K), and, because norm_w[k] is shared by every patch m and
       norm_s[m] by every kernel k, dL_dnorm_w (K,) as a sum over m and dL_dnorm_s (M,) as
       a sum over k.
    3. dot = s @ w.T: dot[m, k] changes with w[k] at the rate s[m], so dL_dw[k] gets
           the sum over m of dL_ddot[m, k] * s[m]                    (one matrix product)
    4. norm_w[k] = sqrt(w[k] . w[k] + eps), whose derivative is w[k] / norm_w[k], so
       dL_dw[k] also gets  dL_dnorm_w[k] * w[k] / norm_w[k]
    5. norm_s = root_s + q, so d norm_s / dq = 1, and q is shared by every patch:
           dL_dq = the sum over m of dL_dnorm_s[m]

Two sanity checks you can reason out before running the tests:
- c does not change when a kernel is scaled (w[k] -> 2 w[k]), so dL/dw[k] has no component
  along w[k]: ``np.sum(dL_dw[k] * w[k])`` is ~0. Forget step 4 and it is not.
- A larger q shrinks every |c|. With dL_dy = sign(y), L = sum(dL_dy * y) = sum(|y|) can only
  fall as q grows, so dL_dq < 0.

Your task
---------
Fill in ``scs_backward`` between the ``YOUR CODE HERE`` markers and delete the
``raise NotImplementedError`` line. Everything you need is in ``cache``. No loops needed;
if you prefer, write a loop over m and k first, get it right, then vectorize it.
``scs_backward`` returns every named gradient of steps 1-5 in a dict, so the tests can tell
you at which step a mistake happens: they check each against finite differences, and the
final dL_dw and dL_dq against minisc's SharpCosSim2D.
"""

import numpy as np

EPS = 1e-12     # inside both square roots
TINY = 1e-30    # |c| is clamped to this before the power


def scs_forward(s, w, p, q):
    """SCS of M patches with K kernels (given: read it, then write scs_backward).

    Parameters
    ----------
    s : float array (M, D), one flattened patch per row
    w : float array (K, D), one flattened kernel per row
    p : float array (K,), one exponent per kernel, > 0
    q : float > 0, the noise floor

    Returns
    -------
    y : float array (M, K)
    cache : dict of the arrays scs_backward needs
    """
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
    """Gradients of the loss with respect to the kernels and the noise floor, step by step.

    Parameters
    ----------
    dL_dy : float array (M, K), the gradient of the loss for the last forward output
    cache : the dict returned by scs_forward: s (M, D), w (K, D), p (K,), q, root_s (M,),
        norm_s (M,), norm_w (K,), dot (M, K), c (M, K), abs_c (M, K), y (M, K)

    Returns
    -------
    A dict of the gradients of steps 1-5, by name:

        "dL_dc"       (M, K)
        "dL_ddot"     (M, K)
        "dL_dnorm_s"  (M,)
        "dL_dnorm_w"  (K,)
        "dL_dw"       (K, D)
        "dL_dq"       a float

    Hints
    -----
    - One variable per step, named as in the docstring, with its shape in a comment.
    - Steps 2 and 5: which axis do you sum over, and why? Check each result's shape against
      the list above before going on.
    - Broadcasting: ``norm_s[:, None]`` is (M, 1), ``norm_w[None, :]`` is (1, K).
    - Blank patches (a row of s that is all zero) have c = 0: with p < 1, what is
      |c| ** (p - 1) there, and what does it turn into when multiplied by 0?
    - Do not change dL_dy or anything in cache.
    """
    # ---- YOUR CODE HERE ----
    raise NotImplementedError("ex05: scs_backward() is still a blank; fill it in")
    # ---- END OF YOUR CODE ----


if __name__ == "__main__":
    rng = np.random.default_rng(0)
    s = rng.standard_normal((6, 4))
    w = rng.standard_normal((2, 4))
    y, cache = scs_forward(s, w, np.array([2.0, 0.7]), 0.1)
    grads = scs_backward(np.ones_like(y), cache)
    print("dL_dw =\n", grads["dL_dw"])
    print("dL_dq =", grads["dL_dq"])
    print("dL_dw[k] . w[k] (should be ~0):", np.sum(grads["dL_dw"] * w, axis=1))
