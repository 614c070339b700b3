"""Dense (fully connected) and Flatten: the classifier head of every minisc network."""

import numpy as np

from .base import Layer, as_rng


class Dense(Layer):
    """y = x @ w + b.

    n_inputs, n_outputs : int
    params["w"]: (n_inputs, n_outputs), Glorot-uniform; params["b"]: (n_outputs,), zeros.
    forward:  x (N, n_inputs) -> y (N, n_outputs);  backward: dy (N, n_outputs) -> dx (N, n_inputs).
    """

    def __init__(self, n_inputs, n_outputs, dtype=np.float32, rng=None):
        super().__init__(dtype)
        for label, v in (("n_inputs", n_inputs), ("n_outputs", n_outputs)):
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"Dense: {label} must be an integer >= 1, got {v!r}")
        self.n_inputs, self.n_outputs = int(n_inputs), int(n_outputs)
        limit = np.sqrt(6.0 / (n_inputs + n_outputs))
        self.params = {
            "w": as_rng(rng).uniform(-limit, limit, size=(n_inputs, n_outputs)).astype(self.dtype),
            "b": np.zeros(n_outputs, dtype=self.dtype),
        }
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def config(self):
        return dict(n_inputs=self.n_inputs, n_outputs=self.n_outputs)

    def output_shape(self, input_shape):
        if tuple(input_shape) != (self.n_inputs,):
            raise ValueError(f"{self} expects {self.n_inputs} features per example, "
                             f"gets shape {tuple(input_shape)}")
        return (self.n_outputs,)

    def __str__(self):
        return f"Dense({self.n_inputs}->{self.n_outputs})"

    def forward(self, x):
        x = self._check_input(x, ndim=2)
        if x.shape[1] != self.n_inputs:
            raise ValueError(f"{self}: expected {self.n_inputs} input features, got input of "
                             f"shape {x.shape}")
        self._cache = x
        return x @ self.params["w"] + self.params["b"]

    def backward(self, dL_dy):
        dL_dy = self._check_grad(dL_dy)
        x = self._cache
        # y = x @ w + b
        #   dL/dw = x.T @ dL/dy,  dL/db = sum over the batch of dL/dy,  dL/dx = dL/dy @ w.T
        self.grads["w"][...] = x.T @ dL_dy
        self.grads["b"][...] = dL_dy.sum(axis=0)
        if not self.needs_input_grad:
            return None
        return dL_dy @ self.params["w"].T


class Flatten(Layer):
    """(N, C, H, W) -> (N, C*H*W), in channels-first order; backward reshapes back."""

    def output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)

    def __str__(self):
        return "Flatten()"

    def forward(self, x):
        x = self._check_input(x)
        if x.ndim < 2:
            raise ValueError(f"Flatten: expected at least 2-D input (N, ...), got shape {x.shape}")
        self._cache = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dL_dy):
        dL_dy = self._check_grad(dL_dy)
        return dL_dy.reshape(self._cache)
