"""minisc's layers, one concept per module. See base.py for the contract they all follow."""

from .base import Layer
from .conv import Conv2D, ReLU
from .dense import Dense, Flatten
from .pooling import MaxAbsPool2D, MaxPool2D
from .scs import SharpCosSim2D
from .standardize import Standardize

# Every layer class minisc.load can rebuild from a saved file, by class name.
LAYER_TYPES = {cls.__name__: cls for cls in (
    SharpCosSim2D, MaxAbsPool2D, MaxPool2D, Dense, Flatten, Conv2D, ReLU, Standardize)}



def register_layer(cls):
    """Make a layer class of your own known to minisc.load (usable as a class decorator)."""
    if not (isinstance(cls, type) and issubclass(cls, Layer)):
        raise TypeError(f"register_layer expects a Layer subclass, got {cls!r}")
    LAYER_TYPES[cls.__name__] = cls
    return cls


__all__ = ["Layer", "register_layer", "SharpCosSim2D", "MaxAbsPool2D", "MaxPool2D", "Dense", "Flatten", "Conv2D",
           "ReLU", "Standardize", "LAYER_TYPES"]
