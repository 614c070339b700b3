"""minisc: Sharpened Cosine Similarity networks in plain NumPy, with every gradient by hand.

Arrays are channels-first, (N, C, H, W), and float32 unless you ask for float64.

    from minisc import SharpCosSim2D, MaxAbsPool2D, Flatten, Dense, Sequential
    model = Sequential([SharpCosSim2D(1, 8, 5), MaxAbsPool2D(2), Flatten(), Dense(8 * 12 * 12, 10)])
"""

from .gradcheck import gradcheck
from .layers import (
    Conv2D,
    Dense,
    Flatten,
    Layer,
    MaxAbsPool2D,
    MaxPool2D,
    ReLU,
    SharpCosSim2D,
    Standardize,
    register_layer,
)
from .losses import SoftmaxCrossEntropy, accuracy
from .memory import keep_freed_memory, keep_memory_from_env
from .model import Sequential, load
from .optim import SGD, Adam
from .parallel import get_num_threads, get_parallel_mode, set_num_threads, set_parallel_mode

# Reuse freed memory from one training step to the next instead of page-faulting it back in
# (minisc/memory.py explains; MINISC_KEEP_MEMORY=0 leaves the C allocator alone).
if keep_memory_from_env():
    keep_freed_memory()

__version__ = "0.1.0"

__all__ = ["SharpCosSim2D", "MaxAbsPool2D", "MaxPool2D", "Dense", "Flatten", "Conv2D", "ReLU",
           "Standardize", "Layer", "register_layer", "Sequential", "load", "SoftmaxCrossEntropy",
           "accuracy", "SGD", "Adam", "gradcheck", "set_num_threads", "get_num_threads",
           "set_parallel_mode", "get_parallel_mode"]
