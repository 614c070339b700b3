"""Optimizers: they read every layer's ``grads`` and update its ``params`` in place.

An optimizer is given the model (or a list of layers) once; ``step()`` then updates every
parameter from the gradients the last ``backward`` left in ``layer.grads``, and finally calls
``layer.constrain()`` so each layer can clip its parameters back into range (SharpCosSim2D
keeps p in [0.1, 10] and q >= 1e-4 that way). Updates happen only here, never inside a
layer's backward.

The learning rate is a plain attribute: change ``opt.lr`` between steps to follow a schedule.

``state_dict()`` returns everything an optimizer remembers between steps (Adam's running means
and step count, SGD's velocities) as a flat dict of NumPy arrays, ready for ``np.savez``;
``load_state_dict(state)`` puts it back, so a training run can stop and resume exactly.
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
            if name in layer.log_steps:
                self._log_update(layer, name, param, grad, layer.log_steps[name])
            else:
                self._update(layer, name, param, grad)
        for layer in self.layers:
            layer.constrain()

    def _log_update(self, layer, name, param, grad, factor):
        """Step u = ln(param) instead of param, with the learning rate times ``factor``.

        A positive parameter written as param = exp(u) has dL/du = dL/dparam * param (chain
        rule), and a step of a given size in u changes param by a given *fraction* of itself.
        Why the factor: the published SCS records store p_raw with p = exp(p_raw / 5). Adam's
        step does not depend on the gradient's scale, so it moves p_raw by about lr, i.e.
        u = ln p = p_raw / 5 by about lr / 5: the same as stepping u with factor 1/5. Their
        q = exp(-q_raw / 0.3) is factor 1/0.3 likewise (the sign flips both the gradient and
        the step). With SGD, whose step does scale with the gradient, the two differ.
        The optimizer's buffers (Adam's moments) then hold statistics of dL/du.
        """
        u = np.log(param)
        self._update(layer, name, u, grad * param, lr_scale=factor)
        np.exp(u, out=param)

    def _update(self, layer, name, param, grad, lr_scale=1.0):
        raise NotImplementedError

    # ----------------------------------------------------------------------------------
    # saving and restoring what the optimizer remembers between steps
    #
    # Buffers live in dicts keyed by (id(layer), param name): cheap to look up, but an id means
    # nothing in another process. On the way out they are renamed "<kind>/<layer index>.<name>"
    # (for example "m/0.w"), the same numbering model files use.
    _BUFFERS = ()          # the names of the per-parameter buffer dicts, e.g. ("_velocity",)

    def _scalars(self):
        return {"lr": self.lr}

    def state_dict(self):
        """A flat dict {name: numpy array} of the optimizer's state (for np.savez)."""
        state = {key: np.asarray(value) for key, value in self._scalars().items()}
        index = {id(layer): i for i, layer in enumerate(self.layers)}
        for buffer in self._BUFFERS:
            for (layer_id, name), arrays in getattr(self, buffer).items():
                for part, array in zip(self._parts(buffer), _as_tuple(arrays), strict=True):
                    state[f"{part}/{index[layer_id]}.{name}"] = array.copy()
        return state

    def load_state_dict(self, state):
        """Restore a state from state_dict(); a ValueError says what does not fit this model."""
        who = type(self).__name__
        state = dict(state)
        for key in self._scalars():
            if key not in state:
                raise ValueError(f"{who}.load_state_dict: the state lacks {key!r}; was it saved by "
                                 f"another kind of optimizer?")
        slots = {f"{i}.{name}": (layer, name, param)
                 for i, layer in enumerate(self.layers) for name, param in layer.params.items()}
        restored = {buffer: {} for buffer in self._BUFFERS}
        for buffer in self._BUFFERS:
            parts = self._parts(buffer)
            keys = {k.split("/", 1)[1] for k in state if k.split("/", 1)[0] in parts}
            for slot in sorted(keys):
                if slot not in slots:
                    raise ValueError(f"{who}.load_state_dict: the state has {slot!r}, a parameter "
                                     "this model does not have")
                layer, name, param = slots[slot]
                arrays = []
                for part in parts:
                    array = np.asarray(state.get(f"{part}/{slot}"))
                    if array.shape != param.shape:
                        raise ValueError(f"{who}.load_state_dict: {part}/{slot} has shape "
                                         f"{array.shape}, expected {param.shape}")
                    arrays.append(array.astype(param.dtype, copy=True))
                restored[buffer][(id(layer), name)] = arrays[0] if len(arrays) == 1 else tuple(arrays)
        self._set_scalars(state)
        for buffer, values in restored.items():
            setattr(self, buffer, values)
        return self

    def _set_scalars(self, state):
        self.lr = float(state["lr"])

    def _parts(self, buffer):
        """The saved name(s) of one buffer's array(s), e.g. ("m", "v") for Adam's moments."""
        raise NotImplementedError


def _as_tuple(arrays):
    return arrays if isinstance(arrays, tuple) else (arrays,)


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

    _BUFFERS = ("_velocity",)

    def _parts(self, buffer):
        return ("velocity",)

    def _update(self, layer, name, param, grad, lr_scale=1.0):
        if self.momentum:
            key = (id(layer), name)
            if key not in self._velocity:               # the first step: v = 0
                self._velocity[key] = np.zeros_like(param)
            v = self._velocity[key]
            v *= self.momentum
            v += grad
            grad = v
        param -= param.dtype.type(self.lr * lr_scale) * grad


class Adam(Optimizer):
    """Adam (Kingma and Ba, 2015, https://arxiv.org/abs/1412.6980).

        m <- b1 * m + (1 - b1) * grad              running mean of gradients
        v <- b2 * v + (1 - b2) * grad**2           running mean of squared gradients
        param <- param - lr_t * m / (sqrt(v) + eps),   lr_t = lr * sqrt(1 - b2**t) / (1 - b1**t)

    That is the paper's "efficient version" (end of its section 2): the bias corrections
    m_hat = m / (1 - b1**t) and v_hat = v / (1 - b2**t) folded into one step size, so the update
    equals lr * m_hat / (sqrt(v_hat) + eps_t) with eps_t = eps / sqrt(1 - b2**t). eps only
    matters where v is ~0.
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

    _BUFFERS = ("_moments",)

    def _parts(self, buffer):
        return ("m", "v")

    def _scalars(self):
        return {"lr": self.lr, "t": self.t}

    def _set_scalars(self, state):
        super()._set_scalars(state)
        self.t = int(state["t"])

    def step(self):
        self.t += 1
        super().step()

    def _update(self, layer, name, param, grad, lr_scale=1.0):
        b1, b2 = self.betas
        key = (id(layer), name)
        if key not in self._moments:                    # the first step: m = v = 0
            self._moments[key] = (np.zeros_like(param), np.zeros_like(param))
        m, v = self._moments[key]
        m *= b1
        m += (1 - b1) * grad
        v *= b2
        v += (1 - b2) * grad * grad
        step = self.lr * lr_scale * np.sqrt(1 - b2 ** self.t) / (1 - b1 ** self.t)
        param -= param.dtype.type(step) * m / (np.sqrt(v) + param.dtype.type(self.eps))
