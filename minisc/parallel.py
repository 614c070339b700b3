"""Batch chunks side by side: the one place where minisc puts more than one core to work.

NumPy runs matrix products on several cores (its BLAS library has threads of its own) but every
other operation, exp, log, the divisions and the pooling comparisons, on one. In an SCS layer
those elementwise passes are most of the work. Yet the examples of a batch are independent
until their gradients are summed, so the batch can be cut into chunks that go through the
network side by side:

    forward:   x[0:50]  -> layers (copy 1) -> out[0:50]       out = concatenate(...)
               x[50:100] -> layers (copy 2) -> out[50:100]
    backward:  dL/dout[0:50]  -> copy 1 -> grads_1
               dL/dout[50:100] -> copy 2 -> grads_2            grads = grads_1 + grads_2

A "copy" of a layer here is a *replica* (``Layer.replica()``): the layer's parameters with its
own gradients and its own cache, so two chunks never write to the same memory. The gradients
of the chunks are added in chunk order, and the chunks are always cut the same way for the same
batch size and chunk count, so a run is bit-for-bit repeatable for a given seed and chunk
count. A different count adds the same numbers in another order, which changes the last bits
(about 1e-7 relative in float32), as any reordering of a sum does.

Where the chunks run: processes or threads
------------------------------------------
*Threads* share the layers' parameter arrays and need no copying. NumPy lets go of Python's
global interpreter lock (GIL) inside its loops over large arrays, so those loops do run at the
same time; but every Python line of every layer, and NumPy's own work of checking arguments and
making each result array, needs the lock, one thread at a time. A training step of
fashion-2764 on a batch of 2, nearly nothing but that work, takes about 7 ms, and two threads
waiting on each other for the lock lose about twice that per step: two chunk threads trained
fashion-2764 about 30% slower than two processes side by side on the same two cores
(``benchmarks/threads_vs_processes.py`` measures it; benchmarks/README.md has the figures).

*Worker processes* each have their own interpreter and their own lock. Each step, the replicas
(parameters included: a few kilobytes to a few hundred for minisc's models) and the chunk are
pickled and sent down a pipe to a worker, which runs the chunk's forward pass and keeps the
replicas, caches and all, until the chunk's backward pass, then sends back the gradients. The
last chunk never leaves: while the workers run the others, this process runs it itself, on
one BLAS thread, instead of only waiting for their answers. So n chunks need n - 1 workers,
one process per core, and one chunk fewer to pickle. (On 2 cores, against two workers with
this process waiting: 0.94 of the training step of fashion-2764 at batch 100 and 0.92 of the
flagship's at 128, both with their pools folded; benchmarks/README.md.) The pipes to a worker
are widened to a megabyte where the system allows it (``PIPE_BYTES``), so that a request or a
reply of a few hundred kilobytes goes through in one piece. The workers are
started once, with ``python -c`` (no ``fork``: a process with BLAS threads running should not
fork, and a fresh interpreter does not re-run your script), and live until the program ends.

A worker runs the layer files as they were on disk when it started, and every chunk must run
the same code. So layers whose class a fresh interpreter cannot import (defined in a notebook
or in the script you run) go through threads instead, with the same results, and so do
layers whose class has a method swapped in while the program runs
(``SharpCosSim2D.forward = my_forward`` in a notebook: minisc notices a function defined
outside the class's own file) and layers made before their file was reloaded. A model built
after a layer file was edited and reloaded (``importlib.reload`` in a running notebook) gets
fresh workers, which import the file anew: minisc notices a new class under a name the
workers already know.

Processes are the default on Linux, where they were measured; threads elsewhere. While a chunk
runs on a thread, that thread's BLAS is asked to use one core (two chunks each asking for all
cores would fight over them); a worker process's BLAS uses one core. If minisc cannot find
NumPy's OpenBLAS (another BLAS, another build), threads leave BLAS alone and, unless told
otherwise, minisc then uses one chunk.

``Sequential.forward`` and ``Sequential.backward`` use this module; layers never do, so every
layer file stays single-threaded and reads as its math.

    minisc.set_num_threads(1)     # one chunk, everything in this thread, as a debugger likes it
    minisc.get_num_threads()      # default: $MINISC_NUM_THREADS, else the CPUs this process
                                  # may use
    minisc.set_parallel_mode("threads")    # or "processes"; default: $MINISC_PARALLEL, else
                                           # processes on Linux, threads elsewhere
"""

import atexit
import contextlib
import ctypes
import functools
import glob
import os
import pickle
import signal
import subprocess
import sys
import threading
import types
import warnings
import weakref
from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np

# Examples: a smaller chunk is not worth a worker or thread of its own. Measured on 2 cores
# (benchmarks/README.md, "Where chunks do not pay"):
# - in worker processes, splitting the lessons' batch of 64 in two made a training step
#   faster for scs (0.71 of the time), convnet (0.77), the reference network (0.86) and, just,
#   scs-tiny (0.97): chunks of 32 pay;
# - in threads the same split made it slower or no faster for every model tried (scs-tiny
#   2.0x, scs 1.1x, fashion-2764 1.03x), while batches of 100 and 128 gained: 50 keeps those
#   splits and leaves batches of 64 whole.
MIN_CHUNK = 32              # worker processes
MIN_CHUNK_THREADS = 50      # threads

MODES = ("processes", "threads")

_lock = threading.RLock()
_num_threads = None     # set on first use (see get_num_threads)
_mode = None            # likewise (see get_parallel_mode)
_pool = None            # the chunk threads
_workers = None         # the worker processes
_sent = {}              # "module.Class" -> the class the running workers were sent chunks of


def _cpu_count():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:                      # macOS, Windows
        return os.cpu_count() or 1


def _threads_from_env():
    text = os.environ.get("MINISC_NUM_THREADS", "").strip()
    if not text:
        # Without a way to keep each chunk thread's BLAS on one core, the chunks' matrix
        # products would compete for all cores at once, which can be slower than no chunks at
        # all. Worker processes set their BLAS to one core when they start.
        if get_parallel_mode() == "processes" or _openblas_local_setter() is not None:
            return _cpu_count()
        return 1
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
    """Split each batch into ``n`` chunks from now on, each on a thread or worker process of its
    own (n >= 1; 1 turns splitting off)."""
    global _num_threads
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"set_num_threads: n must be a whole number >= 1, got {n!r}")
    with _lock:
        _num_threads = int(n)
        _stop_pools()


def get_parallel_mode():
    """Where chunks run: "processes" or "threads" (see the module docstring)."""
    global _mode
    if _mode is None:
        text = os.environ.get("MINISC_PARALLEL", "").strip().lower()
        if text and text not in MODES:
            raise ValueError(f"MINISC_PARALLEL must be 'processes' or 'threads', got {text!r}")
        _mode = text or ("processes" if sys.platform.startswith("linux") else "threads")
    return _mode


def set_parallel_mode(mode):
    """Run batch chunks in worker "processes" or in "threads" from now on."""
    global _mode
    if mode not in MODES:
        raise ValueError(f"set_parallel_mode: mode must be 'processes' or 'threads', got {mode!r}")
    with _lock:
        _mode = mode
        _stop_pools()


def _stop_pools():
    """Stop the chunk threads and worker processes; the next split starts new ones (hold _lock)."""
    global _pool, _workers
    if _pool is not None:
        _pool.shutdown(wait=True)
        _pool = None
    if _workers is not None:
        for worker in _workers:
            worker.stop()
        _workers = None
    _sent.clear()


def chunks(n_examples, n_threads=None):
    """The slices a batch of ``n_examples`` is cut into: as equal as possible, in order, each at
    least MIN_CHUNK examples long (MIN_CHUNK_THREADS in threads), so small batches stay whole.
    Always the same for the same arguments and mode."""
    n_threads = get_num_threads() if n_threads is None else n_threads
    smallest = MIN_CHUNK if get_parallel_mode() == "processes" else MIN_CHUNK_THREADS
    parts = max(1, min(n_threads, n_examples // smallest))
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


@contextlib.contextmanager
def _one_blas_thread():
    """This thread's BLAS on one core for a while (the main process's chunk, beside the workers)."""
    setter = _openblas_local_setter()
    before = setter(1) if setter is not None else None      # it returns the count it replaces
    try:
        yield
    finally:
        if setter is not None:
            setter(before)


def _forget_pool():
    # A forked child (multiprocessing) inherits the pool objects but none of their threads, and
    # pipes to workers that belong to its parent.
    global _pool, _lock, _workers
    _pool, _lock, _workers = None, threading.RLock(), None


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


# ---------------------------------------------------------------------------------------------
# What Sequential calls: a batch's chunks forward, then the same chunks backward.
def forward_chunks(layers, xs, keep):
    """Each chunk ``xs[i]`` through replicas of ``layers``, side by side.

    Returns the chunks' outputs, in order, and what ``backward_chunks`` needs (None unless
    ``keep``: evaluation keeps nothing)."""
    from .model import _forward_through
    if get_parallel_mode() == "processes":
        blob = _portable(layers)
        workers = _get_workers({type(layer) for layer in layers}) if blob is not None else None
        if workers is not None:
            # the first chunks in the workers, the last one here, meanwhile
            workers = workers[:len(xs) - 1]
            here = [layer.replica() for layer in layers]
            replies, out_here = _round_trip(workers, [("forward", blob, x, keep) for x in xs[:-1]],
                                            here=lambda: _forward_through(here, xs[-1]))
            outs, ids = [out for out, _ in replies] + [out_here], [i for _, i in replies]
            return outs, (_KeptInWorkers(workers, ids, here) if keep else None)
    replicas = [[layer.replica() for layer in layers] for _ in xs]
    outs = run(_forward_through, replicas, xs)
    return outs, (replicas if keep else None)


def backward_chunks(kept, dys):
    """The chunks' backward passes: ([each chunk's list of its layers' grads], [dL/dx of each
    chunk, or None])."""
    if isinstance(kept, _KeptInWorkers):
        if _workers is None or any(worker not in _workers for worker in kept.workers):
            raise RuntimeError("minisc: the worker processes were restarted (set_num_threads or "
                               "set_parallel_mode) between this forward pass and its backward; "
                               "run the forward pass again")
        from .model import _backward_through
        results, dx_here = _round_trip(kept.workers,
                                       [("backward", i, dy) for i, dy in zip(kept.ids, dys[:-1])],
                                       here=lambda: _backward_through(kept.here, dys[-1]))
        return ([grads for grads, _ in results] + [[layer.grads for layer in kept.here]],
                [dx for _, dx in results] + [dx_here])
    from .model import _backward_through
    dxs = run(_backward_through, kept, dys)
    return [[layer.grads for layer in chunk] for chunk in kept], dxs


# ---------------------------------------------------------------------------------------------
# Worker processes. Each one reads (request, ...) tuples from its stdin and writes ("ok", value)
# or ("error", exception) to its stdout, pickled, one reply per request.
class WorkerDied(RuntimeError):
    """A worker process ended without answering (killed, out of memory, a crash)."""


class _Worker:
    def __init__(self):
        # The worker must import the very modules this process imported, so its sys.path is
        # set to ours before anything else: `python -c` would put its working folder first,
        # where another copy of minisc (a second checkout, a student's copy) may sit.
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
                   MINISC_NUM_THREADS="1",
                   MINISC_WORKER_PATH=os.pathsep.join([p or os.getcwd() for p in sys.path]))
        code = ("import os, sys; sys.path[:] = os.environ['MINISC_WORKER_PATH'].split(os.pathsep); "
                "from minisc.parallel import serve; serve()")
        self.proc = subprocess.Popen([sys.executable, "-c", code],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        for pipe in (self.proc.stdin, self.proc.stdout):
            _widen(pipe)
        self.release = []      # ids of kept replicas the worker may drop, sent with the next request

    def send(self, request):
        try:
            pickle.dump((request, self.release), self.proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            self.proc.stdin.flush()
        except OSError:                         # a broken pipe: the worker is gone
            self._died()
        self.release = []

    def receive(self):
        """("ok", value) or ("error", the exception a chunk raised)."""
        try:
            return pickle.load(self.proc.stdout)
        except (EOFError, OSError, pickle.UnpicklingError):
            self._died()

    def _died(self):
        try:
            code = self.proc.wait(timeout=1)
        except subprocess.TimeoutExpired:
            code = None
        how = (f"killed by signal {-code}" if code is not None and code < 0
               else f"exit code {code}" if code is not None else "no longer answering")
        _drop_workers()
        raise WorkerDied(f"minisc: a worker process running a batch chunk stopped ({how}; signal 9 "
                         "is often the system running out of memory); the next batch starts new "
                         "ones. If this repeats, minisc.set_parallel_mode('threads') runs chunks "
                         "in threads instead")

    def stop(self):
        try:
            self.proc.stdin.close()             # the worker reads end-of-file and returns
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            try:
                pipe.close()
            except OSError:
                pass


# A pipe holds 64 KB on Linux; a chunk's request (the replicas, then the images) and a reply
# (the gradients) run to a few hundred. Through a 64 KB pipe they go in pieces, the writer
# waiting after each one for the reader to be woken up and empty the pipe; through a 1 MB pipe,
# in one write and one read. (benchmarks/README.md, "Pipes a megabyte wide".)
PIPE_BYTES = 1 << 20


def _widen(pipe):
    """Make ``pipe`` hold PIPE_BYTES (Linux's F_SETPIPE_SZ; elsewhere, or if the system refuses,
    it stays as it is: slower, not wrong)."""
    try:
        import fcntl
        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    except (ImportError, AttributeError, OSError):
        pass


class _KeptInWorkers:
    """The replicas a training forward left in the workers (and ``here``, those of the chunk
    this process ran), until backward (or until this handle is dropped: then each worker is
    told to let its replicas go)."""

    def __init__(self, workers, ids, here):
        self.workers, self.ids, self.here = workers, ids, here
        weakref.finalize(self, _release, workers, self.ids)


def _release(workers, ids):
    for worker, i in zip(workers, ids):
        worker.release.append(i)


def _get_workers(classes=()):
    """The running workers (one fewer than the thread count: this process runs the last chunk),
    started if need be; None if this system cannot start them (then minisc says so once and
    uses threads from now on).

    ``classes``: the layer classes about to be sent. If one of them is a new class of a name
    the workers already know, its file was reloaded since they started (importlib.reload in a
    notebook): fresh workers import it anew, so that every chunk runs the same code."""
    global _workers, _mode
    with _lock:
        family = {f"{k.__module__}.{k.__qualname__}": k for cls in classes for k in cls.__mro__[:-1]}
        if _workers is not None and any(_sent.get(name, k) is not k for name, k in family.items()):
            _stop_pools()
        if _workers is None:
            started = []
            try:
                for _ in range(get_num_threads() - 1):
                    started.append(_Worker())
            except OSError as e:
                for worker in started:
                    worker.kill()
                _mode = "threads"
                warnings.warn(f"minisc: could not start worker processes ({e}); batch chunks "
                              "run in threads from now on", RuntimeWarning, stacklevel=4)
                return None
            _workers = started
        _sent.update(family)
        return _workers


def _drop_workers():
    global _workers
    with _lock:
        if _workers is not None:
            for worker in _workers:
                worker.kill()
            _workers = None


def _round_trip(workers, requests, here):
    """Send one request to each worker, run ``here()`` in this process (on one BLAS thread)
    while they work, then return ([their answers, in order], what here() returned). An error
    in any chunk, here or there, is raised after all replies are in, so every worker is ready
    for the next request."""
    with _lock:
        try:
            for worker, request in zip(workers, requests):
                worker.send(request)
            try:
                with _one_blas_thread():
                    local = ("ok", here())
            except Exception as e:                  # noqa: BLE001  (raised below, after the replies)
                local = ("error", e)
            replies = [worker.receive() for worker in workers]
        except BaseException:
            # Ctrl-C (or a dead worker) between a request and its reply: the pipes may hold
            # half a conversation, so the next split starts new workers.
            _drop_workers()
            raise
    for status, value in replies + [local]:
        if status == "error":
            raise value
    return [value for _, value in replies], local[1]


def _as_on_disk(cls):
    """False if ``cls`` (or a class it inherits from) is defined in __main__, is no longer the
    class its file defines (an object made before the file was reloaded), or has a function
    that was defined in another file than the class itself (a method swapped in while the
    program runs): what a worker would import is not what this process runs."""
    for klass in cls.__mro__[:-1]:                      # every class but object
        if klass.__module__ == "__main__":
            return False
        module = sys.modules.get(klass.__module__)
        if "." not in klass.__qualname__ and getattr(module, klass.__qualname__, None) is not klass:
            return False                                # its file was reloaded since it was made
        for value in vars(klass).values():
            if isinstance(value, types.FunctionType) and value.__module__ != klass.__module__:
                return False
    return True


def _portable(layers):
    """The layers pickled for a worker (replicas: no caches), or None if a fresh interpreter
    could not rebuild them as they are here (a class defined in __main__, a method swapped in,
    an attribute pickle cannot take)."""
    if not all(_as_on_disk(cls) for cls in {type(layer) for layer in layers}):
        return None
    try:
        return pickle.dumps([layer.replica() for layer in layers], protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError):
        return None


@atexit.register
def _stop_at_exit():
    with _lock:
        _stop_pools()


def serve(stdin=None, stdout=None):
    """A worker process's loop (started by _Worker): forward and backward passes of chunks."""
    from .model import _backward_through, _forward_through
    signal.signal(signal.SIGINT, signal.SIG_IGN)    # Ctrl-C is for the main process to handle
    stdin = stdin or sys.stdin.buffer
    stdout = stdout or sys.stdout.buffer
    sys.stdout = sys.stderr                 # a print in a layer must not land among the replies
    kept, next_id = {}, 0
    while True:
        try:
            request, release = pickle.load(stdin)
        except EOFError:
            return
        for i in release:
            kept.pop(i, None)
        try:
            if request[0] == "forward":
                _, blob, x, keep = request
                layers = pickle.loads(blob)
                reply = ("ok", (_forward_through(layers, x), next_id))
                if keep:
                    kept[next_id] = layers
                next_id += 1
            else:
                _, i, dy = request
                layers = kept[i]                    # kept until released: backward may repeat
                dx = _backward_through(layers, dy)
                reply = ("ok", ([layer.grads for layer in layers], dx))
        except Exception as e:                      # noqa: BLE001  (sent back, raised there)
            reply = ("error", e)
        try:
            data = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:                           # noqa: BLE001  (an exception pickle refuses)
            data = pickle.dumps(("error", RuntimeError(repr(reply[1]))))
        stdout.write(data)
        stdout.flush()
