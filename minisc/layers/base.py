"""The layer contract every minisc layer follows.

A layer is an object with

- ``forward(x)``: computes the output and *caches* what the backward pass will need;
- ``backward(dy)``: given dL/dy (same shape as the last output), returns dL/dx (same shape as
  the last input) and stores dL/d(parameter) in ``self.grads``. It never changes parameters:
  updates are the optimizer's job (``minisc.optim``), so backward always sees the weights that
  forward used;
- ``params`` and ``grads``: dicts of NumPy arrays with the same keys and shapes. Optimizers
  update ``params`` arrays *in place*, so any reference you keep stays valid;
- ``constrain()``: called by the optimizer after every update, to keep parameters in their
  valid range (for example p >= 0.1 in SharpCosSim2D). Most layers have nothing to do;
- ``config()``: the constructor arguments, so ``minisc.load`` can rebuild the layer;
- ``log_steps``: a dict {parameter name: learning-rate factor}, empty for most layers. A
  parameter listed there is always positive, and the optimizer steps its logarithm instead
  of the value itself (see ``Optimizer.step``), so each step changes it by a *fraction* of
  its size;
- ``output_shape(input_shape)``: shape bookkeeping for ``Sequential.summary()``.

One cache convention. Everything ``backward`` needs from the last forward pass lives in one
attribute, ``self._cache`` (a dict or a tuple, the layer's choice), set by ``forward``. Two
things are done for every layer by this base class, so no layer has to remember them:

- after each ``forward``, the shape of its output is recorded, and ``self._check_grad(dy)``
  compares dL/dy against it;
- in evaluation mode (``layer.eval()``, or ``model.eval()`` for a whole Sequential) the
  cache is dropped as soon as ``forward`` returns: predictions need no backward pass, and
  the memory of every intermediate array is given back at once. ``backward`` then says so
  clearly; ``layer.train()`` switches back.

Arrays are channels-first, (N, C, H, W), and a layer computes in the dtype of its parameters
(float32 unless you ask for float64).
"""

import copy
import functools

import numpy as np

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def as_float_dtype(dtype, who):
    """np.float32 or np.float64, or a TypeError saying what was given."""
    dt = np.dtype(dtype)
    if dt not in _FLOAT_DTYPES:
        raise TypeError(f"{who}: dtype must be float32 or float64, got {dt}")
    return dt


def as_rng(rng):
    """A numpy Generator from None (fresh entropy), an int seed, or a Generator."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def pair(value, name, who):
    """(a, b) from an int or a pair of ints, each >= 1 (kernel sizes, pool sizes)."""
    if isinstance(value, (int, np.integer)):
        value = (int(value), int(value))
    try:
        a, b = (int(v) for v in value)
    except (TypeError, ValueError):
        raise TypeError(f"{who}: {name} must be an int or a pair of ints, got {value!r}") from None
    if a < 1 or b < 1:
        raise ValueError(f"{who}: {name} must be >= 1, got {value!r}")
    return a, b


def _recording_forward(forward):
    """Wrap a layer's forward: remember the output's shape; in evaluation mode, drop the cache."""
    if getattr(forward, "_records_output", False):
        return forward

    @functools.wraps(forward)
    def wrapped(self, x):
        y = forward(self, x)
        self._y_shape = getattr(y, "shape", None)
        if not getattr(self, "training", True):
            self._cache = None
        return y

    wrapped._records_output = True
    return wrapped


class Layer:
    """Base class: no parameters, identity bookkeeping, helpful input checks."""

    log_steps = {}          # {param name: learning-rate factor}: stepped in log space

    def __init_subclass__(cls, **kwargs):
        # Every subclass's own forward is wrapped once (see "One cache convention" above).
        super().__init_subclass__(**kwargs)
        if "forward" in cls.__dict__:
            cls.forward = _recording_forward(cls.__dict__["forward"])

    def __init__(self, dtype=np.float32):
        self.dtype = as_float_dtype(dtype, type(self).__name__)
        self.params = {}
        self.grads = {}
        # Set to False (Sequential does it for its first layer) when nobody needs dL/dx:
        # backward may then skip computing it and return None.
        self.needs_input_grad = True
        # Training mode keeps what backward needs; evaluation mode keeps nothing.
        self.training = True
        self._cache = None
        self._y_shape = None

    def train(self):
        """Training mode (the default): forward keeps what backward needs. Returns self."""
        self.training = True
        return self

    def eval(self):
        """Evaluation mode: forward keeps no cache, so it uses less memory; no backward. Returns self."""
        self.training = False
        self._cache = None
        return self

    # ----------------------------------------------------------------------------------
    # the contract
    def forward(self, x):
        raise NotImplementedError

    def backward(self, dy):
        raise NotImplementedError

    def constrain(self):
        """Clip parameters back into their valid range after an optimizer update."""

    def config(self):
        """Constructor keyword arguments (JSON-friendly) that rebuild this layer."""
        return {}

    def output_shape(self, input_shape):
        """Shape of one output example given the shape of one input example (no batch axis)."""
        return tuple(input_shape)

    # ----------------------------------------------------------------------------------
    # conveniences
    def __call__(self, x):
        return self.forward(x)

    @property
    def n_params(self):
        return int(sum(p.size for p in self.params.values()))

    def astype(self, dtype):
        """Convert the parameters (and the compute dtype) to float32 or float64, in place."""
        self.dtype = as_float_dtype(dtype, type(self).__name__)
        for key in self.params:
            self.params[key] = self.params[key].astype(self.dtype)
            self.grads[key] = np.zeros_like(self.params[key])
        return self

    def replica(self):
        """A copy for one chunk of a batch (see minisc.parallel): the *same* parameter arrays,
        its own grads and cache. What a replica's backward computes lands in its own grads."""
        twin = copy.copy(self)
        twin.grads = {k: np.zeros_like(v) for k, v in self.grads.items()}
        twin._cache = None
        twin._y_shape = None
        return twin

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"

    def __str__(self):
        return repr(self)

    # ----------------------------------------------------------------------------------
    # input checks, shared by all layers so every message looks the same
    def _check_input(self, x, ndim=None, channels=None, what="x"):
        """Validate an input array and return it in this layer's dtype.

        Raises TypeError for non-arrays and integer/bool arrays, ValueError for a wrong number
        of dimensions, a wrong channel count, or NaN/inf values. Float inputs of the other
        precision are converted to the layer's dtype.
        """
        name = type(self).__name__
        if not isinstance(x, np.ndarray):
            raise TypeError(f"{name}: expected {what} to be a numpy array, got {type(x).__name__}")
        if not np.issubdtype(x.dtype, np.floating):
            raise TypeError(
                f"{name}: expected a float array ({self.dtype}), got dtype {x.dtype}. "
                "Convert images first, e.g. minisc.data.to_float(images) or "
                "images.astype(np.float32) / 255"
            )
        if ndim is not None and x.ndim != ndim:
            layout = {4: " (N, C, H, W)", 2: " (N, features)"}.get(ndim, "")
            raise ValueError(
                f"{name}: expected a {ndim}-D input{layout}, got shape {x.shape} ({x.ndim}-D)"
            )
        if channels is not None and x.shape[1] != channels:
            raise ValueError(
                f"{name}: expected {channels} input channels (axis 1 of (N, C, H, W)), "
                f"got {x.shape[1]} in input of shape {x.shape}"
            )
        if x.dtype != self.dtype:
            x = x.astype(self.dtype)
        # One fast reduction first; only if it is not finite, look element by element (a sum
        # of large finite numbers can overflow without any bad element).
        with np.errstate(over="ignore", invalid="ignore"):
            total = x.sum()
        if not np.isfinite(total) and not np.isfinite(x).all():
            n_bad = int(x.size - np.count_nonzero(np.isfinite(x)))
            raise ValueError(
                f"{name}: input contains {n_bad} NaN or infinite value(s) out of {x.size}; "
                "check the data and the previous layer (a too-large learning rate?)"
            )
        return x

    def _check_grad(self, dy):
        """Validate dL/dy against the shape of the last forward output (recorded by this class)."""
        name = type(self).__name__
        shape = getattr(self, "_y_shape", None)
        if shape is None:
            raise RuntimeError(f"{name}: backward() called before forward()")
        if not getattr(self, "training", True):
            raise RuntimeError(f"{name}: backward() after a forward pass in evaluation mode, which "
                               "keeps nothing for backward; call .train() on the layer or model first")
        if not isinstance(dy, np.ndarray) or dy.shape != shape:
            got = dy.shape if isinstance(dy, np.ndarray) else type(dy).__name__
            raise ValueError(f"{name}: expected a gradient of shape {shape} (the last output), got {got}")
        if dy.dtype != self.dtype:
            dy = dy.astype(self.dtype)
        return dy
