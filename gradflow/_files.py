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
    removed and the exception propagates.  The new file gets the permissions
    of the file it replaces, or those of a newly created file (``0o666``
    less the umask) rather than :func:`tempfile.mkstemp`'s owner-only ones.
    """
    path = pathlib.Path(os.fspath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, _mode_for(path))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _mode_for(path: pathlib.Path) -> int:
    """The permission bits a file written at ``path`` should have: those of the file there, else 0o666 less the umask."""
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
