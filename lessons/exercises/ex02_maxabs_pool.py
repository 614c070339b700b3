"""Exercise 2: MaxAbsPool, forward and backward.

About 30-45 minutes. Grade yourself from the repository root with

    python -m pytest lessons/exercises/test_ex02_maxabs_pool.py

What you will learn
-------------------
SCS outputs are signed: -0.9 means "clearly the opposite of my kernel", as informative as
+0.9. Ordinary max pooling would keep the largest value and throw strong negative responses
away, so SCS networks pool with *max-abs*: in each window keep the element with the largest
absolute value, with its sign.

    window [[ 1, -5],        max pool -> 3
            [ 2,  3]]    max-abs pool -> -5

The pooling windows are size x size squares that do not overlap (stride = size). Rows and
columns at the bottom and right that do not fill a whole window are dropped, so an
(N, C, H, W) input gives an (N, C, H // size, W // size) output.

The backward pass routes each output's gradient to the one input element that won its
window; every other input element gets gradient 0 (it did not affect the output).

Ties (two elements with the same |x|, such as -3 and 3, or a window of zeros) go to the
*first* of them in reading order: along the top row left to right, then the next row.
That is also what ``np.argmax`` does: it returns the first index of the largest value.

Your task
---------
Fill in ``maxabs_pool_forward`` and ``maxabs_pool_backward`` below, between the
``YOUR CODE HERE`` markers, and delete the ``raise NotImplementedError`` line of each.
Loops over n, c and the windows are perfectly fine; the hints show a loop-free way too.

``cache`` is yours to design: forward returns whatever backward will need (for example the
input shape and, for every window, which element won), and backward receives it back.
"""

import numpy as np


def maxabs_pool_forward(x, size=2):
    """Max-abs pooling over non-overlapping size x size windows.

    Parameters
    ----------
    x : float array (N, C, H, W)
    size : int >= 1, the window height and width (and the stride)

    Returns
    -------
    y : array (N, C, H // size, W // size), the same dtype as x.
        y[n, c, i, j] is the element of largest |value| (sign kept) in the window
        x[n, c, i*size:(i+1)*size, j*size:(j+1)*size]; ties go to the first in reading order.
    cache : anything you like; it is passed back to maxabs_pool_backward.

    Hints
    -----
    - With loops: for each (n, c, i, j), take the window, find the position of the largest
      ``np.abs(window)`` (``np.argmax`` on the flattened window, then ``divmod(k, size)`` gives
      its row and column), and remember it.
    - Without loops: after trimming the rows and columns that do not fill a window, one
      reshape can give every window its own two axes. Which transpose brings them next to each
      other, so that a second reshape makes each window one row? Then look up
      ``np.take_along_axis``.
    - Do not change x.
    """
    # ---- YOUR CODE HERE ----
    raise NotImplementedError("ex02: maxabs_pool_forward() is still a blank; fill it in")
    # ---- END OF YOUR CODE ----


def maxabs_pool_backward(dy, cache):
    """Route each output gradient to the element that won its window.

    Parameters
    ----------
    dy : float array (N, C, H // size, W // size), dL/dy for the last forward output
    cache : what your maxabs_pool_forward returned

    Returns
    -------
    dx : array (N, C, H, W), the shape of the forward input, the same dtype as dy.
        dx at each window's winning element equals dy for that window; every other element
        of dx is 0 (including the dropped rows and columns).

    Hints
    -----
    - Start from zeros of the input's shape and write each dy[n, c, i, j] into its window's
      winner's place. What must the forward pass have remembered for that? Without loops,
      ``np.put_along_axis`` is the mirror image of the forward's lookup.
    - Do not change dy.
    """
    # ---- YOUR CODE HERE ----
    raise NotImplementedError("ex02: maxabs_pool_backward() is still a blank; fill it in")
    # ---- END OF YOUR CODE ----


if __name__ == "__main__":
    x = np.array([[[[1.0, -5.0, 0.5, 0.0],
                    [2.0, 3.0, -0.25, 0.0],
                    [-3.0, 3.0, 0.0, 9.0],
                    [0.0, 1.0, -9.5, 0.0]]]])
    y, cache = maxabs_pool_forward(x, 2)
    print("x[0, 0] =\n", x[0, 0])
    print("y[0, 0] =\n", y[0, 0])           # [[-5, 0.5], [-3, -9.5]]; -3 beats 3: a tie
    dx = maxabs_pool_backward(np.array([[[[10.0, 20.0], [30.0, 40.0]]]]), cache)
    print("dx[0, 0] for dy = [[10, 20], [30, 40]] =\n", dx[0, 0])
