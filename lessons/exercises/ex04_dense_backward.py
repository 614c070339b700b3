"""Exercise 4: the backward pass of a Dense layer, following minisc's layer contract.

About 20-30 minutes. Grade yourself from the repository root with

    python -m pytest lessons/exercises/test_ex04_dense_backward.py

What you will learn
-------------------
Every minisc layer is a class with the same few members (see minisc/layers/base.py):

- ``forward(x)`` computes the output and *caches* what backward will need;
- ``backward(dy)`` receives dL/dy, the gradient of the loss with respect to the layer's last
  output, *stores* dL/d(parameter) in ``self.grads`` and *returns* dL/dx. It never changes
  ``self.params``: updating them is the optimizer's job;
- ``params`` and ``grads`` are dicts with the same keys and the same array shapes.

A Dense (fully connected) layer computes, for a batch of N examples,

    y = x @ w + b          x (N, n_inputs), w (n_inputs, n_outputs), b (n_outputs,)

Writing out one entry, y[n, o] = sum_i x[n, i] * w[i, o] + b[o], the chain rule gives

    dL_dW[i, o] = sum_n x[n, i] * dL_dy[n, o]      every example contributes to every weight
    dL_db[o]    = sum_n dL_dy[n, o]                b is added to every example's output
    dL_dx[n, i] = sum_o dL_dy[n, o] * w[i, o]

Each of these is one NumPy expression. A good check on any of them: its shape must be the
shape of the thing it is the gradient of.

Your task
---------
``MyDense`` below is a complete minisc layer except for its ``backward``. Fill in the blank
between the ``YOUR CODE HERE`` markers and delete the ``raise NotImplementedError`` line.
The tests compare your gradients with finite differences (``minisc.gradcheck``), with
minisc's own Dense layer, and train a tiny model with your layer in it.

Try it yourself once it passes:

    from minisc import gradcheck
    print(gradcheck(MyDense(5, 3), np.random.default_rng(0).standard_normal((4, 5))))

Every error below gradcheck's threshold, ``minisc.gradcheck.THRESHOLD`` = 1e-5 (lesson 4
explains it), means your backward is right.
"""

import numpy as np

from minisc import Layer


class MyDense(Layer):
    """y = x @ w + b, with your backward pass.

    n_inputs, n_outputs : int
    params["w"]: (n_inputs, n_outputs), Glorot-uniform; params["b"]: (n_outputs,), zeros.
    forward:  x (N, n_inputs) -> y (N, n_outputs)
    backward: dy (N, n_outputs) -> dx (N, n_inputs); fills grads["w"] and grads["b"].
    """

    def __init__(self, n_inputs, n_outputs, dtype=np.float32, rng=None):
        super().__init__(dtype)
        self.n_inputs, self.n_outputs = int(n_inputs), int(n_outputs)
        limit = np.sqrt(6.0 / (n_inputs + n_outputs))
        w = np.random.default_rng(rng).uniform(-limit, limit, size=(n_inputs, n_outputs))
        self.params = {"w": w.astype(self.dtype), "b": np.zeros(n_outputs, dtype=self.dtype)}
        self.grads = {key: np.zeros_like(value) for key, value in self.params.items()}

    def config(self):
        return dict(n_inputs=self.n_inputs, n_outputs=self.n_outputs)

    def output_shape(self, input_shape):
        return (self.n_outputs,)

    def forward(self, x):
        """x (N, n_inputs) -> y (N, n_outputs). Given: read it, then write backward."""
        x = self._check_input(x, ndim=2)        # a float array in this layer's dtype
        self.x = x                              # cached: dL/dw needs it
        y = x @ self.params["w"] + self.params["b"]
        self._y_shape = y.shape                 # lets backward check the shape of dy
        return y

    def backward(self, dy):
        """dy = dL/dy (N, n_outputs)  ->  dL/dx (N, n_inputs); fills self.grads.

        Store (do not return) the parameter gradients, writing into the existing arrays:

            self.grads["w"][...] = ...     shape (n_inputs, n_outputs), like params["w"]
            self.grads["b"][...] = ...     shape (n_outputs,), like params["b"]

        then return dL/dx, shape (N, n_inputs), like the input x.

        Hints
        -----
        - The cached input is ``self.x`` (N, n_inputs); the weights ``self.params["w"]``.
        - Each sum over an index in the formulas above is one matrix product. Write the
          shapes of the two factors and of the result side by side: which arrays must be
          transposed for the inner dimensions to match and the result to have the shape of
          the thing it is the gradient of?
        - Is dL_db a sum or a mean over the batch? Who already did any averaging?
        - Set the gradients with ``=`` (through ``[...]``), never ``+=``: a second backward
          must not add to the first one's gradients.
        - Do not change ``self.params`` or ``dy``.
        """
        dy = self._check_grad(dy)               # checks the shape, converts the dtype
        # y = x @ w + b
        # ---- YOUR CODE HERE ----
        raise NotImplementedError("ex04: MyDense.backward() is still a blank; fill it in")
        # ---- END OF YOUR CODE ----


if __name__ == "__main__":
    from minisc import gradcheck

    layer = MyDense(5, 3, rng=0)
    x = np.random.default_rng(1).standard_normal((4, 5))
    print("worst relative error per array:", gradcheck(layer, x))
