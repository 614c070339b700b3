"""Threads over batch chunks: the one place where minisc puts more than one core to work.

NumPy runs matrix products on several cores (its BLAS library has threads of its own) but every
other operation, exp, log, the divisions and the pooling comparisons, on one. In an SCS layer
those elementwise passes are most of the work. Yet the examples of a batch are independent
until their gradients are summed, so the batch can be cut into chunks that go through the
network side by side:

    forward:   x[0:50]  -> layers (copy 1) -> out[0:50]       out = concatenate(...)
               x[50:100] -> layers (copy 2) -> out[50:100]
    backward:  dL/dout[0:50]  -> copy 1 -> grads_1
               dL/dout[50:100] -> copy 2 -> grads_2            grads = grads_1 + grads_2

A "copy" of a layer here is a *replica* (``Layer.replica()``): it shares the layer's parameter
arrays and has its own gradients and its own cache, so two chunks never write to the same
memory. The gradients of the chunks are added in chunk order, and the chunks are always cut the
same way for the same batch size and thread count, so a run is bit-for-bit repeatable for a
given seed and thread count. A different thread count adds the same numbers in another order,
which changes the last bits (about 1e-7 relative in float32), as any reordering of a sum does.

NumPy releases Python's global interpreter lock inside its loops, so the threads really do run
at the same time. While a chunk runs, the BLAS library of that thread is asked to use one core
(two chunks each asking for all cores would fight over them). If minisc cannot find NumPy's
OpenBLAS (another BLAS, another build), it leaves BLAS alone and, unless told otherwise,
uses one thread.

``Sequential.forward`` and ``Sequential.backward`` use this module; layers never do, so every
layer file stays single-threaded and reads as its math.

    minisc.set_num_threads(1)     # everything on one thread, as a debugger likes it
    minisc.get_num_threads()      # default: $MINISC_NUM_THREADS, else the CPUs this process
                                  # may use (1 when NumPy's BLAS is not OpenBLAS)
"""

import ctypes
import functools
import glob
import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np

# Examples: a smaller chunk is not worth a thread of its own. Measured on 2 cores
# (benchmarks/README.md): splitting a batch of 64 in two made a training step slower or no
# faster for every model tried (scs-tiny 2.0x, scs 1.1x, fashion-2764 1.03x); batches of 100
# and 128 gained for the record and reference networks. 50 keeps those splits and leaves batches of 64 whole.
MIN_CHUNK = 50

_lock = threading.Lock()
_num_threads = None     # set on first use (see get_num_threads)
_pool = None


def _cpu_count():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:                      # macOS, Windows
        return os.cpu_count() or 1


def _threads_from_env():
    text = os.environ.get("MINISC_NUM_THREADS", "").strip()
    if not text:
        # Without a way to keep each chunk's BLAS on one core, the chunks' matrix products
        # would compete for all cores at once, which can be slower than no chunks at all.
        return _cpu_count() if _openblas_local_setter() is not None else 1
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"MINISC_NUM_THREADS must be a whole number >= 1, got {text!r}")
    return n


def get_num_threads():
    """How many threads a batch is split across (1: no splitting)."""
    global _num_threads
    if _num_threads is None:
        _num_threads = _threads_from_env()
    return _num_threads


def set_num_threads(n):
    """Split each batch across ``n`` threads from now on (n >= 1; 1 turns splitting off)."""
    global _num_threads, _pool
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"set_num_threads: n must be a whole number >= 1, got {n!r}")
    with _lock:
        _num_threads = int(n)
        if _pool is not None:
            _pool.shutdown(wait=True)
            _pool = None


def chunks(n_examples, n_threads=None):
    """The slices a batch of ``n_examples`` is cut into: as equal as possible, in order, each at
    least MIN_CHUNK examples long (so small batches stay whole). Always the same for the same
    arguments."""
    n_threads = get_num_threads() if n_threads is None else n_threads
    parts = max(1, min(n_threads, n_examples // MIN_CHUNK))
    edges = [n_examples * i // parts for i in range(parts + 1)]
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True)]


# ---------------------------------------------------------------------------------------------
# One core of BLAS per chunk. NumPy's wheels ship OpenBLAS as a library of their own; OpenBLAS
# 0.3.27 and newer can set the thread count of the calling thread only.
@functools.lru_cache(maxsize=1)
def _openblas_local_setter():
    here = os.path.dirname(np.__file__)
    for path in sorted(glob.glob(os.path.join(here + ".libs", "*openblas*")) +
                       glob.glob(os.path.join(here, ".dylibs", "*openblas*"))):
        try:
            lib = ctypes.CDLL(path)
            setter = lib.openblas_set_num_threads_local
        except (OSError, AttributeError):
            continue
        setter.argtypes = [ctypes.c_int]
        setter.restype = ctypes.c_int
        return setter
    return None


def _worker_start():
    setter = _openblas_local_setter()
    if setter is not None:
        setter(1)


def _forget_pool():
    # A forked child (multiprocessing) inherits the pool object but none of its threads.
    global _pool, _lock
    _pool, _lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _get_pool():
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=get_num_threads(), initializer=_worker_start,
                                       thread_name_prefix="minisc")
        return _pool


def run(fn, *arg_lists):
    """[fn(*args) for args in zip(*arg_lists)], each call on a thread of its own, in order.

    An exception in any call is raised here, after all calls have finished."""
    futures = [_get_pool().submit(fn, *args) for args in zip(*arg_lists, strict=True)]
    wait(futures)
    return [f.result() for f in futures]
