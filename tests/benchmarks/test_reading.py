"""benchmarks/reading.py's dry run: an almost closed sphere is read as a solid, a dome as a sheet."""

import json

from quick_runs import run_quick


def test_reading_quick_reads_an_open_neck_as_a_solid_and_a_dome_as_a_sheet(tmp_path):
    run_quick("reading.py", tmp_path)
    rows = json.loads((tmp_path / "reading" / "results.json").read_text())["rows"]
    assert [(r["input"], r["read_as"]) for r in rows] == [("sphere missing a cap", "solid"), ("hemisphere", "shell")]
    neck, dome = rows
    assert neck["holes"] > 0.05 and neck["confidence"] > 0.9 and neck["iou"] > 0.98  # over the holes line, yet solid
    assert dome["confidence"] < 0.1
    assert (tmp_path / "reading" / "figure.png").stat().st_size > 0
    assert "| sphere missing a cap |" in (tmp_path / "reading" / "table.md").read_text()
