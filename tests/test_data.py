"""Tests of minisc.data: IDX reading, the embedded sample, the downloader and batching.

Nothing here touches the internet: the downloader is tested against a small HTTP server that
the tests start on 127.0.0.1 and that serves IDX files generated on the spot.
"""

import gzip
import hashlib
import http.server
import os
import re
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from minisc import data
from minisc.data import (
    CorruptDataError,
    DownloadError,
    iterate_minibatches,
    load_fashion_mnist,
    load_mnist,
    load_mnist_sample,
    read_idx,
    to_float,
    write_idx,
)

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
TEST_IMAGES, TEST_LABELS = data.SPLIT_FILES["test"]
TRAIN_IMAGES, TRAIN_LABELS = data.SPLIT_FILES["train"]


# ---------------------------------------------------------------------------------------------
# The IDX reader and writer
# ---------------------------------------------------------------------------------------------


def test_read_idx_handmade_bytes(tmp_path):
    # Written by hand, byte by byte, so the reader is checked against the format itself and
    # not only against our own writer.
    labels = tmp_path / "labels-idx1-ubyte"
    labels.write_bytes(b"\x00\x00\x08\x01" + (3).to_bytes(4, "big") + bytes([7, 0, 9]))
    out = read_idx(labels)
    assert out.dtype == np.uint8 and out.shape == (3,)
    assert out.tolist() == [7, 0, 9]

    shorts = tmp_path / "shorts-idx2"  # int16, shape (2, 2), big-endian values
    sizes = (2).to_bytes(4, "big") * 2
    values = b"".join(v.to_bytes(2, "big", signed=True) for v in (1, -2, 300, -32768))
    shorts.write_bytes(b"\x00\x00\x0b\x02" + sizes + values)
    out = read_idx(shorts)
    assert out.dtype == np.int16 and out.dtype.isnative
    assert out.tolist() == [[1, -2], [300, -32768]]


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip_images_and_labels(tmp_path, suffix):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=7, dtype=np.uint8)
    ipath = write_idx(tmp_path / f"images-idx3-ubyte{suffix}", images)
    lpath = write_idx(tmp_path / f"labels-idx1-ubyte{suffix}", labels)
    assert ipath.read_bytes()[:2] == (b"\x1f\x8b" if suffix else b"\x00\x00")
    if not suffix:
        assert ipath.read_bytes()[:16] == bytes.fromhex("00000803 00000007 0000001c 0000001c")
        assert ipath.stat().st_size == 16 + 7 * 28 * 28
    back_images, back_labels = read_idx(ipath), read_idx(lpath)
    assert back_images.dtype == np.uint8 and back_images.shape == (7, 28, 28)
    assert back_labels.dtype == np.uint8 and back_labels.shape == (7,)
    np.testing.assert_array_equal(back_images, images)
    np.testing.assert_array_equal(back_labels, labels)
    back_images[0, 0, 0] = 1  # a writable array, not a read-only view of the file's bytes


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.float32, np.float64])
def test_idx_round_trip_other_types(tmp_path, dtype):
    array = (np.arange(24).reshape(2, 3, 4) - 7).astype(dtype)
    back = read_idx(write_idx(tmp_path / "x.gz", array))
    assert back.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(back, array)


def test_write_idx_is_deterministic_and_rejects_bad_types(tmp_path):
    a = np.arange(10, dtype=np.uint8)
    first = write_idx(tmp_path / "a.gz", a).read_bytes()
    assert write_idx(tmp_path / "b.gz", a).read_bytes() == first
    with pytest.raises(TypeError, match="uint64"):
        write_idx(tmp_path / "c", np.arange(3, dtype=np.uint64))


def _idx_bytes(array):
    header = bytes([0, 0, 8, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    return header + array.tobytes()


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_wrong_magic(tmp_path, compress):
    raw = b"\x12\x34\x08\x01" + (2).to_bytes(4, "big") + b"\x01\x02"
    path = tmp_path / ("bad.gz" if compress else "bad")
    path.write_bytes(gzip.compress(raw) if compress else raw)
    with pytest.raises(ValueError) as info:
        read_idx(path)
    message = str(info.value)
    assert str(path) in message and "magic" in message and "12 34 08 01" in message


def test_read_idx_unknown_type_code(tmp_path):
    path = tmp_path / "bad"
    path.write_bytes(b"\x00\x00\x07\x01" + (1).to_bytes(4, "big") + b"\x00")
    with pytest.raises(ValueError, match="magic"):
        read_idx(path)


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_truncated_payload(tmp_path, compress):
    raw = _idx_bytes(np.zeros((4, 28, 28), dtype=np.uint8))[:-100]
    path = tmp_path / "short"
    path.write_bytes(gzip.compress(raw) if compress else raw)
    with pytest.raises(ValueError) as info:
        read_idx(path)
    message = str(info.value)
    assert str(path) in message and "truncated" in message
    assert "(4, 28, 28)" in message
    assert str(4 * 28 * 28) in message and str(4 * 28 * 28 - 100) in message


def test_read_idx_truncated_header(tmp_path):
    path = tmp_path / "short"
    path.write_bytes(b"\x00\x00\x08\x03" + (4).to_bytes(4, "big"))
    with pytest.raises(ValueError, match="truncated header"):
        read_idx(path)
    path.write_bytes(b"\x00\x00")
    with pytest.raises(ValueError, match="at least a 4-byte header"):
        read_idx(path)


def test_read_idx_extra_bytes(tmp_path):
    path = tmp_path / "long"
    path.write_bytes(_idx_bytes(np.arange(5, dtype=np.uint8)) + b"\x00\x00\x00")
    with pytest.raises(ValueError) as info:
        read_idx(path)
    message = str(info.value)
    assert str(path) in message and "size mismatch" in message and "3 extra" in message


def test_read_idx_damaged_gzip(tmp_path):
    path = tmp_path / "cut.gz"
    blob = gzip.compress(_idx_bytes(np.arange(1000, dtype=np.int32).astype(np.uint8)))
    path.write_bytes(blob[:-20])
    with pytest.raises(ValueError, match="gzip"):
        read_idx(path)


# ---------------------------------------------------------------------------------------------
# The embedded sample
# ---------------------------------------------------------------------------------------------


def test_sample_all():
    images, labels = load_mnist_sample()
    assert images.dtype == np.uint8 and images.shape == (5000, 28, 28)
    assert labels.dtype == np.uint8 and labels.shape == (5000,)
    assert np.bincount(labels, minlength=10).tolist() == [500] * 10
    # Plausible handwriting: full-range pixels, a black frame around a centred digit.
    assert images.max() == 255 and images.min() == 0
    border = np.concatenate([images[:, :2, :].ravel(), images[:, -2:, :].ravel(),
                             images[:, :, :2].ravel(), images[:, :, -2:].ravel()])
    assert (border == 0).mean() > 0.99
    assert 0.10 < images.mean() / 255 < 0.16  # MNIST's mean pixel is about 0.13
    # Right side up: a "1" is a vertical stroke, so its ink spreads over more rows than columns.
    ones = images[labels == 1].mean(axis=0)
    assert (ones.sum(axis=1) > 10).sum() > (ones.sum(axis=0) > 10).sum()


def test_sample_split_sizes_disjoint_deterministic():
    all_images, all_labels = load_mnist_sample("all")
    train_images, train_labels = load_mnist_sample("train")
    val_images, val_labels = load_mnist_sample("validation")
    assert train_images.shape == (4500, 28, 28) and train_labels.shape == (4500,)
    assert val_images.shape == (500, 28, 28) and val_labels.shape == (500,)
    assert np.bincount(train_labels, minlength=10).tolist() == [450] * 10
    assert np.bincount(val_labels, minlength=10).tolist() == [50] * 10

    val_index = data._sample_validation_indices(all_labels)
    is_val = np.zeros(5000, dtype=bool)
    is_val[val_index] = True
    assert is_val.sum() == 500  # 500 distinct positions
    np.testing.assert_array_equal(val_images, all_images[is_val])
    np.testing.assert_array_equal(train_images, all_images[~is_val])  # the complement: disjoint
    np.testing.assert_array_equal(train_labels, all_labels[~is_val])
    # No validation image reappears in the training part.
    train_keys = {img.tobytes() for img in train_images}
    assert not any(img.tobytes() in train_keys for img in val_images)

    again_images, again_labels = load_mnist_sample("validation")
    np.testing.assert_array_equal(again_images, val_images)
    np.testing.assert_array_equal(again_labels, val_labels)
    # The split documented in datasets/README.md (guards against a change in NumPy's generator).
    digest = hashlib.sha256(val_index.astype("<i8").tobytes()).hexdigest()
    assert digest == "b59e35abc58c2ac24918af103105baddc8cc32e1a4c8d25fcc58b8d346faa903"


def test_sample_bad_split():
    with pytest.raises(ValueError, match="validation"):
        load_mnist_sample("test")


def test_sample_missing_or_corrupted(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "SAMPLE_PATH", tmp_path / "mnist_sample.npz")
    with pytest.raises(FileNotFoundError, match="mnist_sample.npz"):
        load_mnist_sample()
    (tmp_path / "mnist_sample.npz").write_bytes(b"PK\x03\x04 this is not a zip archive")
    with pytest.raises(CorruptDataError, match="mnist_sample.npz"):
        load_mnist_sample()
    np.savez_compressed(tmp_path / "mnist_sample.npz", images=np.zeros((5000, 28, 28), np.uint8),
                        labels=np.repeat(np.arange(10, dtype=np.uint8), 500))
    with pytest.raises(CorruptDataError, match="checksums"):
        load_mnist_sample()


# ---------------------------------------------------------------------------------------------
# The downloader, against a local HTTP server
# ---------------------------------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.routes``: path -> (mode, body); mode "ok", "cut" or absent (404)."""

    def do_GET(self):
        server = self.server
        with server.lock:
            server.requests.append(self.path)
        mode, body = server.routes.get(self.path, ("missing", b""))
        if mode == "missing":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if mode == "cut":  # announce everything, send half, hang up
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
        else:
            self.wfile.write(body)

    def log_message(self, *args):  # keep the test output quiet
        pass


class FakeMirrors:
    """A local HTTP server and the generated data set it serves.

    ``url(prefix)`` is a mirror base URL; files live under "/good/" (served whole) and
    "/cut/" (connection cut half-way); anything else answers 404.
    """

    def __init__(self):
        rng = np.random.default_rng(7)
        self.arrays = {
            "test": (rng.integers(0, 256, (30, 28, 28), dtype=np.uint8),
                     rng.integers(0, 10, 30, dtype=np.uint8)),
            "train": (rng.integers(0, 256, (50, 28, 28), dtype=np.uint8),
                      rng.integers(0, 10, 50, dtype=np.uint8)),
        }
        self.blobs, self.checksums = {}, {}
        for split, arrays in self.arrays.items():
            for name, array in zip(data.SPLIT_FILES[split], arrays, strict=True):
                raw = _idx_bytes(array)
                blob = gzip.compress(raw, mtime=0)
                self.blobs[name] = blob
                self.checksums[name] = {"md5": hashlib.md5(blob).hexdigest(),
                                        "sha256": hashlib.sha256(raw).hexdigest()}
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.lock = threading.Lock()
        self.server.requests = []
        self.server.routes = {}
        for name, blob in self.blobs.items():
            self.server.routes[f"/good/{name}"] = ("ok", blob)
            self.server.routes[f"/cut/{name}"] = ("cut", blob)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    def url(self, prefix):
        return f"http://127.0.0.1:{self.server.server_address[1]}/{prefix}/"

    @property
    def requests(self):
        with self.server.lock:
            return list(self.server.requests)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def mirrors():
    fake = FakeMirrors()
    yield fake
    fake.close()


@pytest.fixture
def closed_port():
    """A port on 127.0.0.1 where nothing listens (connections are refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/mnist/"


def _load(mirrors, cache, mirror_list, split="test", **kw):
    kw.setdefault("checksums", mirrors.checksums)
    return load_mnist(split, root=cache, mirrors=mirror_list, progress=False, timeout=5, **kw)


def _assert_nothing_left(folder):
    assert not folder.exists() or sorted(p.name for p in folder.iterdir()) == []


def test_download_success_fetches_only_the_split(mirrors, tmp_path):
    cache = tmp_path / "cache"
    images, labels = _load(mirrors, cache, [mirrors.url("good")])
    np.testing.assert_array_equal(images, mirrors.arrays["test"][0])
    np.testing.assert_array_equal(labels, mirrors.arrays["test"][1])
    assert images.dtype == np.uint8 and images.shape == (30, 28, 28) and labels.shape == (30,)
    assert sorted(p.name for p in cache.iterdir()) == sorted([TEST_IMAGES, TEST_LABELS])
    assert sorted(mirrors.requests) == sorted([f"/good/{TEST_IMAGES}", f"/good/{TEST_LABELS}"])

    # A second call uses the verified files on disk: no new request.
    images2, _ = _load(mirrors, cache, [mirrors.url("good")])
    np.testing.assert_array_equal(images2, images)
    assert len(mirrors.requests) == 2

    # The train split needs its own two files, and only those.
    images, labels = _load(mirrors, cache, [mirrors.url("good")], split="train")
    assert images.shape == (50, 28, 28) and labels.shape == (50,)
    assert sorted(mirrors.requests[2:]) == sorted([f"/good/{TRAIN_IMAGES}",
                                                   f"/good/{TRAIN_LABELS}"])
    assert len(list(cache.iterdir())) == 4


def test_download_with_progress_bar(mirrors, tmp_path, capsys):
    images, _ = load_mnist("test", root=tmp_path, mirrors=[mirrors.url("good")],
                           checksums=mirrors.checksums, progress=True, timeout=5)
    assert images.shape == (30, 28, 28)


def test_download_falls_back_after_404(mirrors, tmp_path):
    images, _ = _load(mirrors, tmp_path, [mirrors.url("gone"), mirrors.url("good")])
    np.testing.assert_array_equal(images, mirrors.arrays["test"][0])
    assert f"/gone/{TEST_IMAGES}" in mirrors.requests and f"/good/{TEST_IMAGES}" in mirrors.requests
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([TEST_IMAGES, TEST_LABELS])


def test_download_checksum_mismatch(mirrors, tmp_path):
    wrong = {name: {"md5": "0" * 32, "sha256": "0" * 64} for name in mirrors.checksums}
    cache = tmp_path / "cache"
    with pytest.raises(DownloadError) as info:
        _load(mirrors, cache, [mirrors.url("good")], checksums=wrong)
    message = str(info.value)
    assert "checksum mismatch" in message and mirrors.url("good") + TEST_IMAGES in message
    assert info.value.attempts and info.value.attempts[0][0].endswith(TEST_IMAGES)
    _assert_nothing_left(cache)


def test_download_connection_cut(mirrors, tmp_path):
    cache = tmp_path / "cache"
    with pytest.raises(DownloadError, match="short read"):
        _load(mirrors, cache, [mirrors.url("cut")])
    _assert_nothing_left(cache)
    # A cut connection falls back to the next mirror like any other failure.
    images, _ = _load(mirrors, cache, [mirrors.url("cut"), mirrors.url("good")])
    np.testing.assert_array_equal(images, mirrors.arrays["test"][0])
    assert sorted(p.name for p in cache.iterdir()) == sorted([TEST_IMAGES, TEST_LABELS])


def test_download_unreachable_mirror_then_good(mirrors, tmp_path, closed_port):
    images, _ = _load(mirrors, tmp_path, [closed_port, mirrors.url("good")])
    np.testing.assert_array_equal(images, mirrors.arrays["test"][0])


def test_offline_error_message(tmp_path, closed_port):
    cache = tmp_path / "mnist"
    with pytest.raises(DownloadError) as info:
        load_mnist("test", root=cache, mirrors=[closed_port, closed_port + "other/"],
                   progress=False, timeout=5)
    assert isinstance(info.value, RuntimeError)
    message = str(info.value)
    assert str(cache / TEST_IMAGES) in message  # where to place the file by hand
    assert "load_mnist_sample" in message
    assert message.count(closed_port) == 2 and "cannot connect" in message
    assert len(info.value.attempts) == 2
    _assert_nothing_left(cache)


def test_missing_without_download(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_mnist("train", root=tmp_path, download=False)
    assert str(tmp_path / TRAIN_IMAGES) in str(info.value)
    assert "load_mnist_sample" in str(info.value)


def test_corrupt_local_file_is_refused(mirrors, tmp_path):
    (tmp_path / TEST_IMAGES).write_bytes(gzip.compress(b"not the real thing"))
    with pytest.raises(CorruptDataError) as info:
        _load(mirrors, tmp_path, [mirrors.url("good")])
    message = str(info.value)
    assert str(tmp_path / TEST_IMAGES) in message and "delete it" in message
    assert mirrors.requests == []  # never silently replaced either
    assert (tmp_path / TEST_IMAGES).exists()


def test_local_files_recompressed_or_uncompressed_pass(mirrors, tmp_path):
    images, labels = mirrors.arrays["test"]
    # Like Debian's Fashion-MNIST: same content, different gzip bytes -> the MD5 differs but the
    # SHA-256 of the content matches.
    recompressed = gzip.compress(_idx_bytes(images), compresslevel=1, mtime=12345)
    assert hashlib.md5(recompressed).hexdigest() != mirrors.checksums[TEST_IMAGES]["md5"]
    (tmp_path / TEST_IMAGES).write_bytes(recompressed)
    # And an uncompressed labels file under the name without ".gz".
    (tmp_path / TEST_LABELS[:-3]).write_bytes(_idx_bytes(labels))
    got_images, got_labels = load_mnist("test", root=tmp_path, download=False,
                                        checksums=mirrors.checksums)
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)


def test_registry_injection_and_env_var(mirrors, tmp_path, monkeypatch):
    monkeypatch.setenv("MINISC_DATA", str(tmp_path))
    assert data.default_root("mnist") == tmp_path / "mnist"
    assert data.default_root("fashion-mnist") == tmp_path / "fashion-mnist"
    monkeypatch.setitem(data.CHECKSUMS, "mnist", mirrors.checksums)
    monkeypatch.setitem(data.MIRRORS, "mnist", (mirrors.url("good"),))
    images, _ = load_mnist("test", progress=False)
    np.testing.assert_array_equal(images, mirrors.arrays["test"][0])
    assert (tmp_path / "mnist" / TEST_IMAGES).is_file()


def test_search_dirs(tmp_path, monkeypatch):
    monkeypatch.delenv("MINISC_DATA", raising=False)
    repo = Path(data.__file__).resolve().parent.parent
    assert data.search_dirs("mnist") == [repo / "datasets" / "mnist"]
    assert data.search_dirs("fashion-mnist") == [repo / "datasets" / "fashion-mnist",
                                                 DEBIAN_FASHION]
    assert data.search_dirs("fashion-mnist", root=tmp_path) == [tmp_path]
    with pytest.raises(ValueError, match="split"):
        load_mnist("valid", root=tmp_path, download=False)


def test_command_line(mirrors, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(data.CHECKSUMS, "mnist", mirrors.checksums)
    code = data.main(["download", "mnist", "--root", str(tmp_path / "mnist"), "--split", "test",
                      "--mirror", mirrors.url("good"), "--no-progress"])
    assert code == 0
    assert "(30, 28, 28)" in capsys.readouterr().out
    monkeypatch.setenv("MINISC_DATA", str(tmp_path))
    assert data.main(["info"]) == 0
    out = capsys.readouterr().out
    assert str(tmp_path / "mnist" / TEST_IMAGES) in out and "missing" in out


def test_official_checksums_are_recorded():
    for dataset in ("mnist", "fashion-mnist"):
        all_files = data.SPLIT_FILES["train"] + data.SPLIT_FILES["test"]
        assert set(data.CHECKSUMS[dataset]) == set(all_files)
        for entry in data.CHECKSUMS[dataset].values():
            assert len(entry["md5"]) == 32
            assert entry["sha256"] is None or len(entry["sha256"]) == 64
        assert data.MIRRORS[dataset] and all(u.endswith("/") for u in data.MIRRORS[dataset])


@pytest.mark.skipif(not (DEBIAN_FASHION / "t10k-labels-idx1-ubyte.gz").exists(),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_mnist_from_debian(tmp_path, monkeypatch):
    monkeypatch.setenv("MINISC_DATA", str(tmp_path))  # nothing in our own folder
    images, labels = load_fashion_mnist("test", download=False)
    assert images.dtype == np.uint8 and images.shape == (10000, 28, 28)
    assert labels.dtype == np.uint8 and labels.shape == (10000,)
    assert np.bincount(labels, minlength=10).tolist() == [1000] * 10


# ---------------------------------------------------------------------------------------------
# Feeding a network
# ---------------------------------------------------------------------------------------------


def test_to_float():
    images = np.zeros((3, 28, 28), dtype=np.uint8)
    images[0, 0, 0] = 255
    images[1, 5, 5] = 51
    x = to_float(images)
    assert x.dtype == np.float32 and x.shape == (3, 1, 28, 28)
    assert x.min() == 0.0 and x.max() == 1.0 and x[1, 0, 5, 5] == pytest.approx(0.2)
    z = to_float(images, standardize=True)
    assert z.dtype == np.float32 and z.shape == (3, 1, 28, 28)
    assert z[0, 0, 1, 1] == pytest.approx(-data.MNIST_MEAN / data.MNIST_STD)
    assert z[0, 0, 0, 0] == pytest.approx((1 - data.MNIST_MEAN) / data.MNIST_STD)
    w = to_float(images, standardize=(0.5, 0.5))
    assert w.min() == pytest.approx(-1.0) and w.max() == pytest.approx(1.0)
    assert to_float(np.zeros((2, 8, 6), np.uint8)).shape == (2, 1, 8, 6)


def test_to_float_on_the_sample_is_roughly_standard():
    images, _ = load_mnist_sample("validation")
    z = to_float(images, standardize=True)
    assert abs(float(z.mean())) < 0.05 and abs(float(z.std()) - 1) < 0.05


def test_to_float_rejects_bad_input():
    with pytest.raises(TypeError, match="uint8"):
        to_float(np.zeros((2, 28, 28), dtype=np.float32))
    with pytest.raises(ValueError, match=r"images\[None\]"):
        to_float(np.zeros((28, 28), dtype=np.uint8))
    with pytest.raises(ValueError, match="standard deviation"):
        to_float(np.zeros((1, 2, 2), dtype=np.uint8), standardize=(0.1, 0.0))


def _epoch(x, y, **kw):
    return list(iterate_minibatches(x, y, **kw))


def test_iterate_minibatches_covers_every_sample_once():
    x = np.arange(10 * 4, dtype=np.float32).reshape(10, 1, 2, 2)
    y = np.arange(10, dtype=np.uint8)
    batches = _epoch(x, y, batch_size=3, rng=0)
    assert [len(yb) for _, yb in batches] == [3, 3, 3, 1]
    seen = np.concatenate([yb for _, yb in batches])
    assert sorted(seen.tolist()) == list(range(10))
    assert seen.tolist() != list(range(10))  # shuffled
    for xb, yb in batches:  # inputs and targets stay paired
        assert xb.dtype == np.float32 and xb.shape[1:] == (1, 2, 2) and yb.dtype == np.uint8
        np.testing.assert_array_equal(xb[:, 0, 0, 0], yb * 4)
    assert [len(yb) for _, yb in _epoch(x, y, batch_size=3, rng=0, drop_last=True)] == [3, 3, 3]
    assert [len(yb) for _, yb in _epoch(x, y, batch_size=5, drop_last=True)] == [5, 5]


def test_iterate_minibatches_determinism():
    x = np.arange(100, dtype=np.float32)[:, None]
    y = np.arange(100)

    def order(batches):
        return np.concatenate([yb for _, yb in batches]).tolist()

    assert order(_epoch(x, y, batch_size=16, rng=42)) == order(_epoch(x, y, batch_size=16, rng=42))
    assert order(_epoch(x, y, batch_size=16, rng=42)) != order(_epoch(x, y, batch_size=16, rng=43))
    # One Generator reused: a new order every epoch, the same sequence of orders every run.
    g1, g2 = np.random.default_rng(5), np.random.default_rng(5)
    e1, e2 = order(_epoch(x, y, batch_size=16, rng=g1)), order(_epoch(x, y, batch_size=16, rng=g1))
    assert e1 != e2
    assert [e1, e2] == [order(_epoch(x, y, batch_size=16, rng=g2)),
                        order(_epoch(x, y, batch_size=16, rng=g2))]
    assert order(_epoch(x, y, batch_size=30, shuffle=False)) == list(range(100))


def test_iterate_minibatches_rejects_bad_input():
    with pytest.raises(ValueError, match="same length"):
        _epoch(np.zeros((3, 2)), np.zeros(4), batch_size=2)
    with pytest.raises(ValueError, match="batch_size"):
        _epoch(np.zeros((3, 2)), np.zeros(3), batch_size=0)


# ---------------------------------------------------------------------------------------------
# Robustness: deadlines, shapes, checksums, permissions, the command line's checks
# ---------------------------------------------------------------------------------------------


class _Trickle(http.server.BaseHTTPRequestHandler):
    """Announces 1,000 bytes, then sends one every 0.2 s: never silent long enough for a
    per-read timeout, far too slow to finish."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        try:
            for _ in range(1000):
                self.wfile.write(b"\0")
                self.wfile.flush()
                if self.server.stop.wait(0.2):
                    return
        except OSError:          # the client gave up and hung up, as it should
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def trickle():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Trickle)
    server.daemon_threads = True
    server.stop = threading.Event()
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/slow/"
    server.stop.set()
    server.shutdown()
    server.server_close()


def test_a_trickling_server_meets_the_overall_deadline(trickle, tmp_path):
    start = time.monotonic()
    with pytest.raises(DownloadError) as info:
        load_mnist("test", root=tmp_path, mirrors=[trickle], progress=False, timeout=1.0)
    spent = time.monotonic() - start
    assert spent < 4                                      # the deadline, not 200 s of trickle
    message = str(info.value)
    assert trickle + TEST_IMAGES in message               # names the mirror...
    assert "gave up after 1." in message and "deadline" in message   # ...and the time spent
    _assert_nothing_left(tmp_path)


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf")])
def test_timeout_must_be_positive_and_finite(tmp_path, timeout):
    with pytest.raises(ValueError, match="timeout must be a finite number of seconds > 0"):
        load_mnist("test", root=tmp_path, timeout=timeout)


@pytest.mark.parametrize("compress", [False, True])
def test_files_of_the_wrong_shape_are_refused_naming_the_file(tmp_path, compress):
    suffix = ".gz" if compress else ""
    images = tmp_path / (TEST_IMAGES[:-3] + suffix)
    labels = tmp_path / (TEST_LABELS[:-3] + suffix)
    write_idx(images, np.zeros((2, 5, 7), np.uint8))      # not 28 x 28
    write_idx(labels, np.zeros(2, np.uint8))
    no_checks = {TEST_IMAGES: {}, TEST_LABELS: {}}        # structure only: no checksum known
    with pytest.raises(CorruptDataError, match=r"expected uint8 images of shape \(N, 28, 28\), "
                                               r"found uint8 \(2, 5, 7\)") as info:
        load_mnist("test", root=tmp_path, download=False, checksums=no_checks)
    assert str(images) in str(info.value)
    write_idx(images, np.zeros((3, 28, 28), np.uint8))
    write_idx(labels, np.zeros((3, 2), np.uint8))
    with pytest.raises(CorruptDataError, match=r"expected uint8 labels of shape \(N,\)") as info:
        load_mnist("test", root=tmp_path, download=False, checksums=no_checks)
    assert str(labels) in str(info.value)
    write_idx(labels, np.zeros(4, np.uint8))              # 3 images, 4 labels
    with pytest.raises(CorruptDataError, match="3 images but the labels file 4 labels"):
        load_mnist("test", root=tmp_path, download=False, checksums=no_checks)


def test_uncompressed_official_files_are_checked_by_content(tmp_path):
    # An uncompressed copy of MNIST's training images used to be checked for its structure
    # only; with the SHA-256 of their content recorded, a well-formed impostor is refused.
    (tmp_path / TRAIN_IMAGES[:-3]).write_bytes(_idx_bytes(np.zeros((3, 28, 28), np.uint8)))
    (tmp_path / TRAIN_LABELS[:-3]).write_bytes(_idx_bytes(np.zeros(3, np.uint8)))
    with pytest.raises(CorruptDataError, match="checksum mismatch") as info:
        load_mnist("train", root=tmp_path, download=False)
    assert str(tmp_path / TRAIN_IMAGES[:-3]) in str(info.value)


def test_every_official_file_has_a_content_checksum():
    assert data.CHECKSUMS["mnist"]["train-images-idx3-ubyte.gz"]["sha256"] == \
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"
    assert data.CHECKSUMS["mnist"]["train-labels-idx1-ubyte.gz"]["sha256"] == \
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"
    assert data.CHECKSUMS["mnist"]["t10k-images-idx3-ubyte.gz"]["sha256"] == \
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"
    assert data.CHECKSUMS["mnist"]["t10k-labels-idx1-ubyte.gz"]["sha256"] == \
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"
    for dataset in data.CHECKSUMS.values():
        assert all(len(entry["sha256"]) == 64 for entry in dataset.values())


def test_downloads_honour_the_umask(mirrors, tmp_path):
    old = os.umask(0o022)
    try:
        _load(mirrors, tmp_path, [mirrors.url("good")])
    finally:
        os.umask(old)
    for path in tmp_path.iterdir():
        assert path.stat().st_mode & 0o777 == 0o644, path


def test_per_user_folder_when_not_running_from_a_checkout(tmp_path, monkeypatch):
    monkeypatch.delenv("MINISC_DATA", raising=False)
    monkeypatch.setattr(data, "RUNNING_FROM_CHECKOUT", False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data.default_root("mnist") == tmp_path / "xdg" / "minisc" / "mnist"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/is/ignored")       # the XDG rule
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data.default_root("fashion-mnist") == tmp_path / "home" / ".cache" / "minisc" / "fashion-mnist"
    monkeypatch.setenv("MINISC_DATA", str(tmp_path / "mine"))          # still the override
    assert data.default_root("mnist") == tmp_path / "mine" / "mnist"


@pytest.mark.parametrize("args, message", [
    (["--root", "{file}"], "argument --root: .* is a file; expected a folder"),
    (["--timeout", "0"], r"argument --timeout: expected a number > 0, got 0"),
    (["--timeout", "soon"], r"argument --timeout: expected a number > 0, got 'soon'"),
])
def test_command_line_refuses_bad_arguments_in_one_line(tmp_path, capsys, args, message):
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    args = [a.replace("{file}", str(afile)) for a in args]
    with pytest.raises(SystemExit) as info:
        data.main(["download", "mnist", *args])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert re.search(message, err), err
    assert afile.read_text() == "not a folder"


def test_command_line_passes_the_timeout_on(trickle, tmp_path, capsys):
    code = data.main(["download", "mnist", "--root", str(tmp_path), "--split", "test",
                      "--mirror", trickle, "--timeout", "0.5", "--no-progress"])
    assert code == 1
    assert "gave up after 0.5" in capsys.readouterr().err
