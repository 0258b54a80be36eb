"""Atomic output files: a crash never leaves a half-written file behind.

Every file the package writes goes to a temporary file in the destination's
folder first and is renamed over the destination only once complete.
"""

import os
import tempfile
from pathlib import Path

from .errors import GIError


def write_atomically(path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and an atomic rename."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise GIError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes files private; give the usual permissions
        os.replace(tmp, path)
    except OSError as exc:
        _remove_quietly(tmp)
        raise GIError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        _remove_quietly(tmp)
        raise


def make_folder(path) -> None:
    """Create the folder ``path`` (and its parents) unless it exists; :class:`GIError` if it cannot be."""
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GIError(f"cannot create folder {path}: {exc.strerror or exc}") from None


def _umask():
    """The process's file-creation mask (reading it means setting it, so set it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def check_writable(path, inputs=()) -> None:
    """Fail early, before a long computation, if ``path`` cannot be created or is one of ``inputs``.

    The folder is tested by creating (and removing) a temporary file in it:
    permission bits say nothing for root, nor on a read-only filesystem.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    for source in inputs:
        if _same_file(path, source):
            raise GIError(f"cannot write {path}: it is the input file {source}; choose another output")
    if path.is_dir():
        raise GIError(f"cannot write {path}: it is a directory")
    if not folder.is_dir():
        raise GIError(f"cannot write {path}: folder {folder} does not exist")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise GIError(f"cannot write {path}: {exc.strerror or exc}") from None
    os.close(fd)
    _remove_quietly(probe)


def _same_file(a, b):
    """Whether paths ``a`` and ``b`` name the same file (the same inode once both exist)."""
    a, b = Path(a), Path(b)
    try:
        return os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


def _remove_quietly(path):
    try:
        os.unlink(path)
    except OSError:
        pass
