"""benchmarks/specks.py's dry run: a tiny fit, extracted with and without the corner gap, writes its results."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_specks_quick_writes_its_table_and_figure_and_the_gap_removes_needles(tmp_path):
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "specks.py"), "--quick", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads((tmp_path / "specks" / "results.json").read_text())["rows"]
    assert [(r["resolution"], r["corner_gap"]) for r in rows] == [(32, 0.0), (32, 0.1), (48, 0.0), (48, 0.1)]
    for plain, gapped in zip(rows[::2], rows[1::2]):
        assert plain["needles"] > 0 and gapped["needles"] < plain["needles"]  # a sphere grazes many grid points
        assert gapped["faces"] == plain["faces"] and gapped["pieces"] == plain["pieces"] == 1
        assert gapped["nc"] >= plain["nc"] - 0.001
    assert (tmp_path / "specks" / "figure.png").stat().st_size > 0
    assert "| sphere | 32 |" in (tmp_path / "specks" / "table.md").read_text()
