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


def test_write_errors_are_one_line_naming_the_output(tmp_path):
    from sape_geom.errors import OutputError
    from sape_geom.fileio import check_writable, is_temporary

    (tmp_path / "somefile").write_text("x")
    for bad in (tmp_path / "somefile" / "x.ply", tmp_path / "somefile" / "deeper" / "x.ply"):
        with pytest.raises(OutputError, match="somefile is a file, not a folder"):
            check_writable(bad)
        with pytest.raises(OutputError, match=r"cannot write .*x\.ply: .*somefile is a file, not a folder"):
            atomic_write(bad, lambda tmp: tmp.write_text("never"))
    with pytest.raises(OutputError, match="it is a folder"):
        check_writable(tmp_path)
    with pytest.raises(OutputError, match="it is a file"):
        check_writable(tmp_path / "somefile", folder=True)
    assert check_writable(tmp_path / "new" / "deeper" / "x.ply") and not (tmp_path / "new").exists()

    def disk_full(tmp):
        tmp.write_text("half")
        raise OSError(28, "No space left on device", str(tmp))

    with pytest.raises(OutputError, match=r"cannot write .*out\.txt: no space left on the disk$") as caught:
        atomic_write(tmp_path / "out.txt", disk_full)
    assert caught.value.errno == 28 and isinstance(caught.value, OSError)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["somefile"]  # no temporary file left
    assert is_temporary(".mesh.ply.ab12cd.tmp") and not is_temporary("mesh.ply") and not is_temporary(".tmp")
