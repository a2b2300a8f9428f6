"""Atomic writes: the final name holds the old file or the new one, never a partial one."""

from __future__ import annotations

import json

import numpy as np
import pytest

from noa_platform.atomic import atomic_path, atomic_savez, atomic_write_json, atomic_write_text


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "out.txt"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError, match="killed"), atomic_path(target) as tmp:
        tmp.write_text("half of the new")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_helpers_write_complete_files_and_create_folders(tmp_path):
    path = atomic_write_json(tmp_path / "a" / "b.json", {"x": [1, 2]})
    assert json.loads(path.read_text()) == {"x": [1, 2]} and path.read_text().endswith("\n")
    atomic_savez(tmp_path / "batch-0-1.npz", indices=np.arange(2))
    with np.load(tmp_path / "batch-0-1.npz") as z:
        np.testing.assert_array_equal(z["indices"], [0, 1])
    # The temporary name never matches the final name's glob: readers never see work in progress.
    with atomic_path(tmp_path / "batch-2-3.npz") as tmp:
        tmp.write_bytes(b"")
        assert list(tmp_path.glob("batch-2-*.npz")) == []
