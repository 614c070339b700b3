"""minisc's layers, one concept per module. See base.py for the contract they all follow."""

import inspect

from .base import Layer
from .conv import Conv2D, ReLU
from .dense import Dense, Flatten
from .pooling import MaxAbsPool2D, MaxPool2D
from .scs import SharpCosSim2D
from .standardize import Standardize
from .windows import WindowedLayer

# Every layer class minisc.load can rebuild from a saved file, by class name.
LAYER_TYPES = {cls.__name__: cls for cls in (
    SharpCosSim2D, MaxAbsPool2D, MaxPool2D, Dense, Flatten, Conv2D, ReLU, Standardize)}



def register_layer(cls):
    """Make a layer class of your own known to minisc.load (usable as a class decorator).

    The class must be a Layer subclass whose constructor accepts ``dtype=`` (minisc.load passes
    it), and its name must not be taken already: a saved model names its layers by class name.
    """
    if not (isinstance(cls, type) and issubclass(cls, Layer)):
        raise TypeError(f"register_layer expects a Layer subclass, got {cls!r}")
    taken = LAYER_TYPES.get(cls.__name__)
    if taken is not None and taken is not cls:
        raise ValueError(f"register_layer: the name {cls.__name__!r} is taken by {taken.__module__}."
                         f"{taken.__qualname__}; give your class another name")
    params = inspect.signature(cls.__init__).parameters.values()
    if not any(p.name == "dtype" or p.kind is p.VAR_KEYWORD for p in params):
        raise TypeError(f"register_layer: {cls.__name__}.__init__ must accept dtype= (minisc.load "
                        "passes it); add `dtype=np.float32` and pass it on to Layer.__init__")
    LAYER_TYPES[cls.__name__] = cls
    return cls


__all__ = ["Layer", "WindowedLayer", "register_layer", "SharpCosSim2D", "MaxAbsPool2D", "MaxPool2D", "Dense",
           "Flatten", "Conv2D", "ReLU", "Standardize", "LAYER_TYPES"]
