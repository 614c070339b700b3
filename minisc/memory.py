"""Keep freed memory for the next step: three settings of the C memory allocator, on Linux.

A training step makes the same large arrays every time (patch matrices, cosines, powers and
their gradients: megabytes each) and frees them when the step is over. NumPy takes that memory
from the C library's ``malloc``. By default glibc's ``malloc`` gives a freed block back to the
operating system when it is large (or when the free space at the top of its heap grows past a
threshold), and the next step's arrays must then be mapped in again, one 4 KB page at a time:
every page costs a *page fault*, and the kernel fills it with zeros before NumPy writes it.

What that costs depends on how much else the process allocates and on threads. Measured on
2 cores with ``benchmarks/memory_ab.py`` (epochs of Adam steps on Fashion-MNIST batches, fresh
processes taking turns, medians of 4 rounds): ``fashion-2764`` at batch 100 on one thread,
84.5 ms a step and 265 page faults with the settings below against 91.3 ms and 983 faults
with glibc's own (0.93; an earlier measurement with BLAS on both cores gave 0.86); with the
batch split over 2 threads, 68.5 against 71.1 ms (0.96), and the reference network at batch
128, 54.4 against 52.9 ms (1.03): within the noise. Nothing about the arithmetic changes:
the same numbers are computed, in the same order.

``keep_freed_memory()`` asks glibc (``mallopt``) to

- serve blocks of up to 32 MB from its heap instead of mapping each one on its own
  (``M_MMAP_THRESHOLD``, 32 MB being the largest glibc allows on 64-bit machines),
- keep up to 1 GB of free space at the top of its heaps instead of handing it back
  (``M_TRIM_THRESHOLD``), and
- keep one heap for all threads (``M_ARENA_MAX``): with a heap per thread, as glibc gives
  them, the threads that run a batch's chunks (minisc/parallel.py) went on faulting about as
  often as without the first two settings,

so each step reuses the pages of the step before. The price: the process keeps the memory of
its largest step until it ends (its resident size stays at its high-water mark): a forward
pass of 2,048 images through the flagship in evaluation mode peaked at 195 MB instead of 155 MB.

minisc calls it once, when it is imported; set the environment variable
``MINISC_KEEP_MEMORY=0`` before importing minisc to leave the allocator as it is. Elsewhere
than glibc (macOS, Windows, musl) it does nothing and returns False.
"""

import ctypes
import os

M_TRIM_THRESHOLD = -1       # mallopt's option numbers, from glibc's <malloc.h>
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MMAP_THRESHOLD = 32 * 2**20     # blocks up to 32 MB come from the heap
TRIM_THRESHOLD = 2**30          # keep up to 1 GB of free heap top
ARENA_MAX = 1                   # one heap for all threads

_kept = False


def _glibc():
    """glibc's C library as a ctypes handle, or None when this is not glibc."""
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc"):
            return None
        return ctypes.CDLL("libc.so.6")
    except (AttributeError, ValueError, OSError):       # no confstr name, or no libc.so.6
        return None


def keep_freed_memory():
    """Ask glibc's malloc to keep freed memory for reuse (see the module docstring).

    Returns True when all three settings were taken, False when this is not glibc or glibc refused.
    """
    global _kept
    libc = _glibc()
    if libc is None or not hasattr(libc, "mallopt"):
        return False
    # mallopt returns 1 on success, 0 when it refuses a value
    ok = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    ok = libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and ok
    ok = libc.mallopt(M_ARENA_MAX, ARENA_MAX) == 1 and ok
    _kept = _kept or ok
    return ok


def keep_memory_from_env():
    """What ``MINISC_KEEP_MEMORY`` asks for: True when unset, empty or "1", False for "0"."""
    text = os.environ.get("MINISC_KEEP_MEMORY", "").strip()
    if text not in ("", "0", "1"):
        raise ValueError(f"MINISC_KEEP_MEMORY must be 0 (leave the C allocator alone) or 1 "
                         f"(keep freed memory, the default), got {text!r}")
    return text != "0"


def freed_memory_kept():
    """True when keep_freed_memory() has changed the allocator's settings in this process."""
    return _kept
