"""Check a backward pass against finite differences, for the input and every parameter.

How it works. Pick a fixed random array R the shape of the output and define the scalar
loss L = sum(forward(x) * R). Its gradient dL/dy is just R, so one backward(R) gives the
analytic gradients. Then nudge each checked number by +-delta and measure

    dL/dtheta ~ (L(theta + delta) - L(theta - delta)) / (2 * delta)        (central difference)

whose error shrinks like delta**2. In float64 a correct backward agrees to ~1e-7 or better;
a wrong one is usually off by 1e-2 to 1. Float32 has too few digits for this, so gradcheck
always works on a float64 copy of your layer: the original is left untouched.

The verdict. An array passes when its worst relative error is below THRESHOLD (1e-5): a
hundred times above what a correct backward gives, far below what a mistake gives.

Which entries. Every entry of an array of up to ``max_checks`` (10,000 by default) numbers is
checked, so a single wrong entry cannot hide; a larger array is checked on a sample of
``max_checks`` entries chosen with the fixed ``seed`` (the same entries every run).

The one false alarm you will meet: SharpCosSim2D with p < 1 on blank patches (all zeros, as
in MNIST's background). There c = 0 and |c|**p has a kink with an infinite slope: the central
difference straddles it and disagrees with the layer's 0 by a factor of order 1, in dL/dx
only. That is not a bug in the backward pass (there is no derivative to get right); check on
inputs with a little noise added (see lesson 4, step 7).
"""

import copy

import numpy as np

#: The one pass/fail line: an array passes when its worst relative error is below this.
THRESHOLD = 1e-5

#: Arrays of up to this many numbers are checked entry by entry (the default max_checks).
FULL_CHECK_LIMIT = 10_000


class GradcheckError(AssertionError):
    """Raised by ``gradcheck(..., raise_on_failure=True)`` when an array fails."""


class GradcheckResult(dict):
    """What gradcheck found: a dict {array label: worst relative error}, plus the verdict.

    Use it like the dict it is (``result["x"]``, ``max(result.values())``) or read

    - ``passed``: True when every error is below ``threshold``;
    - ``failed``: the labels of the arrays that did not pass;
    - ``worst``: the largest error of all;
    - ``checked``: {label: (entries checked, entries in the array)}.
    """

    def __init__(self, errors, checked, threshold):
        super().__init__(errors)
        self.checked = dict(checked)
        self.threshold = float(threshold)

    @property
    def failed(self):
        # "not err < threshold" also catches NaN, which compares False with everything.
        return [label for label, err in self.items() if not err < self.threshold]

    @property
    def passed(self):
        return not self.failed

    @property
    def worst(self):
        return max(self.values(), default=0.0)

    def raise_if_failed(self):
        """Raise GradcheckError naming every failing array; return self when all pass."""
        if self.failed:
            detail = ", ".join(f"{label}: {self[label]:.2e}" for label in self.failed)
            raise GradcheckError(f"gradcheck FAILED (threshold {self.threshold:.0e}): worst "
                                 f"relative error per array {detail}; the backward pass "
                                 "disagrees with finite differences there")
        return self

    def __repr__(self):
        verdict = "passed" if self.passed else f"FAILED: {', '.join(self.failed)}"
        return f"GradcheckResult({dict.__repr__(self)}, {verdict})"


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


def _check_arguments(delta, max_checks, threshold):
    if isinstance(delta, bool) or not isinstance(delta, (int, float, np.floating, np.integer)) \
            or not np.isfinite(delta) or delta <= 0:
        raise ValueError(f"gradcheck: delta must be a finite number > 0 (e.g. 1e-6), got {delta!r}")
    if max_checks is not None and (isinstance(max_checks, bool)
                                   or not isinstance(max_checks, (int, np.integer)) or max_checks < 1):
        raise ValueError(f"gradcheck: max_checks must be an integer >= 1, or None to check every "
                         f"entry; got {max_checks!r}")
    if not (isinstance(threshold, (int, float, np.floating)) and threshold > 0):
        raise ValueError(f"gradcheck: threshold must be a number > 0, got {threshold!r}")


def gradcheck(layer_or_model, x, *, delta=1e-6, max_checks=FULL_CHECK_LIMIT, seed=0,
              verbose=False, threshold=THRESHOLD, raise_on_failure=False):
    """Compare analytic and numerical gradients of a layer or a Sequential model.

    Parameters
    ----------
    layer_or_model : a minisc Layer or Sequential (any object with forward/backward and
        params/grads, or .layers)
    x : float array, the input, e.g. (N, C, H, W)
    delta : finite-difference step (in float64), > 0
    max_checks : int >= 1, or None. Arrays of up to this many entries are checked entry by
        entry; larger ones on a fixed-seed sample of this many. None: every entry, always.
    seed : for the loss projection and the choice of sampled entries
    verbose : print one line per array, and the verdict
    threshold : an array passes when its worst relative error is below this (THRESHOLD, 1e-5)
    raise_on_failure : raise GradcheckError instead of returning a failed result

    Returns
    -------
    GradcheckResult: a dict {"x": worst relative error of dL/dx, "<param>": ..., ...} with
    ``.passed`` (True/False), ``.failed`` (labels), ``.worst`` and ``.checked``.
    Around 1e-7 or less means the backward pass is right. See the module docstring for the
    one false alarm (p < 1 on blank patches).
    """
    _check_arguments(delta, max_checks, threshold)
    rng = np.random.default_rng(seed)
    model = copy.deepcopy(layer_or_model)
    model.astype(np.float64)
    layers = model.layers if hasattr(model, "layers") else [model]
    layers[0].needs_input_grad = True
    x = np.array(x, dtype=np.float64)          # a private copy we may nudge

    # One forward pass leaves the caches backward needs; its output also sizes the projection.
    y = model.forward(x)
    proj = rng.standard_normal(y.shape)
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

    def loss():
        return float(np.sum(model.forward(x) * proj))     # exactly one forward per call

    arrays = [("x", x)] + [(label, params[key]) for label, params, _, key in slots]
    errors, checked = {}, {}
    for label, arr in arrays:
        flat = arr.reshape(-1)                 # a view: nudging flat nudges arr
        idx = np.arange(flat.size)
        if max_checks is not None and flat.size > max_checks:
            idx = np.sort(rng.choice(flat.size, size=max_checks, replace=False))
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
        checked[label] = (len(idx), flat.size)
        if verbose:
            mark = "ok" if errors[label] < threshold else "FAIL"
            print(f"  {label:<24s} checked {len(idx):5d} of {flat.size:6d}   "
                  f"max relative error {errors[label]:.2e}  {mark}")
    result = GradcheckResult(errors, checked, threshold)
    if verbose:
        print(f"  gradcheck {'passed' if result.passed else 'FAILED'} "
              f"(every error must be below {threshold:.0e})")
    if raise_on_failure:
        result.raise_if_failed()
    return result
