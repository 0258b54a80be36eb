"""Atomic output files: complete or absent, never half-written; usual permissions."""

import os
import stat

import pytest

from gi_numba.errors import GIError
from gi_numba.fileio import write_atomically


def test_written_file_has_the_usual_permissions(tmp_path):
    mask = os.umask(0o022)
    try:
        write_atomically(tmp_path / "out.bin", b"data")
    finally:
        os.umask(mask)
    assert (tmp_path / "out.bin").read_bytes() == b"data"
    assert stat.S_IMODE((tmp_path / "out.bin").stat().st_mode) == 0o644


def test_interrupted_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")

    def interrupted(fd):
        raise KeyboardInterrupt  # Ctrl-C while the new bytes are being flushed

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomically(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(GIError, match="cannot write"):
        write_atomically(tmp_path / "no" / "out.bin", b"x")
