"""Data for minisc: MNIST, Fashion-MNIST and a small MNIST sample that ships with the code.

Everything here is plain Python and NumPy, written to be read. The module has four parts:

1. An IDX reader and writer (:func:`read_idx`, :func:`write_idx`). IDX is the tiny binary
   format in which MNIST and Fashion-MNIST are distributed.
2. The embedded sample (:func:`load_mnist_sample`): 5,000 real MNIST training digits, 500 per
   class, stored in ``datasets/mnist_sample.npz``. It needs no network at all.
3. The full data sets (:func:`load_mnist`, :func:`load_fashion_mnist`): looked for on disk,
   downloaded from public mirrors when missing, and always checked against the checksums of the
   official files before use.
4. Helpers to feed a network (:func:`to_float`, :func:`iterate_minibatches`).

From the command line::

    python -m minisc.data info                    # where files are looked for, which exist
    python -m minisc.data download mnist          # fetch the four MNIST files
    python -m minisc.data download fashion-mnist --root /some/folder

Data credits: MNIST by Yann LeCun, Corinna Cortes and Christopher J.C. Burges (CC BY-SA 3.0);
Fashion-MNIST by Zalando Research (MIT licence). See ``datasets/README.md``.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import Iterator, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from .cli import OneLineParser, positive_float
from .files import default_file_mode

__all__ = [
    "read_idx",
    "write_idx",
    "parse_idx",
    "load_mnist_sample",
    "load_mnist",
    "load_fashion_mnist",
    "to_float",
    "iterate_minibatches",
    "default_root",
    "search_dirs",
    "DownloadError",
    "CorruptDataError",
    "CHECKSUMS",
    "MIRRORS",
    "SPLIT_FILES",
    "MNIST_MEAN",
    "MNIST_STD",
    "FASHION_MNIST_MEAN",
    "FASHION_MNIST_STD",
    "FASHION_MNIST_CLASSES",
    "SAMPLE_PATH",
    "user_data_dir",
]

PathLike = Union[str, "os.PathLike[str]"]


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


class DownloadError(RuntimeError):
    """Every mirror failed for a file (offline, HTTP errors, cut connections, bad checksums).

    The message lists each URL tried and why it failed, and what the user can do instead.
    ``attempts`` holds the same facts as a list of ``(url, reason)`` pairs.
    """

    def __init__(self, message: str, attempts: Sequence[Tuple[str, str]] = ()):
        super().__init__(message)
        self.attempts = list(attempts)


class CorruptDataError(ValueError):
    """A data file exists on disk but is damaged: wrong checksum, or not valid IDX / npz."""


# ---------------------------------------------------------------------------------------------
# 1. The IDX format
# ---------------------------------------------------------------------------------------------
#
# An IDX file is a header followed by the raw numbers, nothing else:
#
#   bytes 0-1   two zero bytes                      0x00 0x00
#   byte  2     a code saying what type each number has (0x08 = unsigned byte, see below)
#   byte  3     how many dimensions the array has   (1 for labels, 3 for images)
#   then        one 4-byte size per dimension, as big-endian unsigned integers ("uint32",
#               most significant byte first); MNIST's training images say 60000, 28, 28
#   then        the numbers themselves, row-major (the last index changes fastest),
#               each stored big-endian too.
#
# So the training images are 4 + 3*4 = 16 bytes of header and 60000*28*28 bytes of pixels,
# and the training labels are 4 + 1*4 = 8 bytes of header and 60000 bytes of labels.
# The official files are additionally gzip-compressed (".gz").

# Type code -> NumPy dtype. The ">" means big-endian, the byte order IDX uses.
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
# The reverse table, used by the writer: NumPy type -> IDX code.
_IDX_CODES = {dt.newbyteorder("=").type: code for code, dt in _IDX_DTYPES.items()}

_GZIP_MAGIC = b"\x1f\x8b"  # every gzip stream starts with these two bytes


def _decompress_if_gzip(raw: bytes, name: str) -> bytes:
    """Return the content of ``raw``, gunzipped if it is a gzip stream.

    We look at the first two bytes rather than at the file name, so a compressed file saved
    without ".gz" (or the reverse) is still read correctly.
    """
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        # BadGzipFile is an OSError; a cut-off stream raises EOFError.
        raise ValueError(f"{name}: damaged gzip data ({exc})") from exc


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Turn the (already decompressed) bytes of an IDX file into a NumPy array.

    ``name`` is only used in error messages. Raises ``ValueError`` if the header is not IDX or
    if the header and the amount of data disagree. The result has the IDX type in native byte
    order (uint8 for MNIST) and the shape written in the header; it is a fresh, writable array.
    """
    if len(data) < 4:
        raise ValueError(
            f"{name}: not an IDX file: expected at least a 4-byte header, found {len(data)} bytes"
        )
    zero0, zero1, code, ndim = data[0], data[1], data[2], data[3]
    if zero0 != 0 or zero1 != 0 or code not in _IDX_DTYPES:
        raise ValueError(
            f"{name}: not an IDX file: expected a magic number 00 00 <type> <ndim> with type "
            f"in {{{', '.join(f'{c:02x}' for c in _IDX_DTYPES)}}}, found bytes "
            f"{data[:4].hex(' ')}"
        )
    if ndim == 0:
        raise ValueError(f"{name}: IDX header says 0 dimensions; expected at least 1")
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise ValueError(
            f"{name}: truncated header: {ndim} dimensions need {header_size} header bytes, "
            f"found only {len(data)}"
        )
    # The sizes: ndim big-endian uint32 numbers right after the first four bytes.
    shape = tuple(int(s) for s in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    found = len(data) - header_size
    if found < expected:
        raise ValueError(
            f"{name}: truncated data: the header announces shape {shape} of {dtype.name}, "
            f"i.e. {expected} bytes after the header, but only {found} bytes are there"
        )
    if found > expected:
        raise ValueError(
            f"{name}: size mismatch: the header announces shape {shape} of {dtype.name}, "
            f"i.e. {expected} bytes after the header, but {found} bytes are there "
            f"({found - expected} extra)"
        )
    array = np.frombuffer(data, dtype=dtype, count=expected // dtype.itemsize, offset=header_size)
    # Convert to the machine's own byte order and make a writable copy (frombuffer on bytes
    # gives a read-only view).
    return array.astype(dtype.newbyteorder("="), copy=True).reshape(shape)


def read_idx(path: PathLike) -> np.ndarray:
    """Read an IDX file, gzip-compressed or raw, into a NumPy array.

    Parameters
    ----------
    path : str or Path
        The file. Compression is detected from the content (gzip's first two bytes), so both
        ``train-images-idx3-ubyte.gz`` and ``train-images-idx3-ubyte`` work.

    Returns
    -------
    numpy.ndarray
        Shape as written in the header, e.g. uint8 ``(60000, 28, 28)`` for MNIST training
        images and uint8 ``(60000,)`` for the labels.

    Raises
    ------
    ValueError
        Wrong magic number, unknown type code, truncated file, or more data than the header
        announces. The message names the file and says what was expected and what was found.
    """
    path = Path(path)
    return parse_idx(_decompress_if_gzip(path.read_bytes(), str(path)), str(path))


def write_idx(path: PathLike, array: np.ndarray) -> Path:
    """Write ``array`` to ``path`` in IDX format; gzip-compressed if the name ends with ".gz".

    Supported dtypes: uint8, int8, int16, int32, float32, float64 (the types IDX knows). The
    array may have 1 to 255 dimensions. Returns the path. The gzip header's time stamp is
    fixed at 0 so that the same array always gives the same bytes.
    """
    path = Path(path)
    array = np.asarray(array)
    code = _IDX_CODES.get(array.dtype.type)
    if code is None:
        raise TypeError(
            f"write_idx: IDX cannot store dtype {array.dtype}; use one of "
            f"{', '.join(dt.newbyteorder('=').name for dt in _IDX_DTYPES.values())}"
        )
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"write_idx: IDX needs 1 to 255 dimensions, got {array.ndim}")
    if any(s >= 2**32 for s in array.shape):
        raise ValueError(f"write_idx: every size must fit in 32 bits, got {array.shape}")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    payload = np.ascontiguousarray(array, dtype=_IDX_DTYPES[code]).tobytes()
    data = header + payload
    if path.name.endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)
    return path


# ---------------------------------------------------------------------------------------------
# Where files live
# ---------------------------------------------------------------------------------------------

# Two ways minisc can be installed, and where its files are in each:
#
# - from a checkout (``pip install -e .``, or running inside the repository): the embedded
#   sample is the repository's ``datasets/mnist_sample.npz``, and downloads go next to it,
#   into ``datasets/mnist/`` and ``datasets/fashion-mnist/`` (kept out of git);
# - from a wheel (``pip install .`` or from an index): the build maps the repository's
#   ``datasets/`` folder into the package as ``minisc/_datasets/`` (see pyproject.toml), so
#   the sample travels inside the package. Downloads must never go into site-packages (it may
#   be read-only or shared, and a stray ``datasets/`` folder there would shadow imports), so
#   they go to a per-user folder instead: ``$XDG_CACHE_HOME/minisc/`` or ``~/.cache/minisc/``.
_PACKAGE_DIR = Path(__file__).resolve().parent
_REPO_DATASETS = _PACKAGE_DIR.parent / "datasets"
_PACKAGED_DATASETS = _PACKAGE_DIR / "_datasets"

#: True when minisc runs from its repository (the package sits beside pyproject.toml and
#: datasets/), False when it was installed from a wheel.
RUNNING_FROM_CHECKOUT = (_PACKAGE_DIR.parent / "pyproject.toml").is_file() and _REPO_DATASETS.is_dir()

#: The embedded sample (see load_mnist_sample).
SAMPLE_PATH = (_REPO_DATASETS if RUNNING_FROM_CHECKOUT else _PACKAGED_DATASETS) / "mnist_sample.npz"


def user_data_dir() -> Path:
    """The per-user folder for downloads when minisc is not running from a checkout.

    ``$XDG_CACHE_HOME/minisc`` if that variable names an absolute folder (the XDG rule),
    else ``~/.cache/minisc``.
    """
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "minisc"


#: Name of the environment variable that moves the data folder. It names a folder that holds
#: ``mnist/`` and ``fashion-mnist/`` subfolders.
ENV_VAR = "MINISC_DATA"

#: Where Debian's package ``dataset-fashion-mnist`` installs the four Fashion-MNIST files
#: (gzip-compressed, official names). Read only; never written to.
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

_FOLDERS = {"mnist": "mnist", "fashion-mnist": "fashion-mnist"}
_TITLES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}

#: The official file names of each split, (images, labels). Same names for both data sets.
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def _check_dataset(dataset: str) -> str:
    if dataset not in _FOLDERS:
        raise ValueError(f"unknown data set {dataset!r}; expected one of {sorted(_FOLDERS)}")
    return dataset


def default_root(dataset: str) -> Path:
    """The folder where ``dataset`` ("mnist" or "fashion-mnist") is stored and downloaded to.

    ``$MINISC_DATA/<dataset>/`` if the environment variable ``MINISC_DATA`` is set; otherwise
    ``datasets/<dataset>/`` in the minisc checkout (next to the embedded sample) or, for an
    installed minisc, ``<user_data_dir()>/<dataset>/`` (``~/.cache/minisc/mnist/``, say).
    """
    folder = _FOLDERS[_check_dataset(dataset)]
    env = os.environ.get(ENV_VAR)
    if env:
        base = Path(env).expanduser()
    else:
        base = _REPO_DATASETS if RUNNING_FROM_CHECKOUT else user_data_dir()
    return base / folder


def search_dirs(dataset: str, root: Optional[PathLike] = None) -> list:
    """The folders searched for ``dataset``'s files, in order; the first one is written to.

    With ``root`` given, only ``root``. Without it, :func:`default_root` and, for
    Fashion-MNIST, also Debian's ``/usr/share/datasets/fashion-mnist/``.
    """
    _check_dataset(dataset)
    if root is not None:
        return [Path(root).expanduser()]
    dirs = [default_root(dataset)]
    if dataset == "fashion-mnist":
        dirs.append(DEBIAN_FASHION_MNIST)
    return dirs


def _find_file(name: str, dirs: Sequence[Path]) -> Optional[Path]:
    """First existing copy of ``name`` in ``dirs``, compressed ("x.gz") or not ("x")."""
    plain = name[:-3] if name.endswith(".gz") else name
    for d in dirs:
        for candidate in (d / name, d / plain):
            if candidate.is_file():
                return candidate
    return None


# ---------------------------------------------------------------------------------------------
# Checksums and mirrors
# ---------------------------------------------------------------------------------------------
#
# For each official file we keep the MD5 of the .gz as published (MNIST's and Fashion-MNIST's
# pages, and the list torchvision uses) and, where known, the SHA-256 of the *decompressed*
# content. A file passes if EITHER matches. Why both? Debian's package dataset-fashion-mnist
# ships the same data recompressed: its .gz bytes (so its MD5) differ from upstream, but the
# decompressed content is identical, so the SHA-256 check accepts it. The SHA-256 is also what
# checks an uncompressed copy (``train-images-idx3-ubyte`` without ".gz"); it is known for
# every official file.
#
# Tests (or anyone serving their own copies) can add or replace entries, either here or, more
# simply, through the ``checksums=`` keyword of load_mnist / load_fashion_mnist.

#: dataset -> official file name -> {"md5": MD5 of the .gz, "sha256": SHA-256 of the content}
CHECKSUMS = {
    "mnist": {
        "train-images-idx3-ubyte.gz": {
            "md5": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "sha256": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        },
        "train-labels-idx1-ubyte.gz": {
            "md5": "d53e105ee54ea40749a09fcbcd1e9432",
            "sha256": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        },
        "t10k-images-idx3-ubyte.gz": {
            "md5": "9fb629c4189551a2d022fa330f9573f3",
            "sha256": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        },
        "t10k-labels-idx1-ubyte.gz": {
            "md5": "ec29112dd5afa0611ce80d1b7f02629c",
            "sha256": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        },
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": {
            "md5": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "sha256": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        },
        "train-labels-idx1-ubyte.gz": {
            "md5": "25c81989df183df01b3e8a0aad5dffbe",
            "sha256": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        },
        "t10k-images-idx3-ubyte.gz": {
            "md5": "bef4ecab320f06d8554ea6380940ec79",
            "sha256": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        },
        "t10k-labels-idx1-ubyte.gz": {
            "md5": "bb300cfdad3c16e7a12a480ee83cd310",
            "sha256": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        },
    },
}

#: dataset -> base URLs tried in order; each file is fetched from base URL + official name.
#: These are the public mirrors that widely used loaders (torchvision among them) rely on; the
#: original MNIST site often refuses downloads nowadays, so it comes last.
MIRRORS = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    "fashion-mnist": (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
}


def _checks_for(dataset: str, checksums: Optional[Mapping[str, Mapping]]) -> dict:
    """The registry entries for ``dataset``, with the caller's ``checksums`` laid on top."""
    merged = {name: dict(entry) for name, entry in CHECKSUMS[dataset].items()}
    for name, entry in (checksums or {}).items():
        merged[name] = {"md5": entry.get("md5"), "sha256": entry.get("sha256")}
    return merged


def _verify(raw: bytes, name: str, check: Optional[Mapping]) -> bytes:
    """Check the bytes of a data file; return its decompressed content.

    Accepted if the MD5 of the bytes as stored matches ``check["md5"]`` (the official .gz),
    or if the SHA-256 of the decompressed content matches ``check["sha256"]``. When neither
    can be compared (no checksum known, or an uncompressed file with only the .gz's MD5
    known: files of your own passed through ``checksums=``), only the structure is checked,
    later, by the IDX parser and :func:`_check_shape`.
    Raises ``ValueError`` saying what was expected and found.
    """
    md5 = (check or {}).get("md5")
    sha256 = (check or {}).get("sha256")
    got_md5 = hashlib.md5(raw).hexdigest()
    content = _decompress_if_gzip(raw, name)
    if sha256 is None and (md5 is None or not raw.startswith(_GZIP_MAGIC)):
        # Nothing we can compare: no checksum at all, or an uncompressed copy of a file of
        # which only the .gz's MD5 is known. Structure only, then.
        return content
    if md5 is not None and got_md5 == md5:
        return content
    got_sha = hashlib.sha256(content).hexdigest()
    if sha256 is not None and got_sha == sha256:
        return content
    wanted = []
    if md5 is not None:
        wanted.append(f"MD5 {md5} (of the .gz)")
    if sha256 is not None:
        wanted.append(f"SHA-256 {sha256} (of the decompressed content)")
    raise ValueError(
        f"{name}: checksum mismatch: expected {' or '.join(wanted)}; found MD5 {got_md5}, "
        f"SHA-256 {got_sha}"
    )


def _check_shape(array: np.ndarray, name: str, where: str) -> np.ndarray:
    """An images file must hold uint8 (N, 28, 28), a labels file uint8 (N,) in 0..9.

    ``name`` is the official file name (it says which of the two it is); ``where`` names the
    file in the message. Raises ``ValueError`` saying what was expected and found.
    """
    if "images" in name:
        if array.dtype != np.uint8 or array.ndim != 3 or array.shape[1:] != (28, 28):
            raise ValueError(f"{where}: expected uint8 images of shape (N, 28, 28), found "
                             f"{array.dtype} {array.shape}")
    else:
        if array.dtype != np.uint8 or array.ndim != 1:
            raise ValueError(f"{where}: expected uint8 labels of shape (N,), found "
                             f"{array.dtype} {array.shape}")
        if array.size and array.max() > 9:
            raise ValueError(f"{where}: labels must be 0..9, found {array.max()}")
    return array


# ---------------------------------------------------------------------------------------------
# Downloading
# ---------------------------------------------------------------------------------------------


def _progress_bar(total: Optional[int], desc: str, enabled: bool):
    """A tqdm bar, or a do-nothing stand-in when progress is off or tqdm is missing."""
    if enabled:
        try:
            from tqdm import tqdm
        except ImportError:  # tqdm is a declared dependency, but don't fail without it
            pass
        else:
            return tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024)

    class _Quiet:
        def update(self, n):
            pass

        def close(self):
            pass

    return _Quiet()


class DeadlineExceeded(TimeoutError):
    """A file took longer than its deadline to arrive from one mirror."""


def _shorten_read_timeout(response, seconds: float) -> None:
    """Make the next read of ``response`` wait at most ``seconds`` (at least 10 ms).

    urllib's ``timeout`` applies to each read on its own, so a server that trickles one byte
    a second would never trip it; shrinking it to the time left keeps the overall deadline.
    urllib offers no public handle on the socket, hence the defensive getattr chain: if the
    internals change, the deadline is still checked between reads, only less tightly.
    """
    sock = getattr(getattr(getattr(response, "fp", None), "raw", None), "_sock", None)
    if sock is not None:
        sock.settimeout(max(seconds, 0.01))


def _fetch_one(url: str, tmp_file, name: str, progress: bool, timeout: float) -> None:
    """Stream ``url`` into the open binary file ``tmp_file`` within ``timeout`` seconds.

    ``timeout`` is an overall deadline for this one file from this one mirror: connecting,
    waiting and receiving together. Raises on any failure (DeadlineExceeded when too slow).
    """
    start = time.monotonic()

    def time_left():
        left = timeout - (time.monotonic() - start)
        if left <= 0:
            raise DeadlineExceeded(f"gave up after {time.monotonic() - start:.1f} s: the "
                                   f"deadline for one file is {timeout:g} s (timeout=...)")
        return left

    request = urllib.request.Request(url, headers={"User-Agent": "minisc"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length is not None and length.isdigit() else None
        bar = _progress_bar(total, name, progress)
        received = 0
        try:
            while True:
                _shorten_read_timeout(response, time_left())
                try:
                    # read1 returns what one receive brings; read(n) would wait for n bytes.
                    chunk = response.read1(1 << 16)
                except OSError:           # socket timeouts are OSErrors too
                    time_left()           # past the deadline: say so rather than "timed out"
                    raise
                if not chunk:
                    break
                tmp_file.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
        finally:
            bar.close()
    # urllib does not complain when a server closes the connection early: compare ourselves.
    if total is not None and received != total:
        raise ConnectionError(f"short read: got {received} of {total} bytes")
    if received == 0:
        raise ConnectionError("empty response")


def _download(
    dataset: str,
    name: str,
    dest_dir: Path,
    mirrors: Sequence[str],
    check: Optional[Mapping],
    progress: bool,
    timeout: float,
) -> Path:
    """Fetch ``name`` into ``dest_dir`` from the first mirror that delivers a verified copy.

    Each attempt writes to a hidden temporary file in ``dest_dir``; only a complete file whose
    checksum matches and that parses as IDX is renamed (atomically, ``os.replace``) to its
    final name. Whatever happens, the temporary file is removed. Raises :class:`DownloadError`
    listing every mirror and its failure.
    """
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / name
    attempts = []
    for number, base in enumerate(mirrors, start=1):
        url = base if base.endswith("/") else base + "/"
        url += name
        fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=dest_dir)
        tmp = Path(tmp_name)
        started = time.monotonic()
        try:
            os.chmod(tmp, default_file_mode())    # mkstemp's 0600 would hide it from a class
            with os.fdopen(fd, "wb") as tmp_file:
                _fetch_one(url, tmp_file, name, progress, timeout)
            content = _verify(tmp.read_bytes(), name, check)
            _check_shape(parse_idx(content, f"{name} from {url}"), name, f"{name} from {url}")
            os.replace(tmp, dest)
            return dest
        except urllib.error.HTTPError as exc:
            attempts.append((url, f"HTTP error {exc.code} {exc.reason}"))
        except urllib.error.URLError as exc:
            attempts.append((url, f"cannot connect ({exc.reason})"))
        except ValueError as exc:  # checksum mismatch, damaged gzip, not IDX
            attempts.append((url, str(exc)))
        except DeadlineExceeded as exc:
            attempts.append((url, str(exc)))
        except Exception as exc:  # timeouts, resets, short reads, http.client oddities
            attempts.append((url, f"{type(exc).__name__}: {exc} (after "
                                  f"{time.monotonic() - started:.1f} s)"))
        finally:
            if tmp.exists():
                tmp.unlink()
        if progress and number < len(mirrors):
            print(f"minisc: {url} failed ({attempts[-1][1]}); trying the next mirror",
                  file=sys.stderr)

    title = _TITLES[dataset]
    tried = "\n".join(f"  - {u}: {why}" for u, why in attempts) or "  (no mirror was given)"
    raise DownloadError(
        f"Could not download {name} ({title}); every mirror failed:\n{tried}\n"
        f"What you can do:\n"
        f"  * check your internet connection and run again, or pass other base URLs with "
        f"mirrors=[...];\n"
        f"  * download the file by hand and place it at {dest} "
        f"(compressed as {name} or uncompressed as {name[:-3]}); the folder can be moved "
        f"with root=... or the {ENV_VAR} environment variable;\n"
        f"  * or work offline with minisc.data.load_mnist_sample(), 5,000 real MNIST digits "
        f"that ship with minisc.",
        attempts,
    )


# ---------------------------------------------------------------------------------------------
# 3. The full data sets
# ---------------------------------------------------------------------------------------------


def _load_local(path: Path, name: str, check: Optional[Mapping]) -> np.ndarray:
    """Verify and parse a file found on disk; a bad file is an error, never used silently."""
    try:
        content = _verify(path.read_bytes(), str(path), check)
        return _check_shape(parse_idx(content, str(path)), name, str(path))
    except ValueError as exc:
        if path.parent == DEBIAN_FASHION_MNIST:
            advice = ("reinstall the package (apt-get install --reinstall "
                      "dataset-fashion-mnist)")
        else:
            advice = (f"delete it and run again to download a fresh copy, or replace it by "
                      f"the official {name}")
        raise CorruptDataError(f"{exc}\nThe file {path} cannot be used: {advice}.") from exc


#: Default deadline (seconds) for one file from one mirror: MNIST's largest file is 9.9 MB,
#: which this allows even at about 35 kB/s.
DEFAULT_TIMEOUT = 300.0


def _load_full(
    dataset: str,
    split: str,
    root: Optional[PathLike],
    download: bool,
    mirrors: Optional[Sequence[str]],
    progress: bool,
    checksums: Optional[Mapping[str, Mapping]],
    timeout: float,
) -> Tuple[np.ndarray, np.ndarray]:
    if split not in SPLIT_FILES:
        raise ValueError(f"split must be one of {sorted(SPLIT_FILES)}, got {split!r}")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) \
            or not (timeout > 0 and np.isfinite(timeout)):
        raise ValueError(f"timeout must be a finite number of seconds > 0, got {timeout!r}")
    if isinstance(mirrors, str):  # a single URL, not a list of one-letter "URLs"
        mirrors = [mirrors]
    mirrors = list(MIRRORS[dataset] if mirrors is None else mirrors)
    checks = _checks_for(dataset, checksums)
    dirs = search_dirs(dataset, root)

    arrays = []
    for name in SPLIT_FILES[split]:  # only the two files this split needs
        path = _find_file(name, dirs)
        if path is None:
            if not download:
                raise FileNotFoundError(
                    f"{_TITLES[dataset]} file {name} not found in "
                    f"{', '.join(str(d) for d in dirs)}.\n"
                    f"Place it at {dirs[0] / name}, or call with download=True, "
                    f"or work offline with minisc.data.load_mnist_sample()."
                )
            path = _download(dataset, name, dirs[0], mirrors, checks.get(name), progress, timeout)
        arrays.append(_load_local(path, name, checks.get(name)))

    images, labels = arrays    # each already checked for its shape by _load_local
    if len(labels) != len(images):
        raise CorruptDataError(f"{_TITLES[dataset]} {split}: the images file holds {len(images)} "
                               f"images but the labels file {len(labels)} labels; expected one "
                               f"label per image (files from two different sets?)")
    return images, labels


def load_mnist(
    split: str = "train",
    root: Optional[PathLike] = None,
    download: bool = True,
    mirrors: Optional[Sequence[str]] = None,
    progress: bool = True,
    *,
    checksums: Optional[Mapping[str, Mapping]] = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Tuple[np.ndarray, np.ndarray]:
    """Load the full MNIST training (60,000 digits) or test (10,000 digits) set.

    Parameters
    ----------
    split : "train" or "test"
    root : folder, optional
        Where the files are looked for and downloaded to. Default: ``$MINISC_DATA/mnist/`` if
        the environment variable ``MINISC_DATA`` is set, else ``datasets/mnist/`` in the
        checkout, or ``~/.cache/minisc/mnist/`` for an installed minisc (see
        :func:`default_root`). Files may be compressed (``t10k-images-idx3-ubyte.gz``) or not
        (``t10k-images-idx3-ubyte``).
    download : bool
        Fetch missing files from ``mirrors``. If False, a missing file raises
        ``FileNotFoundError``.
    mirrors : list of base URLs, optional
        Tried in order; each file is fetched from base URL + its official name. Default:
        :data:`MIRRORS` ``["mnist"]``.
    progress : bool
        Show a tqdm progress bar while downloading.
    checksums : dict, optional (keyword only)
        ``{file name: {"md5": ..., "sha256": ...}}`` laid over :data:`CHECKSUMS` ``["mnist"]``;
        ``md5`` is of the .gz as stored, ``sha256`` of the decompressed content, and a file
        passes if either matches. Meant for tests and private mirrors.
    timeout : float (keyword only)
        Deadline in seconds for fetching one file from one mirror (connecting, waiting and
        receiving together); after it the next mirror is tried.

    Returns
    -------
    images : numpy.ndarray, uint8, shape (N, 28, 28), values 0..255 (0 = background)
    labels : numpy.ndarray, uint8, shape (N,), values 0..9

    Raises
    ------
    DownloadError
        Every mirror failed for a file (the message lists them and says what to do).
    CorruptDataError
        A file on disk fails its checksum or is not valid IDX.
    FileNotFoundError
        A file is missing and ``download`` is False.

    Every file, found or downloaded, is checked against the official checksums before use.
    A download goes to a temporary file that is renamed only once complete and verified.
    """
    return _load_full("mnist", split, root, download, mirrors, progress, checksums, timeout)


def load_fashion_mnist(
    split: str = "train",
    root: Optional[PathLike] = None,
    download: bool = True,
    mirrors: Optional[Sequence[str]] = None,
    progress: bool = True,
    *,
    checksums: Optional[Mapping[str, Mapping]] = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Tuple[np.ndarray, np.ndarray]:
    """Load Fashion-MNIST (Zalando Research): 60,000 training or 10,000 test images.

    Same parameters, results and errors as :func:`load_mnist`, with these differences:
    the default folder is ``$MINISC_DATA/fashion-mnist/``, ``datasets/fashion-mnist/`` or
    ``~/.cache/minisc/fashion-mnist/`` (see :func:`default_root`); when
    ``root`` is not given, Debian's ``/usr/share/datasets/fashion-mnist/`` (from
    ``apt-get install dataset-fashion-mnist``) is searched as well; and the default mirrors are
    :data:`MIRRORS` ``["fashion-mnist"]``. Label ``k`` means
    :data:`FASHION_MNIST_CLASSES` ``[k]`` (0 = "T-shirt/top", ..., 9 = "Ankle boot").

    Returns
    -------
    images : numpy.ndarray, uint8, shape (N, 28, 28)
    labels : numpy.ndarray, uint8, shape (N,), values 0..9
    """
    return _load_full("fashion-mnist", split, root, download, mirrors, progress, checksums,
                      timeout)


#: Fashion-MNIST's class names, indexed by label.
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)


# ---------------------------------------------------------------------------------------------
# 2. The embedded sample
# ---------------------------------------------------------------------------------------------

# SHA-256 of images.tobytes() and labels.tobytes() of datasets/mnist_sample.npz, as printed by
# datasets/make_mnist_sample.py. They catch a damaged or replaced sample file.
SAMPLE_IMAGES_SHA256 = "2913c6b6527114b7307e1086335a7665e3f94c74aba3d67525e6f116bf5ae20f"
SAMPLE_LABELS_SHA256 = "41b7b0a9d94690a3a2f54a1d01a9f1cc1b9512e3954fb737ad5ed9f66972403d"

SAMPLE_SPLIT_SEED = 0            # seed of the fixed train/validation split
SAMPLE_VALIDATION_PER_CLASS = 50


def _sample_validation_indices(labels: np.ndarray) -> np.ndarray:
    """Indices (sorted, int64) of the sample's validation digits: 50 per class.

    One generator, ``np.random.default_rng(0)``, visits the classes in order 0, 1, ..., 9;
    for each class it shuffles the positions of that class's digits (in file order) with
    ``rng.permutation`` and the first 50 shuffled positions are the validation set.
    """
    rng = np.random.default_rng(SAMPLE_SPLIT_SEED)
    chosen = []
    for digit in range(10):
        where = np.flatnonzero(labels == digit)
        chosen.append(where[rng.permutation(len(where))[:SAMPLE_VALIDATION_PER_CLASS]])
    return np.sort(np.concatenate(chosen))


def load_mnist_sample(split: str = "all") -> Tuple[np.ndarray, np.ndarray]:
    """The 5,000 real MNIST training digits that ship with minisc (no network needed).

    500 digits of each class, taken from the MNIST training set (none is in the 10,000-digit
    test set). They come from ``datasets/mnist_sample.npz``; see ``datasets/README.md`` for
    their origin.

    Parameters
    ----------
    split : "all", "train" or "validation"
        "all": the 5,000 digits. "validation": 500 digits, 50 per class. "train": the other
        4,500, 450 per class. The split is fixed and stratified: ``np.random.default_rng(0)``
        shuffles the positions of each class in turn (class 0 first, then 1, ... 9) and the
        first 50 shuffled positions of each class form the validation set. The two parts never
        overlap, and every call returns the same digits in file order.

    Returns
    -------
    images : numpy.ndarray, uint8, shape (N, 28, 28), values 0..255 (0 = background)
    labels : numpy.ndarray, uint8, shape (N,), values 0..9

    Raises
    ------
    FileNotFoundError if the sample file is missing; CorruptDataError if it is damaged.
    """
    if split not in ("all", "train", "validation"):
        raise ValueError(f"split must be 'all', 'train' or 'validation', got {split!r}")
    path = SAMPLE_PATH
    if not path.is_file():
        raise FileNotFoundError(
            f"The embedded MNIST sample is missing: expected {path}. It is part of the minisc "
            f"repository (datasets/mnist_sample.npz) and of every minisc wheel; restore it "
            f"(git checkout -- datasets/mnist_sample.npz) or reinstall minisc."
        )
    try:
        with np.load(path, allow_pickle=False) as npz:
            images = npz["images"]
            labels = npz["labels"]
    except Exception as exc:  # BadZipFile, CRC errors, missing keys, ...
        raise CorruptDataError(
            f"{path}: cannot read the embedded MNIST sample ({type(exc).__name__}: {exc}); "
            f"restore it from the repository or rebuild it with datasets/make_mnist_sample.py."
        ) from exc
    if (
        images.dtype != np.uint8
        or images.shape != (5000, 28, 28)
        or labels.dtype != np.uint8
        or labels.shape != (5000,)
        or hashlib.sha256(images.tobytes()).hexdigest() != SAMPLE_IMAGES_SHA256
        or hashlib.sha256(labels.tobytes()).hexdigest() != SAMPLE_LABELS_SHA256
    ):
        raise CorruptDataError(
            f"{path}: the embedded MNIST sample does not match its recorded checksums "
            f"(found images {images.dtype} {images.shape}, labels {labels.dtype} "
            f"{labels.shape}); restore it from the repository or rebuild it with "
            f"datasets/make_mnist_sample.py."
        )
    if split == "all":
        return images, labels
    is_validation = np.zeros(len(labels), dtype=bool)
    is_validation[_sample_validation_indices(labels)] = True
    keep = is_validation if split == "validation" else ~is_validation
    return images[keep], labels[keep]


# ---------------------------------------------------------------------------------------------
# 4. Feeding a network
# ---------------------------------------------------------------------------------------------

# Mean and standard deviation of all pixels of the MNIST training set after scaling to [0, 1]
# (the values used by PyTorch's MNIST example; the embedded sample gives 0.1313 and 0.3086).
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081
# The same for Fashion-MNIST's training set, computed from the 60,000 training images.
FASHION_MNIST_MEAN = 0.2860
FASHION_MNIST_STD = 0.3530


def to_float(
    images: np.ndarray,
    standardize: Union[bool, Tuple[float, float]] = False,
) -> np.ndarray:
    """Turn uint8 images into the float32 batch a network takes.

    Parameters
    ----------
    images : numpy.ndarray, uint8, shape (N, H, W)
        For example MNIST's (N, 28, 28), values 0..255.
    standardize : bool or (mean, std)
        False: just scale to [0, 1] (divide by 255).
        True: then subtract :data:`MNIST_MEAN` (0.1307) and divide by :data:`MNIST_STD`
        (0.3081), so MNIST-like data has mean about 0 and standard deviation about 1; values
        then lie in about [-0.42, 2.82].
        (mean, std): the same with your own numbers, for example
        ``(FASHION_MNIST_MEAN, FASHION_MNIST_STD)`` or
        ``(x.mean(), x.std())`` computed from your own training images scaled to [0, 1].

    Returns
    -------
    numpy.ndarray, float32, shape (N, 1, H, W)
        A new array with one channel axis added ("NCHW": batch, channel, height, width).
    """
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise TypeError(f"to_float expects uint8 images (values 0..255), got {images.dtype}")
    if images.ndim != 3:
        raise ValueError(
            f"to_float expects images of shape (N, H, W), got shape {images.shape}"
            + (" (a single image? use images[None])" if images.ndim == 2 else "")
        )
    x = images.astype(np.float32)[:, None, :, :]
    x /= np.float32(255.0)
    if standardize is not False and standardize is not None:
        mean, std = (MNIST_MEAN, MNIST_STD) if standardize is True else standardize
        if not std > 0:
            raise ValueError(f"standard deviation must be positive, got {std}")
        x -= np.float32(mean)
        x /= np.float32(std)
    return x


def iterate_minibatches(
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    rng: Union[None, int, np.random.Generator] = None,
    shuffle: bool = True,
    drop_last: bool = False,
) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
    """Yield ``(xb, yb)`` mini-batches covering every sample once (one epoch).

    Parameters
    ----------
    x : numpy.ndarray, shape (N, ...)
        Inputs, e.g. float32 (N, 1, 28, 28) from :func:`to_float`.
    y : numpy.ndarray, shape (N, ...)
        Targets, e.g. uint8 (N,) labels.
    batch_size : int, > 0
    rng : None, int or numpy.random.Generator
        Drives the shuffling. An int seed gives the same order on every call; pass one
        Generator (``np.random.default_rng(seed)``) and reuse it to get a new, still
        reproducible, order each epoch. None draws fresh randomness from the system.
    shuffle : bool
        False keeps the data order (and ``rng`` is ignored).
    drop_last : bool
        Skip the final batch if it has fewer than ``batch_size`` samples.

    Yields
    ------
    xb : numpy.ndarray, shape (B, ...), same dtype as x
    yb : numpy.ndarray, shape (B, ...), same dtype as y
        B = batch_size except maybe for the last batch. With shuffle=False the batches are
        views (slices) of x and y, otherwise copies.
    """
    x = np.asarray(x)
    y = np.asarray(y)
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    n = len(x)
    order = np.random.default_rng(rng).permutation(n) if shuffle else None
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        end = min(start + batch_size, n)
        if order is None:
            yield x[start:end], y[start:end]
        else:
            idx = order[start:end]
            yield x[idx], y[idx]


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def _info() -> None:
    print(f"Embedded sample: {SAMPLE_PATH} "
          f"({'present' if SAMPLE_PATH.is_file() else 'MISSING'})")
    env = os.environ.get(ENV_VAR)
    if env:
        print(f"{ENV_VAR}={env}")
    elif RUNNING_FROM_CHECKOUT:
        print(f"{ENV_VAR} is not set: using the checkout's datasets/")
    else:
        print(f"{ENV_VAR} is not set: using the per-user folder {user_data_dir()}")
    for dataset in ("mnist", "fashion-mnist"):
        dirs = search_dirs(dataset)
        print(f"\n{_TITLES[dataset]}: looked for in {', '.join(str(d) for d in dirs)} "
              f"(downloads go to {dirs[0]})")
        for split, names in SPLIT_FILES.items():
            for name in names:
                found = _find_file(name, dirs)
                print(f"  {split:5s} {name:28s} {found if found else '-- missing'}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = OneLineParser(
        prog="python -m minisc.data",
        description="Fetch and inspect the data sets minisc uses.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="show where files are looked for and which exist")
    dl = sub.add_parser("download", help="download (and verify) a full data set")
    dl.add_argument("dataset", choices=sorted(_FOLDERS))
    dl.add_argument("--root", help="folder to store the files in (default: see 'info')")
    dl.add_argument("--split", choices=["train", "test", "both"], default="both")
    dl.add_argument("--mirror", action="append", dest="mirrors", metavar="URL",
                    help="base URL to try (repeatable; replaces the built-in list)")
    dl.add_argument("--no-progress", action="store_true", help="no progress bar")
    dl.add_argument("--timeout", type=positive_float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                    help=f"give up on a file from one mirror after this long (default "
                         f"{DEFAULT_TIMEOUT:g})")
    args = parser.parse_args(argv)

    if args.command == "info":
        _info()
        return 0
    # Check every argument before any work, so a typo costs one line, not a traceback.
    root = None if args.root is None else Path(args.root).expanduser()
    if root is not None and root.exists() and not root.is_dir():
        parser.error(f"argument --root: {args.root} is a file; expected a folder to store the "
                     "data in (it is created if it does not exist)")
    loader = load_mnist if args.dataset == "mnist" else load_fashion_mnist
    splits = ["train", "test"] if args.split == "both" else [args.split]
    try:
        for split in splits:
            images, labels = loader(split, root=args.root, mirrors=args.mirrors,
                                    progress=not args.no_progress, timeout=args.timeout)
            print(f"{_TITLES[args.dataset]} {split}: images {images.dtype} {images.shape}, "
                  f"labels {labels.dtype} {labels.shape}: OK")
    except (DownloadError, CorruptDataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:        # e.g. a folder that cannot be created or written
        print(f"error: {exc.strerror or exc}: {exc.filename or args.root}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
