"""Reference solution to exercise 4: the backward pass of a Dense layer."""

import numpy as np

from minisc import Layer


class MyDense(Layer):
    """y = x @ w + b; params["w"] (n_inputs, n_outputs), params["b"] (n_outputs,)."""

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
        """x (N, n_inputs) -> y (N, n_outputs)."""
        x = self._check_input(x, ndim=2)
        self.x = x
        y = x @ self.params["w"] + self.params["b"]
        self._y_shape = y.shape
        return y

    def backward(self, dy):
        """dy (N, n_outputs) -> dx (N, n_inputs); fills grads["w"] and grads["b"]."""
        dL_dy = self._check_grad(dy)
        # y = x @ W + b
        dL_dW = self.x.T @ dL_dy                  # (n_inputs, N) @ (N, n_outputs)
        dL_db = dL_dy.sum(axis=0)                 # (n_outputs,): b is added to every example
        dL_dx = dL_dy @ self.params["w"].T        # (N, n_outputs) @ (n_outputs, n_inputs)
        self.grads["w"][...] = dL_dW
        self.grads["b"][...] = dL_db
        return dL_dx
