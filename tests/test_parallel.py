"""Batch chunks side by side (minisc/parallel.py), in worker processes and in threads: same
answers as one piece, repeatable, and gradients still checked against finite differences
through the split path. Every test that takes the `threads` fixture runs in both modes."""

import numpy as np
import pytest

import minisc
from minisc import parallel
from minisc.gradcheck import gradcheck
from minisc.layers import Dense, Flatten, MaxAbsPool2D, SharpCosSim2D
from minisc.losses import SoftmaxCrossEntropy
from minisc.model import Sequential
from minisc.models import build_model

# minisc's own thresholds, read before the fixture below lowers them for every test
DEFAULT_MIN_CHUNKS = {"processes": parallel.MIN_CHUNK, "threads": parallel.MIN_CHUNK_THREADS}


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    """Split the small batches of these tests too (minisc's own threshold is 50 examples), so
    every test here really runs on several threads."""
    monkeypatch.setattr(parallel, "MIN_CHUNK", 16)
    monkeypatch.setattr(parallel, "MIN_CHUNK_THREADS", 16)


@pytest.fixture(params=["processes", "threads"])
def threads(request):
    """Run the test with chunks in worker processes, then in threads; the function it gives sets
    the chunk count. The previous mode and count come back afterwards."""
    before, mode_before = minisc.get_num_threads(), minisc.get_parallel_mode()
    minisc.set_parallel_mode(request.param)
    yield minisc.set_num_threads
    minisc.set_parallel_mode(mode_before)
    minisc.set_num_threads(before)


def small_model(dtype=np.float32, rng=0):
    return Sequential([
        SharpCosSim2D(2, 4, 3, padding=1, q_init=0.05, alpha_init=2.0, dtype=dtype, rng=rng),
        MaxAbsPool2D(2, ceil_mode=True, dtype=dtype),
        SharpCosSim2D(4, 4, 3, padding=1, groups=4, dtype=dtype, rng=rng),
        Flatten(dtype=dtype),
        Dense(4 * 4 * 4, 3, dtype=dtype, rng=rng),
    ], input_shape=(2, 7, 7))


def one_step(model, x, y):
    loss = SoftmaxCrossEntropy()
    out = model.forward(x)
    loss.forward(out, y)
    dx = model.backward(loss.backward())
    return out, dx, {(i, k): g.copy() for i, layer in enumerate(model.layers)
                     for k, g in layer.grads.items()}


def assert_same_bits(a, b):
    """Two one_step results agree bit for bit: outputs, input gradients (if any), gradients."""
    for got, expected in zip(a[:2], b[:2]):
        assert (got is None and expected is None) or np.array_equal(got, expected)
    for key in a[2]:
        assert np.array_equal(a[2][key], b[2][key]), key


def test_chunks_cover_the_batch_in_order():
    for n in [1, 15, 16, 31, 32, 33, 100, 128, 1000]:
        for t in [1, 2, 3, 8]:
            parts = parallel.chunks(n, t)
            assert parts[0].start == 0 and parts[-1].stop == n
            assert all(a.stop == b.start for a, b in zip(parts[:-1], parts[1:], strict=True))
            sizes = [p.stop - p.start for p in parts]
            assert max(sizes) - min(sizes) <= 1
            assert len(parts) == 1 or min(sizes) >= parallel.MIN_CHUNK
            assert len(parts) <= t
    assert len(parallel.chunks(100, 2)) == 2
    assert len(parallel.chunks(2 * parallel.MIN_CHUNK - 1, 2)) == 1      # too small to split


def test_the_lessons_batch_of_64_splits_in_workers_only(monkeypatch):
    # measured (benchmarks/README.md): chunks of 32 paid in worker processes, not in threads
    monkeypatch.setattr(parallel, "MIN_CHUNK", DEFAULT_MIN_CHUNKS["processes"])
    monkeypatch.setattr(parallel, "MIN_CHUNK_THREADS", DEFAULT_MIN_CHUNKS["threads"])
    monkeypatch.setattr(parallel, "_mode", "processes")
    assert [(p.start, p.stop) for p in parallel.chunks(64, 2)] == [(0, 32), (32, 64)]
    assert len(parallel.chunks(63, 2)) == 1
    monkeypatch.setattr(parallel, "_mode", "threads")
    assert len(parallel.chunks(64, 2)) == 1
    assert len(parallel.chunks(100, 2)) == 2


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True, None])
def test_set_num_threads_refuses_nonsense(bad, threads):
    with pytest.raises(ValueError, match="whole number >= 1"):
        threads(bad)


def from_env(monkeypatch, cached, variable, text):
    """Forget parallel's cached setting and set its environment variable (None: unset it)."""
    monkeypatch.setattr(parallel, cached, None)
    if text is None:
        monkeypatch.delenv(variable, raising=False)
    else:
        monkeypatch.setenv(variable, text)


def test_environment_variable(monkeypatch, threads):
    from_env(monkeypatch, "_num_threads", "MINISC_NUM_THREADS", "3")
    assert minisc.get_num_threads() == 3
    from_env(monkeypatch, "_num_threads", "MINISC_NUM_THREADS", "many")
    with pytest.raises(ValueError, match="MINISC_NUM_THREADS.*'many'"):
        minisc.get_num_threads()
    from_env(monkeypatch, "_num_threads", "MINISC_NUM_THREADS", None)
    assert minisc.get_num_threads() >= 1
    # without a per-thread BLAS setting, chunk threads would compete for every core: the
    # default is then one chunk; worker processes set their own BLAS to one core
    monkeypatch.setattr(parallel, "_openblas_local_setter", lambda: None)
    monkeypatch.setattr(parallel, "_cpu_count", lambda: 4)
    monkeypatch.setattr(parallel, "_num_threads", None)
    monkeypatch.setattr(parallel, "_mode", "threads")
    assert minisc.get_num_threads() == 1
    monkeypatch.setattr(parallel, "_num_threads", None)
    monkeypatch.setattr(parallel, "_mode", "processes")
    assert minisc.get_num_threads() == 4


def test_parallel_mode_from_environment_and_setter(monkeypatch):
    from_env(monkeypatch, "_mode", "MINISC_PARALLEL", "Threads")
    assert minisc.get_parallel_mode() == "threads"
    from_env(monkeypatch, "_mode", "MINISC_PARALLEL", "fibres")
    with pytest.raises(ValueError, match="MINISC_PARALLEL must be 'processes' or 'threads', got 'fibres'"):
        minisc.get_parallel_mode()
    from_env(monkeypatch, "_mode", "MINISC_PARALLEL", None)
    expected = "processes" if __import__("sys").platform.startswith("linux") else "threads"
    assert minisc.get_parallel_mode() == expected
    with pytest.raises(ValueError, match="mode must be 'processes' or 'threads', got 'gpu'"):
        minisc.set_parallel_mode("gpu")


def test_replica_shares_parameters_not_gradients():
    layer = SharpCosSim2D(1, 2, 3, rng=0)
    twin = layer.replica()
    assert twin.params is layer.params and twin.params["w"] is layer.params["w"]
    assert twin.grads["w"] is not layer.grads["w"]
    x = np.random.default_rng(0).random((2, 1, 5, 5), dtype=np.float32)
    twin.backward(twin.forward(x))
    assert np.all(layer.grads["w"] == 0) and np.any(twin.grads["w"] != 0)


@pytest.mark.parametrize("name", ["fashion-2764", "scs-tiny", "convnet"])
def test_threads_agree_with_one_thread(name, threads):
    # float64, so that the different order of the sums changes only the last of ~16 digits
    rng = np.random.default_rng(1)
    x = rng.random((40, 1, 28, 28))
    y = rng.integers(0, 10, 40)
    model = build_model(name, rng=0, dtype=np.float64)
    model.layers[0].needs_input_grad = True
    threads(1)
    out1, dx1, g1 = one_step(model, x, y)
    threads(2)
    out2, dx2, g2 = one_step(model, x, y)
    assert model._chunks is not None and len(model._chunks[0]) == 2    # it did split
    np.testing.assert_allclose(out2, out1, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dx2, dx1, rtol=1e-9, atol=1e-14)
    for key in g1:
        np.testing.assert_allclose(g2[key], g1[key], rtol=1e-9, atol=1e-12, err_msg=str(key))


def test_threads_repeat_bit_for_bit(threads):
    rng = np.random.default_rng(2)
    x = rng.random((64, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, 64)
    threads(2)
    model = build_model("fashion-2764", rng=0)
    assert_same_bits(one_step(model, x, y), one_step(model, x, y))


def test_training_with_threads_is_repeatable(threads):
    from minisc.train import train
    rng = np.random.default_rng(3)
    x = rng.random((96, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, 96)
    threads(2)
    finals = []
    for _ in range(2):
        model = build_model("scs-tiny", rng=0)
        train(model, x, y, epochs=2, batch_size=48, lr=0.01, seed=0, progress=False,
              log=lambda *a: None)
        finals.append(np.concatenate([v.ravel() for layer in model.layers
                                      for v in layer.params.values()]))
    assert np.array_equal(finals[0], finals[1])


def test_gradcheck_through_the_threaded_path(threads):
    threads(2)
    x = np.random.default_rng(4).random((2 * parallel.MIN_CHUNK, 2, 7, 7)) + 0.05
    result = gradcheck(small_model(), x, max_checks=400)
    assert result.passed, dict(result)


def test_backward_errors_with_threads(threads):
    threads(2)
    model = small_model()
    x = np.random.default_rng(5).random((40, 2, 7, 7), dtype=np.float32)
    out = model.forward(x)
    with pytest.raises(ValueError, match="gradient for the 40 examples"):
        model.backward(np.ones((39, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r"expected a gradient of shape \(20, 3\)"):
        model.backward(np.ones((40, 4), dtype=np.float32))
    model.eval()
    model.forward(x)
    with pytest.raises(RuntimeError, match="evaluation mode"):
        model.backward(np.ones_like(out))
    model.train()


def test_an_error_in_a_chunk_reaches_the_caller(threads):
    threads(2)
    model = small_model()
    x = np.random.default_rng(6).random((40, 2, 7, 7), dtype=np.float32)
    x[30, 0, 0, 0] = np.nan                                   # in the second chunk only
    with pytest.raises(ValueError, match="NaN or infinite"):
        model.forward(x)
    x[30, 0, 0, 0], x[5, 0, 0, 0] = 0.5, np.nan               # in the first chunk only
    with pytest.raises(ValueError, match="NaN or infinite"):
        model.forward(x)
    x[5, 0, 0, 0] = 0.5                                       # and then all is well again
    threads(1)
    expected = model.forward(x)
    threads(2)
    np.testing.assert_allclose(model.forward(x), expected, rtol=1e-6)


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_a_forked_child_can_still_split_batches(threads):
    import multiprocessing as mp
    threads(2)
    model = small_model()
    x = np.random.default_rng(7).random((40, 2, 7, 7), dtype=np.float32)
    expected = model.forward(x)                     # the parent's pool exists now
    with mp.get_context("fork").Pool(1) as pool:
        got = pool.apply_async(model.forward, (x,)).get(timeout=60)
    np.testing.assert_array_equal(got, expected)


# --------------------------------------------------------------------------------------------
# Worker processes only
@pytest.fixture
def processes():
    before, mode_before = minisc.get_num_threads(), minisc.get_parallel_mode()
    minisc.set_parallel_mode("processes")
    minisc.set_num_threads(2)
    yield
    minisc.set_parallel_mode(mode_before)
    minisc.set_num_threads(before)


def test_processes_and_threads_give_the_same_bits(processes):
    rng = np.random.default_rng(8)
    x = rng.random((40, 2, 7, 7), dtype=np.float32)
    y = rng.integers(0, 3, 40)
    model = small_model()
    model.layers[0].needs_input_grad = True
    in_workers = one_step(model, x, y)
    assert isinstance(model._chunks[1], parallel._KeptInWorkers)        # it used the workers
    minisc.set_parallel_mode("threads")
    in_threads = one_step(model, x, y)
    assert isinstance(model._chunks[1], list)
    assert_same_bits(in_workers, in_threads)


def test_an_evaluation_pass_between_forward_and_backward_changes_nothing(processes):
    rng = np.random.default_rng(9)
    x = rng.random((40, 2, 7, 7), dtype=np.float32)
    y = rng.integers(0, 3, 40)
    model, other = small_model(), small_model(rng=1)
    expected = one_step(model, x, y)[2]
    loss = SoftmaxCrossEntropy()
    loss.forward(model.forward(x), y)
    other.eval()
    other.forward(x)                                # the same workers, in between
    model.backward(loss.backward())
    model.backward(loss.backward())                 # twice: the same gradients again
    for (i, key), grad in expected.items():
        assert np.array_equal(model.layers[i].grads[key], grad), (i, key)


class MainScale(minisc.Layer):
    """A layer whose class a fresh interpreter cannot import (as if defined in a notebook)."""

    def forward(self, x):
        self._y_shape = x.shape
        return 2 * x

    def backward(self, dy):
        return 2 * dy


MainScale.__module__ = "__main__"


def test_the_last_chunk_runs_in_this_process(processes):
    # n chunks: n - 1 in workers, the last one here, meanwhile
    model = small_model()
    x = np.random.default_rng(16).random((60, 2, 7, 7), dtype=np.float32)
    y = np.arange(60) % 3
    minisc.set_num_threads(1)
    whole = one_step(model, x, y)
    for n in (2, 3):
        minisc.set_num_threads(n)
        split = one_step(model, x, y)
        assert len(model._chunks[0]) == n and len(parallel._workers) == n - 1
        kept = model._chunks[1]
        assert isinstance(kept, parallel._KeptInWorkers) and len(kept.ids) == n - 1
        assert all(layer._cache is not None for layer in kept.here[1:])   # kept here, for backward
        np.testing.assert_allclose(split[0], whole[0], rtol=1e-5)
        for key in whole[2]:
            np.testing.assert_allclose(split[2][key], whole[2][key], rtol=1e-4, atol=1e-6, err_msg=str(key))


def test_worker_pipes_hold_a_whole_request(processes):
    """On Linux, where the system allows pipes of PIPE_BYTES, both pipes of every worker are
    widened to it, so a request or a reply goes through in one piece (and a pipe that cannot
    be widened is left as it was, not an error)."""
    fcntl = pytest.importorskip("fcntl")
    if not hasattr(fcntl, "F_GETPIPE_SZ"):
        pytest.skip("no F_GETPIPE_SZ on this system")
    try:
        limit = int(open("/proc/sys/fs/pipe-max-size").read())
    except OSError:
        pytest.skip("no /proc/sys/fs/pipe-max-size on this system")
    if limit < parallel.PIPE_BYTES:
        pytest.skip(f"this system allows pipes of {limit} bytes at most")
    one_step(small_model(), np.ones((40, 2, 7, 7), np.float32), np.arange(40) % 3)
    sizes = [fcntl.fcntl(pipe.fileno(), fcntl.F_GETPIPE_SZ)
             for worker in parallel._workers for pipe in (worker.proc.stdin, worker.proc.stdout)]
    assert sizes == [parallel.PIPE_BYTES] * 2 * len(parallel._workers) and sizes

    class Closed:
        def fileno(self):
            raise OSError("closed")
    parallel._widen(Closed())                   # refused: left alone, no error


def test_a_method_swapped_in_runs_in_threads_for_every_chunk(processes, monkeypatch):
    # A worker would run the method as it is on disk, this process the swapped one: so the
    # whole batch goes through threads, and every chunk sees the new method.
    model = small_model()
    x = np.random.default_rng(17).random((40, 2, 7, 7), dtype=np.float32)
    before = model.forward(x)
    assert isinstance(model._chunks[1], parallel._KeptInWorkers)
    plain_forward = Dense.forward

    def doubled(self, x):
        return 2 * plain_forward(self, x)

    monkeypatch.setattr(Dense, "forward", doubled)
    after = model.forward(x)
    assert isinstance(model._chunks[1], list)                         # threads, not workers
    np.testing.assert_allclose(after, 2 * before, rtol=1e-6)
    monkeypatch.setattr(Dense, "forward", plain_forward)
    model.forward(x)
    assert isinstance(model._chunks[1], parallel._KeptInWorkers)       # and back to the workers


SCALE_LAYER = """
import minisc


class Scale(minisc.Layer):
    def forward(self, x):
        return {factor} * x

    def backward(self, dy):
        return {factor} * dy
"""


def test_a_reloaded_layer_file_reaches_every_chunk(processes, tmp_path, monkeypatch):
    # A notebook edits a layer file and reloads it: a model built after that runs the new code
    # in every chunk (fresh workers), one built before it runs the old code in every chunk.
    import importlib
    import sys
    (tmp_path / "my_scale.py").write_text(SCALE_LAYER.format(factor=2))
    monkeypatch.syspath_prepend(str(tmp_path))
    import my_scale
    x = np.random.default_rng(18).random((40, 2, 7, 7), dtype=np.float32)
    old = Sequential([my_scale.Scale(), Flatten()], input_shape=(2, 7, 7))
    np.testing.assert_array_equal(old.forward(x), 2 * x.reshape(40, -1))
    assert isinstance(old._chunks[1], parallel._KeptInWorkers)
    before = [worker.proc.pid for worker in parallel._workers]
    (tmp_path / "my_scale.py").write_text(SCALE_LAYER.format(factor=3))
    importlib.invalidate_caches()
    try:
        importlib.reload(my_scale)
        new = Sequential([my_scale.Scale(), Flatten()], input_shape=(2, 7, 7))
        np.testing.assert_array_equal(new.forward(x), 3 * x.reshape(40, -1))   # every chunk
        assert isinstance(new._chunks[1], parallel._KeptInWorkers)
        assert not set(before) & {worker.proc.pid for worker in parallel._workers}   # fresh workers
        np.testing.assert_array_equal(old.forward(x), 2 * x.reshape(40, -1))   # still the old code
        assert isinstance(old._chunks[1], list)                                 # in threads
    finally:
        sys.modules.pop("my_scale", None)


def test_layers_a_worker_cannot_import_run_in_threads(processes):
    model = Sequential([MainScale(), Flatten(), Dense(2 * 7 * 7, 3, rng=0)], input_shape=(2, 7, 7))
    x = np.random.default_rng(10).random((40, 2, 7, 7), dtype=np.float32)
    out = model.forward(x)
    assert isinstance(model._chunks[1], list)                         # threads, not workers
    minisc.set_num_threads(1)
    np.testing.assert_allclose(out, model.forward(x), rtol=1e-6)


def test_a_worker_that_dies_is_a_clear_error_and_replaced(processes):
    model = small_model()
    x = np.random.default_rng(11).random((40, 2, 7, 7), dtype=np.float32)
    expected = model.forward(x)
    parallel._workers[0].proc.kill()
    parallel._workers[0].proc.wait()
    how = "killed by signal 9" if __import__("os").name == "posix" else r"exit code \d+"
    with pytest.raises(parallel.WorkerDied, match=rf"worker process .* stopped \({how};.*"
                                                  r"set_parallel_mode\('threads'\)"):
        model.forward(x)
    np.testing.assert_array_equal(model.forward(x), expected)        # new workers


def test_workers_import_this_minisc_not_one_in_their_working_folder(processes, tmp_path, monkeypatch):
    # A second copy of minisc in the working folder (another checkout, a student's copy)
    # must not be what the workers import: they use this process's modules.
    (tmp_path / "minisc").mkdir()
    (tmp_path / "minisc" / "__init__.py").write_text("raise ImportError('the wrong minisc')\n")
    monkeypatch.chdir(tmp_path)
    minisc.set_parallel_mode("processes")            # fresh workers, started from tmp_path
    model = small_model()
    x = np.random.default_rng(14).random((40, 2, 7, 7), dtype=np.float32)
    out = model.forward(x)
    assert isinstance(model._chunks[1], parallel._KeptInWorkers)        # it used the workers
    minisc.set_parallel_mode("threads")
    np.testing.assert_array_equal(out, model.forward(x))


def test_a_pickled_model_leaves_its_pending_chunks_behind(processes):
    import pickle
    model = small_model()
    x = np.random.default_rng(12).random((40, 2, 7, 7), dtype=np.float32)
    model.forward(x)
    copy = pickle.loads(pickle.dumps(model))
    assert copy._chunks is None and model._chunks is not None


@pytest.mark.skipif(not hasattr(__import__("signal"), "SIGINT") or __import__("os").name != "posix",
                    reason="POSIX signals")
def test_ctrl_c_is_left_to_the_main_process(processes):
    import os
    import signal
    import time
    model = small_model()
    x = np.random.default_rng(13).random((40, 2, 7, 7), dtype=np.float32)
    expected = model.forward(x)
    workers = list(parallel._workers)
    for worker in workers:
        os.kill(worker.proc.pid, signal.SIGINT)     # what Ctrl-C in a terminal sends them too
    time.sleep(0.2)
    assert all(worker.proc.poll() is None for worker in workers)
    np.testing.assert_array_equal(model.forward(x), expected)
    assert parallel._workers == workers                               # the same workers


def test_setting_the_mode_again_starts_fresh_workers(processes):
    # how a notebook picks up an edited layer file: the new workers import it anew
    model = small_model()
    x = np.random.default_rng(14).random((40, 2, 7, 7), dtype=np.float32)
    expected = model.forward(x)
    before = [worker.proc.pid for worker in parallel._workers]
    minisc.set_parallel_mode("processes")
    assert parallel._workers is None
    np.testing.assert_array_equal(model.forward(x), expected)
    assert not set(before) & {worker.proc.pid for worker in parallel._workers}


def test_no_worker_processes_means_threads_with_a_warning(processes, monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("no processes here")
    monkeypatch.setattr(parallel.subprocess, "Popen", refuse)
    model = small_model()
    x = np.random.default_rng(15).random((40, 2, 7, 7), dtype=np.float32)
    with pytest.warns(RuntimeWarning, match=r"could not start worker processes \(no processes here\)"):
        out = model.forward(x)
    assert minisc.get_parallel_mode() == "threads" and isinstance(model._chunks[1], list)
    minisc.set_num_threads(1)
    np.testing.assert_allclose(out, model.forward(x), rtol=1e-6)
