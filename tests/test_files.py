"""Atomic writes: all or nothing, with ordinary permissions."""

import os
import stat

import pytest

from gradflow._files import atomic_write


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_file_gets_the_permissions_the_umask_gives_not_owner_only(tmp_path):
    old = os.umask(0o022)
    try:
        path = atomic_write(tmp_path / "sub" / "a.txt", lambda h: h.write("hello"), mode="w")
    finally:
        os.umask(old)
    assert path.read_text() == "hello"
    assert _mode(path) == 0o644


def test_a_replaced_file_keeps_its_permissions(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"old")
    os.chmod(path, 0o640)
    atomic_write(path, lambda h: h.write(b"new"))
    assert path.read_bytes() == b"new" and _mode(path) == 0o640


def test_an_interrupted_write_leaves_the_old_file_and_no_temporary_file(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old")

    def fail(handle):
        handle.write("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, fail, mode="w")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]
