"""Sequential: a stack of layers, its summary, and saving/loading it as one .npz file.

File format (a plain NumPy ``.npz``, readable with ``np.load``):

    "__minisc__"         JSON text: {"format": 1, "input_shape": [...] or null,
                                     "layers": [{"type": "SharpCosSim2D", "config": {...}}, ...],
                                     "metadata": {...}}   (optional: how the model was trained)
    "<i>.<name>"         the parameter ``name`` of layer i, e.g. "0.w", "0.p", "0.q", "7.b"

Saving writes a temporary file beside the target and renames it over the target only when it
is complete, so an interrupted save never leaves a half-written model behind.

Loading trusts nothing in the file: it must be a zip archive (what np.savez writes), every
parameter must be finite and inside the range its layer allows (p of SharpCosSim2D in
[0.1, 10], for example), and the size of each layer is compared with the arrays the file holds
*before* the layer is built, so a doctored file cannot make minisc allocate gigabytes. Saving
refuses whatever loading would refuse, so a file minisc writes always loads again.
"""

import json
import math
import zipfile
from pathlib import Path

import numpy as np

from . import parallel
from .files import atomic_write
from .layers import LAYER_TYPES, Layer
from .layers.base import as_float_dtype

FORMAT_VERSION = 1
EVAL_CHUNK = 256      # examples per forward pass in evaluation mode (bounds memory)
_META_KEY = "__minisc__"


class Sequential:
    """Layers applied one after the other.

    layers : list of Layer
    input_shape : optional (C, H, W) of one example, used by summary() and checked by forward.

    forward(x) runs every layer's forward; backward(dy) runs every backward in reverse and
    returns dL/dx (or None: the first layer skips its input gradient, which nobody uses, unless
    you set ``model.layers[0].needs_input_grad = True``, as gradcheck does).
    """

    def __init__(self, layers, input_shape=None):
        layers = list(layers)
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential: item {i} is {type(layer).__name__}, not a minisc Layer")
        if not layers:
            raise ValueError("Sequential: needs at least one layer")
        self.layers = layers
        self.input_shape = None if input_shape is None else tuple(int(v) for v in input_shape)
        # Free-form facts about how the model was made (data, epochs, accuracy, ...), saved
        # with it; minisc.load fills it from the file. A plain dict of JSON-friendly values.
        self.metadata = {}
        self._chunks = None     # how the last training forward was split into chunks
        self.layers[0].needs_input_grad = False
        if self.input_shape is not None:
            self.output_shapes()          # fails early, naming the layer, if shapes don't fit

    # ------------------------------------------------------------------------------------
    def forward(self, x):
        """x: (N, *input_shape) -> the last layer's output.

        In evaluation mode a large batch goes through in chunks of EVAL_CHUNK examples: nothing
        is kept for backward, so peak memory is that of one chunk, whatever N is. A batch of
        64 examples or more (100 in threads) is split into chunks that run side by side, in
        worker processes or threads (minisc/parallel.py); the result is the same as in one
        piece, up to the order of float sums."""
        if self.input_shape is not None and isinstance(x, np.ndarray) \
                and tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"Sequential: expected input of shape (N, {', '.join(map(str, self.input_shape))}),"
                             f" got {x.shape}")
        if not self.training and len(x) > EVAL_CHUNK:
            return np.concatenate([self.forward(x[i:i + EVAL_CHUNK]) for i in range(0, len(x), EVAL_CHUNK)])
        self._chunks = None
        parts = parallel.chunks(len(x)) if isinstance(x, np.ndarray) else [slice(None)]
        if len(parts) == 1:
            return _forward_through(self.layers, x)
        # Side by side (minisc/parallel.py): each chunk of the batch goes through replicas of
        # the layers, with the parameters and caches and gradients of their own, in a worker
        # process or a thread.
        for layer in self.layers:                   # the layers' own caches are not used
            layer._cache = layer._y_shape = None
        outs, kept = parallel.forward_chunks(self.layers, [x[part] for part in parts],
                                             keep=self.training)
        if self.training:
            self._chunks = (parts, kept, len(x))
        return np.concatenate(outs)

    __call__ = forward

    def __getstate__(self):
        # A copy or a pickle of the model leaves the chunks of a pending backward behind: they
        # may live in worker processes of this process (minisc/parallel.py).
        state = self.__dict__.copy()
        state["_chunks"] = None
        return state

    def backward(self, dy):
        """dy: dL/d(output) -> dL/dx (None if the first layer skips it). Fills every layer's grads."""
        if not self.training:
            raise RuntimeError("Sequential: backward() after a forward pass in evaluation mode, "
                               "which keeps nothing for backward; call model.train() first")
        if self._chunks is None:
            return _backward_through(self.layers, dy)
        parts, kept, n = self._chunks
        if not isinstance(dy, np.ndarray) or len(dy) != n:
            got = dy.shape if isinstance(dy, np.ndarray) else type(dy).__name__
            raise ValueError(f"Sequential: expected a gradient for the {n} examples of the last "
                             f"forward pass, got {got}")
        grads, dxs = parallel.backward_chunks(kept, [dy[part] for part in parts])
        # Each chunk's gradient is a sum over its examples; the batch's is their sum, added in
        # chunk order so that a run repeats bit for bit.
        for i, layer in enumerate(self.layers):
            for key, grad in layer.grads.items():
                grad[...] = grads[0][i][key]
                for chunk in grads[1:]:
                    grad += chunk[i][key]
        return None if dxs[0] is None else np.concatenate(dxs)

    def predict(self, x, batch_size=500):
        """Class scores for many examples, in batches, in evaluation mode: (N, ...) -> (N, classes).

        The model's mode (training or evaluation) is the same afterwards as before."""
        was_training = self.training
        self.eval()
        try:
            outs = [self.forward(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
        finally:
            if was_training:
                self.train()
        return np.concatenate(outs)

    # ------------------------------------------------------------------------------------
    # training and evaluation modes, as in PyTorch
    @property
    def training(self):
        """True unless the model was switched to evaluation mode with eval()."""
        return all(layer.training for layer in self.layers)

    def train(self):
        """Training mode (the default): every forward keeps what backward needs. Returns self."""
        for layer in self.layers:
            layer.train()
        return self

    def eval(self):
        """Evaluation mode: forward passes keep nothing for backward, so predictions need far
        less memory; backward() is then an error until train() is called. Returns self."""
        for layer in self.layers:
            layer.eval()
        return self

    # ------------------------------------------------------------------------------------
    @property
    def n_params(self):
        return sum(layer.n_params for layer in self.layers)

    @property
    def dtype(self):
        return self.layers[0].dtype

    def astype(self, dtype):
        """Convert every layer to float32 or float64, in place; returns self."""
        for layer in self.layers:
            layer.astype(dtype)
        return self

    def output_shapes(self, input_shape=None):
        """Per-layer output shapes (without the batch axis), given one example's input shape."""
        shape = tuple(input_shape or self.input_shape or ())
        if not shape:
            raise ValueError("Sequential: no input_shape given (pass one, or set model.input_shape)")
        shapes = []
        for i, layer in enumerate(self.layers):
            before = shape
            try:
                shape = tuple(int(v) for v in layer.output_shape(shape))
            except (ValueError, TypeError) as err:
                raise ValueError(f"Sequential: layer {i} ({layer}) cannot take input of shape "
                                 f"{shape}: {err}") from None
            if any(v < 1 for v in shape):
                raise ValueError(f"Sequential: layer {i} ({layer}) would output shape {shape} "
                                 f"from input {before}")
            shapes.append(shape)
        return shapes

    def summary(self, input_shape=None):
        """A table of layers, output shapes and parameter counts, as a string."""
        shape = input_shape or self.input_shape
        shapes = self.output_shapes(shape) if shape else [None] * len(self.layers)
        rows = [("#", "layer", "output shape", "params")]
        if shape:
            rows.append(("", "input", str(tuple(shape)), ""))
        for i, (layer, out) in enumerate(zip(self.layers, shapes, strict=False)):
            rows.append((str(i), str(layer), "?" if out is None else str(out), f"{layer.n_params:,}"))
        widths = [max(len(r[j]) for r in rows) for j in range(4)]
        fmt = "  ".join(["{:>%d}" % widths[0], "{:<%d}" % widths[1], "{:<%d}" % widths[2],
                         "{:>%d}" % widths[3]])
        lines = [fmt.format(*rows[0]), "-" * (sum(widths) + 6)]
        lines += [fmt.format(*r) for r in rows[1:]]
        lines.append("-" * (sum(widths) + 6))
        lines.append(f"total parameters: {self.n_params:,}   dtype: {self.dtype}")
        return "\n".join(lines)

    def __str__(self):
        return self.summary()

    def __repr__(self):
        return f"Sequential([{', '.join(repr(layer) for layer in self.layers)}])"

    # ------------------------------------------------------------------------------------
    def architecture(self):
        """The JSON-friendly description saved beside the parameters."""
        return {"format": FORMAT_VERSION,
                "input_shape": None if self.input_shape is None else list(self.input_shape),
                "layers": [{"type": type(layer).__name__, "config": layer.config()}
                           for layer in self.layers]}

    def save(self, path, metadata=None):
        """Write architecture, parameters and metadata to one .npz file (atomically).

        metadata: a dict of JSON-friendly values (numbers, strings, lists, dicts) describing
        how the model was made, e.g. {"data": "sample", "epochs": 30}; ``minisc.load`` gives it
        back as ``model.metadata``. Default: ``self.metadata``.

        Refuses (ValueError, nothing written) parameters that ``minisc.load`` would refuse:
        NaN or infinite values, or values outside a layer's valid range.
        """
        path = Path(path)
        if path.suffix != ".npz":
            raise ValueError(f"Sequential.save: the file name must end in .npz, got {path.name!r}")
        for i, layer in enumerate(self.layers):
            if type(layer).__name__ not in LAYER_TYPES:
                raise TypeError(f"Sequential.save: layer {i} ({type(layer).__name__}) is not "
                                "registered; decorate its class with minisc.register_layer")
            for name, value in layer.params.items():
                _check_values(f"Sequential.save: {path}", i, layer, name, value)
        metadata = self.metadata if metadata is None else metadata
        if not isinstance(metadata, dict):
            raise TypeError(f"Sequential.save: metadata must be a dict, got {type(metadata).__name__}")
        record = self.architecture()
        try:
            record["metadata"] = json.loads(json.dumps(metadata, allow_nan=False))
        except (TypeError, ValueError) as err:
            raise ValueError(f"Sequential.save: metadata must hold only JSON values (numbers, "
                             f"strings, lists, dicts; no NaN): {err}") from None
        arrays = {_META_KEY: np.array(json.dumps(record))}
        for i, layer in enumerate(self.layers):
            for name, value in layer.params.items():
                arrays[f"{i}.{name}"] = value
        with atomic_write(path) as f:
            np.savez(f, **arrays)
        self.metadata = record["metadata"]
        return path

    def load_weights(self, path):
        """Copy the parameters saved in ``path`` into this model, in place.

        The file's architecture must equal this model's; otherwise a ValueError says where
        they differ and nothing is changed.
        """
        meta, arrays = _read_model_file(path)
        mine = self.architecture()["layers"]
        theirs = meta["layers"]
        if len(mine) != len(theirs):
            raise ValueError(f"{path}: the file holds a model of {len(theirs)} layers, this model has "
                             f"{len(mine)}")
        for i, (a, b) in enumerate(zip(mine, theirs, strict=False)):
            if a["type"] != b["type"] or a["config"] != b["config"]:
                raise ValueError(f"{path}: layer {i} differs: the file has {b['type']} "
                                 f"{b['config']}, this model has {a['type']} {a['config']}")
        _check_arrays(path, self.layers, arrays)
        for i, layer in enumerate(self.layers):
            for name in layer.params:
                layer.params[name][...] = arrays[f"{i}.{name}"]
        return self


def _forward_through(layers, x):
    """Every layer's forward in turn: the whole of a forward pass, for a batch or one chunk."""
    for layer in layers:
        x = layer.forward(x)
    return x


def _backward_through(layers, dy):
    """Every layer's backward in reverse: dL/d(output) -> dL/dx, filling each layer's grads."""
    for layer in reversed(layers):
        dy = layer.backward(dy)
    return dy


def _read_model_file(path):
    """(architecture dict, dict of arrays) from a minisc .npz, or a ValueError saying why not."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"minisc.load: no such file: {path}")
    if path.is_dir():
        raise ValueError(f"minisc.load: {path} is a folder; expected a model file such as "
                         f"{path / 'model.npz'}")
    # Look at the first bytes before handing the file to NumPy: np.load guesses the format from
    # them, and for bytes it does not recognise its error suggests allow_pickle=True, which
    # would let a file run code. That advice must never reach a learner.
    with open(path, "rb") as f:
        head = f.read(6)
    if head.startswith(b"\x93NUMPY"):
        raise ValueError(f"minisc.load: {path} is a single NumPy array (.npy format), not a minisc "
                         "model file; a model is saved with model.save('name.npz')")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"minisc.load: {path} is not a readable minisc model file (.npz): it is "
                         "not a zip archive, which every .npz file is. Was it truncated, or saved "
                         "by something else?")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as err:
        reason = "an entry holds Python objects, which minisc never saves" \
            if "pickle" in str(err) else f"{type(err).__name__}: {err}"
        raise ValueError(f"minisc.load: {path} is not a readable minisc model file (.npz): "
                         f"{reason}. Was it truncated, or saved by something else?") from None
    if _META_KEY not in arrays:
        raise ValueError(f"minisc.load: {path} is a NumPy .npz file but not a minisc model "
                         f"(no '{_META_KEY}' entry; it holds {sorted(arrays)[:5]}...)")
    try:
        meta = json.loads(str(arrays.pop(_META_KEY)))
        layers = meta["layers"]
        if meta.get("format") != FORMAT_VERSION:
            raise ValueError(f"format {meta.get('format')!r}, expected {FORMAT_VERSION}")
        for spec in layers:
            if not isinstance(spec["type"], str) or not isinstance(spec["config"], dict):
                raise ValueError(f"layer record {spec!r} needs a type name and a config dict")
        if not isinstance(meta.get("metadata", {}), dict):
            raise ValueError("metadata must be a dict")
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"minisc.load: {path} has a damaged or unknown architecture record: "
                         f"{err}") from None
    return meta, arrays


def _check_arrays(path, layers, arrays):
    """Every parameter present with the right shape, and no extra arrays."""
    expected = set()
    for i, layer in enumerate(layers):
        for name, value in layer.params.items():
            key = f"{i}.{name}"
            expected.add(key)
            if key not in arrays:
                raise ValueError(f"minisc.load: {path} lacks parameter {key!r} of layer {i} ({layer})")
            got = arrays[key]
            if got.shape != value.shape:
                raise ValueError(f"minisc.load: {path}: parameter {key!r} of layer {i} ({layer}) has "
                                 f"shape {got.shape}, expected {value.shape}")
            _check_values(f"minisc.load: {path}", i, layer, name, got)
    extra = sorted(set(arrays) - expected)
    if extra:
        raise ValueError(f"minisc.load: {path} holds arrays no layer expects: {extra[:5]}")


def _valid_ranges(layer):
    """{param name: (low, high)}, inclusive, for the parameters of ``layer`` that have a range.

    A layer class states them in a ``valid_ranges`` class attribute (SharpCosSim2D: p in
    [P_MIN, P_MAX], q >= Q_MIN); a layer without one accepts any finite value.
    """
    return getattr(layer, "valid_ranges", None) or {}


def _check_values(where, i, layer, name, value):
    """A parameter array must be floats, all finite, and inside its layer's valid range."""
    key = f"{i}.{name}"
    if not np.issubdtype(value.dtype, np.floating):
        raise ValueError(f"{where}: parameter {key!r} of layer {i} ({layer}) has dtype "
                         f"{value.dtype}; expected float32 or float64")
    if not np.isfinite(value).all():
        n_bad = int(value.size - np.count_nonzero(np.isfinite(value)))
        raise ValueError(f"{where}: parameter {key!r} of layer {i} ({layer}) holds {n_bad} NaN or "
                         "infinite value(s); expected finite numbers (did training diverge?)")
    low, high = _valid_ranges(layer).get(name, (-math.inf, math.inf))
    if value.size and (value.min() < low or value.max() > high):
        raise ValueError(f"{where}: parameter {key!r} of layer {i} ({layer}) has values from "
                         f"{value.min():g} to {value.max():g}; expected values in [{low:g}, {high:g}]")


# A lower bound on how many numbers each built-in layer with parameters holds, from its
# config alone: its weight array, the one that can be big. It is compared with the file's
# arrays *before* the layer is built, so a config that asks for a huge layer is refused before
# any memory is allocated. Unknown layer types (or odd configs) give None: their own
# constructor then checks the config.
def _kernel_size(config):
    """Number of weights of a convolution-like layer: K * (C / groups) * kh * kw."""
    size = config["kernel_size"]
    kh, kw = (size, size) if isinstance(size, int) else size
    return config["out_channels"] * (config["in_channels"] // config.get("groups", 1)) * kh * kw


_WEIGHT_COUNTS = {
    "Dense": lambda c: c["n_inputs"] * c["n_outputs"],
    "Conv2D": _kernel_size,
    "SharpCosSim2D": _kernel_size,
}


_SIZE_SLACK = 1_000_000     # numbers (4 MB in float32) a layer may be built with before checking


def _expected_size(spec):
    count = _WEIGHT_COUNTS.get(spec["type"])
    if count is None:
        return None
    try:
        n = int(count(spec["config"]))
    except (KeyError, TypeError, ValueError):
        return None
    return n


def load(path, dtype=None):
    """Rebuild a Sequential model saved with ``model.save(path)``.

    The model's ``.metadata`` is the dict saved with it (empty for files without one).
    dtype: None keeps the saved precision; np.float32 or np.float64 converts.
    Raises FileNotFoundError, or ValueError naming what is wrong with the file.
    """
    meta, arrays = _read_model_file(path)
    first = next(iter(arrays.values()), None)
    layer_dtype = dtype or (first.dtype if first is not None else np.float32)
    if not np.issubdtype(np.dtype(layer_dtype), np.floating):
        raise ValueError(f"minisc.load: {path}: parameter arrays have dtype {np.dtype(layer_dtype)}; "
                         "expected float32 or float64")
    layers = []
    for i, spec in enumerate(meta["layers"]):
        cls = LAYER_TYPES.get(spec["type"])
        if cls is None:
            raise ValueError(f"minisc.load: {path}: layer {i} has unknown type {spec['type']!r}; "
                             "for a layer of your own, import it and decorate its class with "
                             "minisc.register_layer before loading")
        expected = _expected_size(spec)
        held = sum(a.size for key, a in arrays.items() if key.split(".", 1)[0] == str(i))
        # Only a layer much larger than its data is refused here, before building it; smaller
        # disagreements get the precise per-array message of _check_arrays below.
        if expected is not None and expected > held + _SIZE_SLACK:
            raise ValueError(f"minisc.load: {path}: layer {i} ({spec['type']} {spec['config']}) "
                             f"would hold at least {expected:,} parameters, but the file has {held:,} values "
                             "for it; the file is damaged or was edited")
        try:
            layers.append(cls(**spec["config"], dtype=as_float_dtype(layer_dtype, "minisc.load")))
        except (TypeError, ValueError) as err:
            raise ValueError(f"minisc.load: {path}: cannot rebuild layer {i} ({spec['type']}) from "
                             f"{spec['config']}: {err}") from None
    _check_arrays(path, layers, arrays)
    for i, layer in enumerate(layers):
        for name in layer.params:
            layer.params[name][...] = arrays[f"{i}.{name}"]
    shape = meta.get("input_shape")
    try:
        model = Sequential(layers, input_shape=shape)
    except (TypeError, ValueError) as err:
        raise ValueError(f"minisc.load: {path}: the saved input_shape {shape!r} does not suit the "
                         f"layers; expected (channels, height, width) that they accept: {err}") from None
    model.metadata = meta.get("metadata", {})
    return model
