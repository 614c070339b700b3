"""Writing files so that an interruption never leaves a half-written one behind."""

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


def _umask():
    """The process's current umask (os.umask can only be read by setting it, so set it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def default_file_mode():
    """The permission bits a new file gets from open(): 0o666 minus the umask (0o644 under 022)."""
    return 0o666 & ~_umask()


@contextmanager
def atomic_write(path, mode="wb"):
    """Open a temporary file beside ``path``; rename it over ``path`` only if the block succeeds.

        with atomic_write("model.npz") as f:
            np.savez(f, ...)

    If anything fails inside the block, the temporary file is deleted and ``path`` keeps its
    old content (or stays absent). The rename (os.replace) is atomic on one file system.

    The finished file gets the permissions an ordinary ``open(path, "w")`` would give it
    (0644 under the usual umask 022), so models and histories can be shared in a class folder.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates the file readable by its owner only (0600), whatever the umask, so
        # that nobody can read a half-written secret; our files are not secret.
        os.chmod(tmp, default_file_mode())
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
