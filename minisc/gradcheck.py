"""Check a backward pass against finite differences, for the input and every parameter.

How it works. Pick a fixed random array R the shape of the output and define the scalar
loss L = sum(forward(x) * R). Its gradient dL/dy is just R, so one backward(R) gives the
analytic gradients. Then nudge each checked number by +-delta and measure

    dL/dtheta ~ (L(theta + delta) - L(theta - delta)) / (2 * delta)        (central difference)

whose error shrinks like delta**2. In float64 a correct backward agrees to ~1e-7 or better;
a wrong one is usually off by 1e-2 to 1. Float32 has too few digits for this, so gradcheck
always works on a float64 copy of your layer: the original is left untouched.
"""

import copy

import numpy as np


def _slots(obj):
    """(label, params dict, grads dict, key) for every parameter of a layer or a Sequential."""
    if hasattr(obj, "layers"):
        out = []
        for i, layer in enumerate(obj.layers):
            for key in layer.params:
                out.append((f"{i}:{type(layer).__name__}.{key}", layer.params, layer.grads, key))
        return out
    return [(key, obj.params, obj.grads, key) for key in obj.params]


def _rel_error(analytic, numeric):
    """Worst elementwise error, each relative to max(|a|, |n|, 1e-3 * largest |n|, 1e-10).

    The floor keeps entries that are ~0 in both (common: a kernel element over blank pixels)
    from turning round-off into a huge 'relative' error.
    """
    scale = max(float(np.max(np.abs(numeric), initial=0.0)), 1e-10)
    denom = np.maximum(np.maximum(np.abs(analytic), np.abs(numeric)), 1e-3 * scale)
    return float(np.max(np.abs(analytic - numeric) / denom, initial=0.0))


def gradcheck(layer_or_model, x, *, delta=1e-6, max_checks=100, seed=0, verbose=False):
    """Compare analytic and numerical gradients of a layer or a Sequential model.

    Parameters
    ----------
    layer_or_model : a minisc Layer or Sequential (any object with forward/backward and
        params/grads, or .layers)
    x : float array, the input, e.g. (N, C, H, W)
    delta : finite-difference step (in float64)
    max_checks : at most this many randomly chosen entries of each array are checked
        (None: every entry)
    seed : for the loss projection and the choice of entries
    verbose : print one line per array

    Returns
    -------
    dict: {"x": worst relative error of dL/dx, "<param>": worst relative error, ...}.
    Around 1e-6 or less means the backward pass is right.
    """
    rng = np.random.default_rng(seed)
    model = copy.deepcopy(layer_or_model)
    model.astype(np.float64)
    layers = model.layers if hasattr(model, "layers") else [model]
    layers[0].needs_input_grad = True
    x = np.array(x, dtype=np.float64)          # a private copy we may nudge

    y = model.forward(x)
    proj = rng.standard_normal(y.shape)

    def loss():
        return float(np.sum(model.forward(x) * proj))

    model.forward(x)
    dx = model.backward(proj.copy())
    if not isinstance(dx, np.ndarray) or dx.shape != x.shape:
        got = dx.shape if isinstance(dx, np.ndarray) else type(dx).__name__
        raise ValueError(f"gradcheck: backward() returned dL/dx of shape {got}; expected the "
                         f"input's shape {x.shape}")
    analytic = {"x": np.array(dx, dtype=np.float64)}
    slots = _slots(model)
    for label, params, grads, key in slots:
        if grads[key].shape != params[key].shape:
            raise ValueError(f"gradcheck: grads[{key!r}] ({label}) has shape {grads[key].shape}; "
                             f"expected the shape of params[{key!r}], {params[key].shape}")
        analytic[label] = grads[key].copy()

    arrays = [("x", x)] + [(label, params[key]) for label, params, _, key in slots]
    errors = {}
    for label, arr in arrays:
        flat = arr.reshape(-1)                 # a view: nudging flat nudges arr
        idx = np.arange(flat.size)
        if max_checks is not None and flat.size > max_checks:
            idx = rng.choice(flat.size, size=max_checks, replace=False)
        numeric = np.empty(len(idx))
        for j, i in enumerate(idx):
            old = flat[i]
            flat[i] = old + delta
            up = loss()
            flat[i] = old - delta
            down = loss()
            flat[i] = old
            numeric[j] = (up - down) / (2 * delta)
        errors[label] = _rel_error(analytic[label].reshape(-1)[idx], numeric)
        if verbose:
            print(f"  {label:<24s} checked {len(idx):4d} of {flat.size:6d}   "
                  f"max relative error {errors[label]:.2e}")
    return errors
