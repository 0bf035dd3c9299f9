"""Writing files atomically: a write either completes or leaves nothing (and any old file) behind."""

from __future__ import annotations

import os
import pathlib
import tempfile

__all__ = ["atomic_write"]


def atomic_write(path, write, mode: str = "wb") -> pathlib.Path:
    """Call ``write(handle)`` on a temporary file beside ``path``, then move it into place.

    The temporary file is flushed and synced before :func:`os.replace`, which
    is atomic on POSIX and Windows, so readers see the old file or the new one,
    never a half-written one; on any error (or Ctrl-C) the temporary file is
    removed and the exception propagates.
    """
    path = pathlib.Path(os.fspath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
