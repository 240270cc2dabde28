"""benchmarks/steps.py's dry run: each step count is fitted, the longest also without snapping."""

import json

from quick_runs import run_quick


def test_steps_quick_compares_step_counts_and_the_unsnapped_surface(tmp_path):
    run_quick("steps.py", tmp_path)
    rows = json.loads((tmp_path / "steps" / "results.json").read_text())["rows"]
    assert [(r["steps"], r["surface"]) for r in rows] == [(100, "snapped"), (200, "snapped"), (200, "not snapped")]
    snapped, plain = rows[1], rows[2]
    assert snapped["read_as"] == "solid" and snapped["snap_s"] > 0 and plain["snap_s"] == 0
    assert snapped["chamfer_l1"] < plain["chamfer_l1"]  # the same field, its surface put onto the sphere
    assert "| sphere | 200 | not snapped |" in (tmp_path / "steps" / "table.md").read_text()
