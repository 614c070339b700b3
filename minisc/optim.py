"""Optimizers: they read every layer's ``grads`` and update its ``params`` in place.

An optimizer is given the model (or a list of layers) once; ``step()`` then updates every
parameter from the gradients the last ``backward`` left in ``layer.grads``, and finally calls
``layer.constrain()`` so each layer can clip its parameters back into range (SharpCosSim2D
keeps p in [0.1, 10] and q >= 1e-4 that way). Updates happen only here, never inside a
layer's backward.

The learning rate is a plain attribute: change ``opt.lr`` between steps to follow a schedule.
"""

import numpy as np


def _layers_of(model):
    """A list of layers from a Sequential, a single layer, or an iterable of layers."""
    if hasattr(model, "layers"):
        return list(model.layers)
    if hasattr(model, "params") and hasattr(model, "grads"):
        return [model]
    layers = list(model)
    for layer in layers:
        if not (hasattr(layer, "params") and hasattr(layer, "grads")):
            raise TypeError(f"optimizer: {layer!r} has no params/grads; pass a model or layers")
    return layers


class Optimizer:
    def __init__(self, model, lr):
        if not lr > 0:
            raise ValueError(f"{type(self).__name__}: lr must be > 0, got {lr}")
        self.layers = _layers_of(model)
        self.lr = float(lr)

    def _slots(self):
        """(layer, name, param, grad) for every parameter array."""
        for layer in self.layers:
            for name, param in layer.params.items():
                yield layer, name, param, layer.grads[name]

    def step(self):
        for layer, name, param, grad in self._slots():
            self._update(layer, name, param, grad)
        for layer in self.layers:
            layer.constrain()

    def _update(self, layer, name, param, grad):
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with momentum.

        v <- momentum * v + grad
        param <- param - lr * v
    """

    def __init__(self, model, lr=0.01, momentum=0.0):
        super().__init__(model, lr)
        if not 0 <= momentum < 1:
            raise ValueError(f"SGD: momentum must be in [0, 1), got {momentum}")
        self.momentum = float(momentum)
        self._velocity = {}

    def _update(self, layer, name, param, grad):
        if self.momentum:
            v = self._velocity.setdefault((id(layer), name), np.zeros_like(param))
            v *= self.momentum
            v += grad
            grad = v
        param -= param.dtype.type(self.lr) * grad


class Adam(Optimizer):
    """Adam (Kingma and Ba, 2015, https://arxiv.org/abs/1412.6980).

        m <- b1 * m + (1 - b1) * grad              running mean of gradients
        v <- b2 * v + (1 - b2) * grad**2           running mean of squared gradients
        param <- param - lr * m_hat / (sqrt(v_hat) + eps),
        with the bias corrections m_hat = m / (1 - b1**t), v_hat = v / (1 - b2**t).
    """

    def __init__(self, model, lr=0.001, betas=(0.9, 0.999), eps=1e-8):
        super().__init__(model, lr)
        b1, b2 = betas
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise ValueError(f"Adam: betas must be in [0, 1), got {betas}")
        self.betas = (float(b1), float(b2))
        self.eps = float(eps)
        self.t = 0
        self._moments = {}

    def step(self):
        self.t += 1
        super().step()

    def _update(self, layer, name, param, grad):
        b1, b2 = self.betas
        m, v = self._moments.setdefault(
            (id(layer), name), (np.zeros_like(param), np.zeros_like(param)))
        m *= b1
        m += (1 - b1) * grad
        v *= b2
        v += (1 - b2) * grad * grad
        step = self.lr * np.sqrt(1 - b2 ** self.t) / (1 - b1 ** self.t)
        param -= param.dtype.type(step) * m / (np.sqrt(v) + param.dtype.type(self.eps))
