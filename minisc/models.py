"""Named architectures for 28x28 grey-scale images (MNIST, Fashion-MNIST).

    build_model("scs")       the flagship SCS network
    build_model("scs-tiny")  an SCS network of at most 2,000 parameters
    build_model("convnet")   a ConvNet with the flagship's shape: Conv2D + ReLU + MaxPool2D
    build_model("reference") the 52,189-parameter network used for speed comparisons

Every model takes float32 images in [0, 1] of shape (N, 1, 28, 28), the form
``minisc.data.to_float`` produces, and returns 10 class scores (logits) per image. Any
rescaling of the input happens inside the model, so a saved model needs nothing else.

Why the SCS models have no Standardize layer: cosine similarity does not care about the scale
of a patch, and an MNIST background of exact zeros is what lets q silence blank patches.
Subtracting a mean would turn the background into a constant grey that every kernel responds
to. The ConvNet, like any ConvNet, trains better on standardized input, so it gets one.
"""

import numpy as np

from .layers import Conv2D, Dense, Flatten, MaxAbsPool2D, MaxPool2D, ReLU, SharpCosSim2D, Standardize
from .layers.base import as_rng
from .model import Sequential

INPUT_SHAPE = (1, 28, 28)


def scs(rng=None, dtype=np.float32, n_classes=10):
    """The flagship: three SCS blocks, each followed by max-abs pooling, and a linear read-out.

    28x28 -> SCS 5x5, 16 kernels, padding 2 -> 28x28 -> pool -> 14x14
          -> SCS 5x5, 32 kernels, padding 2 -> 14x14 -> pool -> 7x7
          -> SCS 3x3, 32 kernels             ->  5x5  -> pool -> 2x2 -> Dense(128 -> 10)
    """
    r = as_rng(rng)
    return Sequential([
        SharpCosSim2D(1, 16, 5, padding=2, dtype=dtype, rng=r),
        MaxAbsPool2D(2, dtype=dtype),
        SharpCosSim2D(16, 32, 5, padding=2, dtype=dtype, rng=r),
        MaxAbsPool2D(2, dtype=dtype),
        SharpCosSim2D(32, 32, 3, dtype=dtype, rng=r),
        MaxAbsPool2D(2, dtype=dtype),
        Flatten(dtype=dtype),
        Dense(32 * 2 * 2, n_classes, dtype=dtype, rng=r),
    ], input_shape=INPUT_SHAPE)


def scs_tiny(rng=None, dtype=np.float32, n_classes=10):
    """A small SCS network: 1,935 parameters.

    28x28 -> SCS 5x5, 8 kernels              -> 24x24 -> pool -> 12x12
          -> SCS 3x3, 8 kernels              -> 10x10 -> pool ->  5x5
          -> SCS 3x3, 10 kernels, padding 1  ->  5x5  -> pool ->  2x2 -> Dense(40 -> 10)
    """
    r = as_rng(rng)
    return Sequential([
        SharpCosSim2D(1, 8, 5, dtype=dtype, rng=r),
        MaxAbsPool2D(2, dtype=dtype),
        SharpCosSim2D(8, 8, 3, dtype=dtype, rng=r),
        MaxAbsPool2D(2, dtype=dtype),
        SharpCosSim2D(8, 10, 3, padding=1, dtype=dtype, rng=r),
        MaxAbsPool2D(2, dtype=dtype),
        Flatten(dtype=dtype),
        Dense(10 * 2 * 2, n_classes, dtype=dtype, rng=r),
    ], input_shape=INPUT_SHAPE)


def convnet(rng=None, dtype=np.float32, n_classes=10):
    """The flagship's shape with convolutions: Conv2D + ReLU + MaxPool2D in place of SCS + MaxAbsPool2D."""
    r = as_rng(rng)
    return Sequential([
        Standardize(dtype=dtype),
        Conv2D(1, 16, 5, padding=2, dtype=dtype, rng=r), ReLU(dtype=dtype), MaxPool2D(2, dtype=dtype),
        Conv2D(16, 32, 5, padding=2, dtype=dtype, rng=r), ReLU(dtype=dtype), MaxPool2D(2, dtype=dtype),
        Conv2D(32, 32, 3, dtype=dtype, rng=r), ReLU(dtype=dtype), MaxPool2D(2, dtype=dtype),
        Flatten(dtype=dtype),
        Dense(32 * 2 * 2, n_classes, dtype=dtype, rng=r),
    ], input_shape=INPUT_SHAPE)


def reference(rng=None, dtype=np.float32, n_classes=10):
    """The 52,189-parameter network of the speed comparisons (SCS 24-48-48, no padding until the last)."""
    r = as_rng(rng)
    return Sequential([
        SharpCosSim2D(1, 24, 5, dtype=dtype, rng=r), MaxAbsPool2D(2, dtype=dtype),
        SharpCosSim2D(24, 48, 5, dtype=dtype, rng=r), MaxAbsPool2D(2, dtype=dtype),
        SharpCosSim2D(48, 48, 3, padding=1, dtype=dtype, rng=r), MaxAbsPool2D(2, dtype=dtype),
        Flatten(dtype=dtype),
        Dense(48 * 2 * 2, n_classes, dtype=dtype, rng=r),
    ], input_shape=INPUT_SHAPE)


MODELS = {"scs": scs, "scs-tiny": scs_tiny, "convnet": convnet, "reference": reference}


def build_model(name, rng=None, dtype=np.float32, n_classes=10):
    """A fresh, randomly initialised model by name: one of MODELS ("scs", "scs-tiny", ...)."""
    if name not in MODELS:
        raise ValueError(f"build_model: unknown model {name!r}; choose one of {sorted(MODELS)}")
    return MODELS[name](rng=rng, dtype=dtype, n_classes=n_classes)
