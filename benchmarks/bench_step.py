"""How fast is one SCS training step in minisc, and how does it compare with PyTorch?

    python benchmarks/bench_step.py                    # the full run, about four minutes
    python benchmarks/bench_step.py --quick            # a smoke test: a few repetitions
    python benchmarks/bench_step.py --threads 1        # one BLAS / PyTorch thread
    python benchmarks/bench_step.py --no-torch         # minisc only
    python benchmarks/bench_step.py --compile          # also time torch.compile

Scenario 1, the reference network (52,189 parameters) on random 28x28 float32 images:

    SCS(1->24, k5) MaxAbsPool(2) SCS(24->48, k5) MaxAbsPool(2) SCS(48->48, k3, padding 1)
    MaxAbsPool(2) Flatten Dense(192->10)

- median milliseconds of a training step: forward, SoftmaxCrossEntropy, backward. The
  optimizer is *not* in the step; one Adam update is timed on its own;
- median milliseconds of a forward pass (a training forward: it keeps what backward needs);
- each layer's forward and backward;
- the step's matrix-multiply work (GFLOP, counted from the layer shapes) per second, next to
  the float32 matrix-multiply speed NumPy reaches on this machine in the same run;
- the peak resident memory (ru_maxrss) of the process;
- with PyTorch installed (``pip install ".[torch]"``, never required): the same network in
  PyTorch (``torch_scs.py`` beside this file), checked to compute the same numbers, then timed
  in the same process, alternating with minisc, on the same number of threads.

Scenario 2: one epoch of the flagship lesson network (``minisc.models.build_model("scs")``)
over 60,000 images (the shipped MNIST sample digits, repeated), with Adam, in seconds.

Scenario 3: one epoch of the record network ``fashion-2764`` over 60,000 Fashion-MNIST
training images (the MNIST sample when Fashion-MNIST is not on the machine), batch 100, with
Adam, in seconds; and its PyTorch twin, built by ``torch_scs.py`` with the same parameters and
first checked to agree.

Threads. NumPy's matrix products run on OpenBLAS threads; everything else in NumPy runs on one
thread, so minisc splits each batch into one chunk per thread (``minisc/parallel.py``).
``--threads N`` sets OPENBLAS_NUM_THREADS, OMP_NUM_THREADS, MKL_NUM_THREADS and
MINISC_NUM_THREADS before NumPy is imported, and ``torch.set_num_threads(N)``. Without it, N is OPENBLAS_NUM_THREADS (or
OMP_NUM_THREADS) if set, else the number of CPUs, which is OpenBLAS's own default. The report
prints the thread count OpenBLAS itself says it uses. Compare numbers from one run only: other
programs on the machine, the thread count and the memory allocator all move absolute times.
"""

import argparse
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=128, help="batch size (default 128)")
    ap.add_argument("--reps", type=int, default=None,
                    help="timed repetitions of each measurement (default 40; 3 with --quick)")
    ap.add_argument("--threads", type=int, default=None,
                    help="BLAS and PyTorch threads (default: OPENBLAS_NUM_THREADS or the CPU count)")
    ap.add_argument("--minisc-threads", type=int, default=None,
                    help="threads for minisc's batch chunks only (default: as --threads; 1 shows "
                         "minisc without them)")
    ap.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile (slow to start)")
    ap.add_argument("--quick", action="store_true",
                    help="a smoke test: 3 repetitions and a 4-batch 'epoch'")
    ap.add_argument("--epoch-images", type=int, default=None,
                    help="images in the epoch scenario (default 60000; 4 batches with --quick; 0 skips it)")
    ap.add_argument("--model", default="scs",
                    help="minisc.models name for the epoch scenario (default scs, the flagship)")
    ap.add_argument("--record-images", type=int, default=None,
                    help="images in the record-network epoch scenario (default 60000; 4 batches "
                         "with --quick; 0 skips it)")
    ap.add_argument("--record-model", default="fashion-2764",
                    help="minisc.models name for that scenario (default fashion-2764)")
    ap.add_argument("--json", metavar="PATH", help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    if args.batch < 1:
        ap.error("--batch must be >= 1")
    if args.reps is None:
        args.reps = 3 if args.quick else 40
    if args.epoch_images is None:
        args.epoch_images = 4 * args.batch if args.quick else 60000
    if args.record_images is None:
        args.record_images = 4 * RECORD_BATCH if args.quick else 60000
    return args


RECORD_BATCH = 100      # the record networks' recipes use batches of 100


def choose_threads(requested):
    """The thread count to use, exported for OpenBLAS/OpenMP/MKL and minisc's batch chunks
    before NumPy is imported."""
    env = os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS")
    n = requested or (int(env) if env else os.cpu_count() or 1)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "MINISC_NUM_THREADS"):
        os.environ[var] = str(n)
    return n


def choose_minisc_threads(requested, threads):
    """minisc's own thread count (its batch chunks), exported before minisc is imported."""
    if requested is not None:
        if requested < 1:
            raise SystemExit("bench_step.py: --minisc-threads must be >= 1")
        os.environ["MINISC_NUM_THREADS"] = str(requested)
    return int(os.environ["MINISC_NUM_THREADS"])


if __name__ == "__main__":
    ARGS = parse_args()
    THREADS = choose_threads(ARGS.threads)
    MINISC_THREADS = choose_minisc_threads(ARGS.minisc_threads, THREADS)

# NumPy only now, after the thread settings above.
import numpy as np  # noqa: E402

try:
    import minisc  # noqa: E402
except ImportError:                       # run from a source checkout without installing
    sys.path.insert(0, str(HERE.parent))
    import minisc  # noqa: E402
from minisc import Adam, SoftmaxCrossEntropy  # noqa: E402
from minisc.layers import Dense, SharpCosSim2D  # noqa: E402


# ---------------------------------------------------------------------------------------------
# the networks
def reference_network(rng=0):
    """The 52,189-parameter network used for speed comparisons."""
    from minisc import Flatten, MaxAbsPool2D, Sequential
    r = np.random.default_rng(rng)
    return Sequential([
        SharpCosSim2D(1, 24, 5, rng=r), MaxAbsPool2D(2),
        SharpCosSim2D(24, 48, 5, rng=r), MaxAbsPool2D(2),
        SharpCosSim2D(48, 48, 3, padding=1, rng=r), MaxAbsPool2D(2),
        Flatten(), Dense(192, 10, rng=r),
    ], input_shape=(1, 28, 28))


def epoch_network(name, rng=0):
    """minisc.models.build_model(name) when minisc has it, else the reference network."""
    try:
        from minisc.models import build_model
    except ImportError:
        return "reference (minisc.models not available)", reference_network(rng)
    return name, build_model(name, rng=rng)


def folded(model):
    """minisc.models.fold_pools(model) (each SCS layer and the max-abs pool after it as one
    layer: the same numbers, faster), or None where minisc has no fold_pools."""
    try:
        from minisc.models import fold_pools
    except ImportError:
        return None
    return fold_pools(model)


def gemm_flops(model, batch):
    """Floating-point operations of the matrix products in one training step, per layer.

    An (m x k) @ (k x n) product costs 2*m*k*n. An SCS or Dense layer does one product forward
    and two backward (weights and input), the first layer only one backward (nobody needs the
    gradient of the images). Returns [(layer, forward_flops, backward_flops)].
    """
    rows = []
    shape = model.input_shape
    for layer in model.layers:
        out = layer.output_shape(shape)
        if isinstance(layer, SharpCosSim2D):
            kh, kw = layer.kernel_size
            m = batch * out[1] * out[2]                 # patches
            d = layer.in_channels * kh * kw             # numbers per patch
            one = 2 * m * d * layer.out_channels
        elif isinstance(layer, Dense):
            one = 2 * batch * layer.n_inputs * layer.n_outputs
        else:
            one = 0
        n_backward = 2 if layer.needs_input_grad else 1
        rows.append((layer, one, n_backward * one))
        shape = out
    return rows


# ---------------------------------------------------------------------------------------------
# timing helpers
def timed_ms(fn, reps, warmup=2):
    """Milliseconds of each of ``reps`` calls of fn, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - t))
    return times


def median_ms(fn, reps, warmup=2):
    return statistics.median(timed_ms(fn, reps, warmup))


def peak_rss_mb():
    """Peak resident set size of this process so far, in MB (ru_maxrss is in KB on Linux)."""
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024 / (1024 if sys.platform == "darwin" else 1)


def openblas_info():
    """(threads, core) that OpenBLAS reports, or (None, None) when it cannot be asked."""
    try:
        import ctypes
        with open("/proc/self/maps") as f:
            libs = sorted({line.split()[-1] for line in f if "openblas" in line.lower()})
        for path in libs:
            lib = ctypes.CDLL(path)
            for prefix, suffix in (("scipy_", "64_"), ("", "64_"), ("", "")):
                try:
                    get_threads = getattr(lib, f"{prefix}openblas_get_num_threads{suffix}")
                    get_core = getattr(lib, f"{prefix}openblas_get_corename{suffix}")
                except AttributeError:
                    continue
                get_core.restype = ctypes.c_char_p
                return int(get_threads()), get_core().decode()
    except OSError:
        pass
    return None, None


def gemm_peak(reps):
    """float32 GFLOP/s of NumPy's matrix product on 1024 x 1024 matrices, this run."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((1024, 1024), dtype=np.float32)
    b = rng.standard_normal((1024, 1024), dtype=np.float32)
    ms = median_ms(lambda: a @ b, max(reps, 5))
    return 2 * 1024 ** 3 / (ms / 1000) / 1e9


def cpu_flags():
    """The CPU feature flags the kernel reports (Linux), as a set of strings."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# ---------------------------------------------------------------------------------------------
# minisc measurements
class MiniscStep:
    """One training step of a minisc model on a fixed batch, and its pieces."""

    def __init__(self, model, x, y):
        self.model, self.x, self.y = model, x, y
        self.loss = SoftmaxCrossEntropy()
        self.opt = Adam(model, lr=1e-3)

    def forward(self):
        return self.model.forward(self.x)

    def step(self):
        """forward, loss, backward: the gradients of one batch (no parameter update)."""
        self.loss.forward(self.model.forward(self.x), self.y)
        self.model.backward(self.loss.backward())

    def layer_times(self, reps):
        """Median ms of each layer's forward and backward, and of the loss."""
        # As Sequential does it in threads mode: the batch in chunks (one per thread), each
        # through replicas of the layers; here one layer at a time, so that each layer can be
        # timed on its own. (In worker processes, minisc's default on Linux, the layers run out
        # of reach of this timer: the step and epoch figures are what those change.)
        from minisc import parallel
        layers = self.model.layers
        parts = parallel.chunks(len(self.x))
        fwd = [[] for _ in layers]
        bwd = [[] for _ in layers]
        loss_t = []
        def each_chunk(method, i, arrays):
            """Layer i's forward or backward on every chunk: on threads if there are several.
            (``replicas`` is read when called: the current repetition's.)"""
            if len(parts) == 1:
                return [getattr(layers[i], method)(arrays[0])]
            return parallel.run(lambda rep, a: getattr(rep[i], method)(a), replicas, arrays)

        for _rep in range(reps + 2):
            replicas = [[layer.replica() for layer in layers] for _ in parts]
            hs = [self.x[part] for part in parts]
            for i in range(len(layers)):
                t = time.perf_counter()
                hs = each_chunk("forward", i, hs)
                fwd[i].append(time.perf_counter() - t)
            t = time.perf_counter()
            self.loss.forward(np.concatenate(hs), self.y)
            g = self.loss.backward()
            loss_t.append(time.perf_counter() - t)
            gs = [g[part] for part in parts]
            for i in reversed(range(len(layers))):
                t = time.perf_counter()
                gs = each_chunk("backward", i, gs)
                bwd[i].append(time.perf_counter() - t)
        med = lambda v: 1000 * statistics.median(v[2:])  # noqa: E731  (first 2: warm-up)
        return [(layer, med(f), med(b)) for layer, f, b in zip(layers, fwd, bwd)], med(loss_t)


def run_epoch_minisc(model, images, labels, batch):
    """Seconds for one epoch of Adam training (shuffled mini-batches, including the update)."""
    loss = SoftmaxCrossEntropy()
    opt = Adam(model, lr=1e-3)
    order = np.random.default_rng(0).permutation(len(images))
    t = time.perf_counter()
    for i in range(0, len(images), batch):
        idx = order[i:i + batch]
        loss.forward(model.forward(images[idx]), labels[idx])
        model.backward(loss.backward())
        opt.step()
    return time.perf_counter() - t


def epoch_data(n_images, rng=0):
    """n_images float32 digits (the shipped sample repeated) and labels; random if unavailable."""
    try:
        from minisc.data import load_mnist_sample, to_float
        images, labels = load_mnist_sample()
        reps = -(-n_images // len(images))
        x = np.concatenate([to_float(images)] * reps)[:n_images]
        y = np.concatenate([labels.astype(np.int64)] * reps)[:n_images]
        return "MNIST sample digits, repeated", x, y
    except (ImportError, OSError, ValueError):
        r = np.random.default_rng(rng)
        return ("random images", r.random((n_images, 1, 28, 28), dtype=np.float32),
                r.integers(0, 10, n_images))


def record_data(n_images):
    """Fashion-MNIST training images when they are on this machine, else epoch_data's."""
    try:
        from minisc.data import load_fashion_mnist, to_float
        images, labels = load_fashion_mnist("train", download=False, progress=False)
    except (ImportError, OSError, ValueError, TypeError, RuntimeError):
        return epoch_data(n_images)
    reps = -(-n_images // len(images))
    x = np.concatenate([to_float(images)] * reps)[:n_images]
    y = np.concatenate([labels.astype(np.int64)] * reps)[:n_images]
    return "Fashion-MNIST training images", x, y


# ---------------------------------------------------------------------------------------------
# PyTorch measurements
def torch_setup(model, x, y, threads, compile_it=False):
    """The PyTorch twin of ``model`` and closures timing its step, forward and Adam update."""
    import torch
    import torch.nn.functional as F

    sys.path.insert(0, str(HERE))
    import torch_scs

    torch.set_num_threads(threads)
    net = torch_scs.from_minisc(model)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    run = torch.compile(net) if compile_it else net

    def step():
        net.zero_grad(set_to_none=True)
        F.cross_entropy(run(xt), yt).backward()

    def forward():
        return run(xt)

    return torch, torch_scs, net, step, forward, opt.step


def agreement(model, net, torch_scs, x, y):
    """Largest differences between minisc and its PyTorch twin.

    Returns (max |logit difference|, (name, worst relative gradient difference)), each
    gradient difference taken relative to the largest entry of that gradient array.
    """
    import torch
    import torch.nn.functional as F
    loss = SoftmaxCrossEntropy()
    logits = model.forward(x)
    loss.forward(logits, y)
    model.backward(loss.backward())
    net.zero_grad(set_to_none=True)
    out = net(torch.from_numpy(x))
    F.cross_entropy(out, torch.from_numpy(y)).backward()
    logit_diff = float(np.abs(logits - out.detach().numpy()).max())
    worst = ("", 0.0)
    for i, (layer, tgrads) in enumerate(zip(model.layers, torch_scs.minisc_grads(net))):
        for key, tg in tgrads.items():
            scale = max(float(np.abs(tg).max()), 1e-12)
            diff = float(np.abs(layer.grads[key] - tg).max()) / scale
            if diff >= worst[1]:
                worst = (f"layer {i} {key}", diff)
    return logit_diff, worst


def alternate(fns, reps, rounds):
    """(median, fastest) ms of each function, timed in alternating blocks of repetitions so
    that both see the same machine (other programs, clock speed) over the run."""
    times = {name: [] for name in fns}
    per_round = max(1, -(-reps // rounds))
    for _ in range(rounds):
        for name, fn in fns.items():
            times[name] += timed_ms(fn, per_round, warmup=1)
    return {name: (statistics.median(v), min(v)) for name, v in times.items()}


# ---------------------------------------------------------------------------------------------
def main(args, threads):
    results = {"batch": args.batch, "threads": threads, "reps": args.reps}
    blas_threads, blas_core = openblas_info()
    results.update(machine=cpu_name(), cpus=os.cpu_count(), python=platform.python_version(),
                   numpy=np.__version__, blas_threads=blas_threads, blas_core=blas_core)
    print("minisc training-step benchmark")
    print(f"  machine : {cpu_name()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}")
    print(f"  python {platform.python_version()}, numpy {np.__version__}, minisc {minisc.__version__}")
    print(f"  threads : {threads} requested; OpenBLAS reports "
          f"{blas_threads if blas_threads is not None else '?'} thread(s), "
          f"{blas_core or '?'} kernels; minisc splits batches across "
          f"{minisc.get_num_threads()} thread(s)")
    results["minisc_threads"] = minisc.get_num_threads()
    print(f"  batch {args.batch}, float32, {args.reps} repetitions per measurement; "
          "times are medians unless said otherwise")
    forced = os.environ.get("OPENBLAS_CORETYPE")
    if blas_core == "Haswell" and "avx512f" in cpu_flags():
        print("  note: OpenBLAS runs its AVX2 (Haswell) kernels on this AVX-512 CPU"
              + (f" (OPENBLAS_CORETYPE={forced} is set)" if forced else "")
              + "; OPENBLAS_CORETYPE=SkylakeX selects its AVX-512 kernels (see benchmarks/README.md)")
    results["openblas_coretype_env"] = forced

    rng = np.random.default_rng(0)
    model = reference_network()
    x = rng.random((args.batch, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, args.batch)
    ms = MiniscStep(model, x, y)
    print(f"\nScenario 1: the reference network, {model.n_params:,} parameters, random inputs")

    # the work, and what NumPy's matrix product can do here
    flops = gemm_flops(model, args.batch)
    total_flops = sum(f + b for _, f, b in flops)
    peak = gemm_peak(args.reps)

    rows, loss_ms = ms.layer_times(args.reps)
    print(f"\n  {'per layer (ms)':48s} forward  backward   matmul GFLOP")
    for (layer, f, b), (_, ff, bf) in zip(rows, flops):
        work = f"{(ff + bf) / 1e9:10.3f}" if ff else ""
        print(f"  {str(layer):48s} {f:7.2f}  {b:8.2f}   {work}")
    print(f"  {'SoftmaxCrossEntropy (forward + backward)':48s} {loss_ms:7.2f}")
    print(f"  {'sum':48s} {sum(r[1] for r in rows) + loss_ms:7.2f}  {sum(r[2] for r in rows):8.2f}"
          f"   {total_flops / 1e9:10.3f}")
    results["layers"] = [{"layer": str(layer), "forward_ms": f, "backward_ms": b}
                         for layer, f, b in rows]
    fmodel = folded(model)
    fms = None if fmodel is None else MiniscStep(fmodel, x, y)
    if fms is not None:
        # the same network with each SCS layer and its pool as one layer (fold_pools)
        frows, floss_ms = fms.layer_times(args.reps)
        print(f"\n  {'the same, pools folded into the SCS layers (ms)':66s} forward  backward")
        for layer, f, b in frows:
            print(f"  {str(layer):66s} {f:7.2f}  {b:8.2f}")
        print(f"  {'sum (loss included)':66s} {sum(r[1] for r in frows) + floss_ms:7.2f}  "
              f"{sum(r[2] for r in frows):8.2f}")
        results["layers_folded"] = [{"layer": str(layer), "forward_ms": f, "backward_ms": b}
                                    for layer, f, b in frows]

    step_ms = median_ms(ms.step, args.reps)
    fwd_ms = median_ms(ms.forward, args.reps)
    ms.step()
    adam_ms = median_ms(ms.opt.step, args.reps)
    rss = peak_rss_mb()
    rate = total_flops / (step_ms / 1000) / 1e9
    results.update(minisc_step_ms=step_ms, minisc_forward_ms=fwd_ms, minisc_adam_ms=adam_ms,
                   step_gflop=total_flops / 1e9, step_gflops=rate, gemm_peak_gflops=peak,
                   peak_rss_mb=rss)
    print()
    for label, value in (("training step: forward + loss + backward", step_ms),
                         ("forward only (training mode)", fwd_ms),
                         (f"Adam update of all {model.n_params:,} parameters", adam_ms)):
        print(f"  {label:48s} {value:7.2f} ms")
    print("  (the training step does not include the optimizer update)")
    print(f"  matrix-multiply work: {total_flops / 1e9:.3f} GFLOP per step -> {rate:.0f} GFLOP/s, "
          f"{100 * rate / peak:.0f}% of NumPy's float32 matmul on 1024 x 1024 here "
          f"({peak:.0f} GFLOP/s)")
    print(f"  peak resident memory (ru_maxrss): {rss:.0f} MB")

    have_torch = False
    if not args.no_torch:
        try:
            import torch  # noqa: F401
            have_torch = True
        except ImportError:
            print("\n  PyTorch is not installed: no comparison (pip install \".[torch]\" adds it).")
    if have_torch:
        torch, torch_scs, net, t_step, t_fwd, t_adam = torch_setup(model, x, y, threads)
        logit_diff, (worst_name, worst) = agreement(model, net, torch_scs, x, y)
        print(f"\n  PyTorch {torch.__version__}, {torch.get_num_threads()} threads: the same network "
              f"(torch_scs.py) with the same parameters")
        print(f"  agreement: logits within {logit_diff:.1e}; gradients within {worst:.1e} of each "
              f"array's largest entry (worst: {worst_name})")
        rounds = max(1, args.reps // 5)            # blocks of about 5 repetitions each
        contenders = {"minisc": ms.step, "torch": t_step}
        if fms is not None:
            contenders["folded"] = fms.step
        both = alternate(contenders, args.reps, rounds)
        fboth = alternate({"minisc": ms.forward, "torch": t_fwd}, args.reps, rounds)
        t_step()
        torch_adam = median_ms(t_adam, args.reps)
        ratio = both["minisc"][0] / both["torch"][0]
        results.update(torch=torch.__version__, torch_threads=torch.get_num_threads(),
                       alt_minisc_step_ms=both["minisc"][0], torch_step_ms=both["torch"][0],
                       alt_minisc_step_best_ms=both["minisc"][1], torch_step_best_ms=both["torch"][1],
                       ratio=ratio, alt_minisc_forward_ms=fboth["minisc"][0],
                       torch_forward_ms=fboth["torch"][0], torch_adam_ms=torch_adam)
        print(f"\n  {'alternating blocks, same process (ms)':40s} {'minisc':>15s} {'PyTorch':>15s}  ratio")
        for label, pair in (("training step (no optimizer)", both), ("forward (training mode)", fboth)):
            (m_med, m_min), (t_med, t_min) = pair["minisc"], pair["torch"]
            print(f"  {label:40s} {m_med:7.2f} ({m_min:5.1f}) {t_med:7.2f} ({t_min:5.1f})  "
                  f"{m_med / t_med:5.2f}")
        print(f"  {'Adam update':40s} {adam_ms:7.2f}         {torch_adam:7.2f}")
        print("  (in parentheses: the fastest repetition)")
        best_ratio = both["minisc"][1] / both["torch"][1]
        results["ratio_fastest"] = best_ratio
        print(f"  => minisc / PyTorch, training step: {ratio:.2f} (medians), "
              f"{best_ratio:.2f} (fastest repetitions)")
        if fms is not None:
            (f_med, f_min), (t_med, t_min) = both["folded"], both["torch"]
            results.update(alt_folded_step_ms=f_med, alt_folded_step_best_ms=f_min,
                           ratio_folded=f_med / t_med, ratio_folded_fastest=f_min / t_min)
            print(f"  => the same network with the pools folded (fold_pools), same blocks: "
                  f"{f_med:.2f} ms ({f_min:.1f}); minisc / PyTorch: {f_med / t_med:.2f} (medians), "
                  f"{f_min / t_min:.2f} (fastest repetitions)")
        if args.compile:
            try:
                t0 = time.perf_counter()
                _, _, _, c_step, _, _ = torch_setup(model, x, y, threads, compile_it=True)
                c_step()
                compile_s = time.perf_counter() - t0
                c_ms = median_ms(c_step, args.reps)
                results.update(torch_compile_step_ms=c_ms, torch_compile_s=compile_s)
                print(f"  torch.compile training step: {c_ms:.2f} ms (first call {compile_s:.0f} s); "
                      f"minisc / compiled: {both['minisc'][0] / c_ms:.2f}")
            except Exception as err:      # compile needs a C++ toolchain; report, don't fail
                print(f"  torch.compile failed: {type(err).__name__}: {str(err)[:200]}")

    if args.epoch_images > 0:
        name, emodel = epoch_network(args.model)
        source, ex, ey = epoch_data(args.epoch_images)
        n_steps = -(-len(ex) // args.batch)
        print(f"\nScenario 2: one epoch of '{name}' ({emodel.n_params:,} parameters): "
              f"{len(ex):,} images ({source}), batch {args.batch}, Adam, {n_steps} steps")
        secs = run_epoch_minisc(emodel, ex, ey, args.batch)
        results.update(epoch_model=name, epoch_images=len(ex), epoch_s=secs)
        print(f"  minisc : {secs:7.1f} s   ({1000 * secs / n_steps:.1f} ms per step, update included)")
        femodel = folded(emodel)
        if femodel is not None:
            fsecs = run_epoch_minisc(femodel, ex, ey, args.batch)
            results.update(epoch_folded_s=fsecs)
            print(f"  minisc, pools folded: {fsecs:7.1f} s   ({1000 * fsecs / n_steps:.1f} ms per step)")
        if have_torch:
            tsecs = run_epoch_torch(emodel, ex, ey, args.batch)
            results.update(torch_epoch_s=tsecs)
            print(f"  PyTorch: {tsecs:7.1f} s   ({1000 * tsecs / n_steps:.1f} ms per step); "
                  f"minisc / PyTorch: {secs / tsecs:.2f}")
            if "epoch_folded_s" in results:
                print(f"  minisc, pools folded / PyTorch: {results['epoch_folded_s'] / tsecs:.2f}")

    if args.record_images > 0:
        name, rmodel = epoch_network(args.record_model)
        data_name, rx, ry = record_data(args.record_images)
        n_steps = -(-len(rx) // RECORD_BATCH)
        print(f"\nScenario 3: one epoch of the record network '{name}' ({rmodel.n_params:,} "
              f"parameters): {len(rx):,} images ({data_name}), batch {RECORD_BATCH}, Adam, "
              f"{n_steps} steps (no augmentation, no evaluation)")
        if have_torch:
            _, torch_scs_mod, rnet, _, _, _ = torch_setup(rmodel, rx[:40], ry[:40], threads)
            logit_diff, (worst_name, worst) = agreement(rmodel, rnet, torch_scs_mod, rx[:40], ry[:40])
            print(f"  agreement with its PyTorch twin (torch_scs.py): logits within {logit_diff:.1e}; "
                  f"gradients within {worst:.1e} of each array's largest entry (worst: {worst_name})")
        secs = run_epoch_minisc(rmodel, rx, ry, RECORD_BATCH)
        results.update(record_model=name, record_images=len(rx), record_epoch_s=secs)
        print(f"  minisc : {secs:7.1f} s   ({1000 * secs / n_steps:.1f} ms per step, update included)")
        frmodel = folded(rmodel)
        if frmodel is not None:
            fsecs = run_epoch_minisc(frmodel, rx, ry, RECORD_BATCH)
            results.update(record_epoch_folded_s=fsecs)
            print(f"  minisc, pools folded: {fsecs:7.1f} s   ({1000 * fsecs / n_steps:.1f} ms per step)")
        if have_torch:
            tsecs = run_epoch_torch(rmodel, rx, ry, RECORD_BATCH)
            results.update(record_torch_epoch_s=tsecs)
            print(f"  PyTorch: {tsecs:7.1f} s   ({1000 * tsecs / n_steps:.1f} ms per step); "
                  f"minisc / PyTorch: {secs / tsecs:.2f}")
            if "record_epoch_folded_s" in results:
                print(f"  minisc, pools folded / PyTorch: {results['record_epoch_folded_s'] / tsecs:.2f}")

    results["peak_rss_whole_run_mb"] = peak_rss_mb()
    print(f"\npeak resident memory of the whole run: {results['peak_rss_whole_run_mb']:.0f} MB"
          + (" (PyTorch included)" if have_torch else ""))
    if args.json:
        import json
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
        print(f"figures written to {args.json}")
    return results


def run_epoch_torch(model, images, labels, batch):
    """Seconds for one epoch of the PyTorch twin of ``model``, as run_epoch_minisc does it."""
    import torch
    import torch.nn.functional as F
    import torch_scs
    net = torch_scs.from_minisc(model)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    xt, yt = torch.from_numpy(images), torch.from_numpy(labels)
    order = torch.from_numpy(np.random.default_rng(0).permutation(len(images)))
    t = time.perf_counter()
    for i in range(0, len(images), batch):
        idx = order[i:i + batch]
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(net(xt[idx]), yt[idx]).backward()
        opt.step()
    return time.perf_counter() - t


if __name__ == "__main__":
    main(ARGS, THREADS)
