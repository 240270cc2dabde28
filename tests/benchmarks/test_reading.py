"""benchmarks/reading.py's dry run: an almost closed sphere is read as a solid, a dome as a sheet."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_reading_quick_reads_an_open_neck_as_a_solid_and_a_dome_as_a_sheet(tmp_path):
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "reading.py"), "--quick", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads((tmp_path / "reading" / "results.json").read_text())["rows"]
    assert [(r["input"], r["read_as"]) for r in rows] == [("sphere missing a cap", "solid"), ("hemisphere", "shell")]
    neck, dome = rows
    assert neck["holes"] > 0.05 and neck["confidence"] > 0.9 and neck["iou"] > 0.98  # over the holes line, yet solid
    assert dome["confidence"] < 0.1
    assert (tmp_path / "reading" / "figure.png").stat().st_size > 0
    assert "| sphere missing a cap |" in (tmp_path / "reading" / "table.md").read_text()
