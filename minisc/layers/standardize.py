"""Standardize: subtract a mean and divide by a standard deviation, inside the model.

Putting the input scaling inside the network means a saved model takes the same input as
every other minisc model, float32 images in [0, 1] of shape (N, 1, 28, 28), and nobody has to
remember which constants it was trained with.
"""

import numpy as np

from .base import Layer


class Standardize(Layer):
    """y = (x - mean) / std, elementwise with fixed (not learned) constants; any shape.

    The defaults are the mean and standard deviation of the MNIST training pixels scaled to
    [0, 1] (0.1307 and 0.3081, the values commonly used with MNIST).
    """

    def __init__(self, mean=0.1307, std=0.3081, dtype=np.float32):
        super().__init__(dtype)
        # NaN fails every comparison, so "not finite" catches it along with +-inf; a NaN mean
        # would otherwise turn every output into NaN without a word.
        if not np.isfinite(mean):
            raise ValueError(f"Standardize: mean must be a finite number, got {mean}")
        if not (np.isfinite(std) and std > 0):
            raise ValueError(f"Standardize: std must be a finite number > 0, got {std}")
        self.mean, self.std = float(mean), float(std)

    def config(self):
        return dict(mean=self.mean, std=self.std)

    def __str__(self):
        return f"Standardize(mean={self.mean:g}, std={self.std:g})"

    def forward(self, x):
        x = self._check_input(x)
        self._y_shape = x.shape
        return (x - self.dtype.type(self.mean)) * self.dtype.type(1.0 / self.std)

    def backward(self, dy):
        dy = self._check_grad(dy)
        # y = (x - mean) / std  ->  dy/dx = 1 / std
        return dy * self.dtype.type(1.0 / self.std)
