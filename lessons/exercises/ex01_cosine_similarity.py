"""Exercise 1: cosine similarity, then sharpened cosine similarity.

About 15-25 minutes. Grade yourself from the repository root with

    python -m pytest lessons/exercises/test_ex01_cosine_similarity.py

What you will learn
-------------------
A convolution scores an image patch by its dot product with a kernel, so a bold stroke
scores higher than a faint one of the same shape. Sharpened cosine similarity (SCS, proposed
by Brandon Rohrer) scores the *angle* between patch and kernel instead, then sharpens it:

    c = (s . w) / ((sqrt(s . s + eps) + q) * sqrt(w . w + eps))
    y = sign(c) * |c| ** p

- s is the patch, w the kernel (any shape, the same for both: every number takes part).
- eps = 1e-12 sits *inside* each square root. Without it a blank patch (all zeros, like the
  background of an MNIST digit) divides 0 by 0.
- q > 0 is the "noise floor", added to the patch norm only: a faint, noisy patch then scores
  close to 0 instead of a confident cosine of its noise.
- p > 0 sharpens: |c| ** p with p > 1 pushes moderate similarities towards 0, so only close
  matches score high. sign(c) keeps the sign, so a patch that is the negative of the kernel
  scores negative.

Your task
---------
Fill in the two functions below, between the ``YOUR CODE HERE`` markers, and delete the
``raise NotImplementedError`` line of each. Use NumPy only (no loops needed).

Run this file (``python lessons/exercises/ex01_cosine_similarity.py``) to try your functions
on a small example.
"""

import numpy as np

EPS = 1e-12  # inside every square root


def cosine_similarity(a, b):
    """Cosine of the angle between two arrays of the same shape, with eps in the roots.

        cos = (a . b) / (sqrt(a . a + eps) * sqrt(b . b + eps))

    Parameters
    ----------
    a, b : float arrays of the same shape, any number of dimensions, e.g. two (C, kh, kw)
        patches. Every element takes part, as if both were flattened into vectors.

    Returns
    -------
    A Python float (or a 0-d NumPy float) in [-1, 1]. An all-zero array gives 0.0, not NaN.

    Hints
    -----
    - Two same-shaped arrays need no flattening: which NumPy function adds up all the
      products of their elements?
    - Write the formula above term by term. Where exactly is eps added: to the sum of
      squares, or to the length? Test your answer on a = [1e-7, 0]: cosine(a, a) must be
      about 0.0099, not 1 (see the docstring at the top).
    """
    # ---- YOUR CODE HERE ----
    raise NotImplementedError("ex01: cosine_similarity() is still a blank; fill it in")
    # ---- END OF YOUR CODE ----


def scs_score(patch, kernel, p, q):
    """Sharpened cosine similarity of one patch and one kernel.

        c = (s . w) / ((sqrt(s . s + eps) + q) * sqrt(w . w + eps))
        y = sign(c) * |c| ** p

    Parameters
    ----------
    patch, kernel : float arrays of the same shape, e.g. (C, kh, kw)
    p : float > 0, the sharpening exponent
    q : float >= 0, the noise floor, added to the *patch* norm only

    Returns
    -------
    A Python float (or a 0-d NumPy float) in (-1, 1) when q > 0. A blank patch gives 0.0.

    Hints
    -----
    - Compared with ``cosine_similarity``, only one of the two norms changes. Which one, and
      is q added inside or outside its square root?
    - What is ``(-0.5) ** 1.5`` in NumPy? Find a way to raise only the size of c to the
      power p and to give y the sign of c.
    """
    # ---- YOUR CODE HERE ----
    raise NotImplementedError("ex01: scs_score() is still a blank; fill it in")
    # ---- END OF YOUR CODE ----


if __name__ == "__main__":
    stroke = np.array([[0.0, 1.0, 0.0],
                       [0.0, 1.0, 0.0],
                       [0.0, 1.0, 0.0]])             # a vertical stroke
    kernel = stroke.copy()
    print("cosine(stroke, kernel)          =", cosine_similarity(stroke, kernel))     # 1.0 (eps: a hair less)
    print("cosine(stroke, kernel.T)        =", cosine_similarity(stroke, kernel.T))   # 1/3
    for p in (1.0, 2.0, 4.0):
        print(f"scs(stroke, kernel.T, p={p}, q=0.1) =", scs_score(stroke, kernel.T, p, 0.1))
    print("scs(faint stroke, kernel, p=2, q=0.1) =", scs_score(0.01 * stroke, kernel, 2.0, 0.1))
    print("scs(-stroke, kernel, p=2, q=0.1)      =", scs_score(-stroke, kernel, 2.0, 0.1))
    print("scs(blank, kernel, p=2, q=0.1)        =", scs_score(np.zeros((3, 3)), kernel, 2.0, 0.1))
