"""Outputs are written atomically, with the usual permissions, and JSON stays strict."""

import json
import math
import os

import numpy as np
import pytest

from sape_geom.fileio import atomic_write, json_safe


def test_atomic_write_permissions_and_no_leftovers(tmp_path):
    old = os.umask(0o022)
    try:
        path = atomic_write(tmp_path / "out.txt", lambda tmp: tmp.write_text("done"))
    finally:
        os.umask(old)
    assert path.read_text() == "done"
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)

    def fail(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "broken.txt", fail)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_json_safe():
    payload = {"a": np.float32(1.5), "b": [math.inf, np.int64(3)], "c": math.nan}
    assert json.loads(json.dumps(json_safe(payload))) == {"a": 1.5, "b": [None, 3], "c": None}
