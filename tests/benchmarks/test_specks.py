"""benchmarks/specks.py's dry run: a tiny fit, extracted with and without the corner gap, writes its results."""

import json

from quick_runs import run_quick


def test_specks_quick_writes_its_table_and_figure_and_the_gap_removes_needles(tmp_path):
    run_quick("specks.py", tmp_path)
    rows = json.loads((tmp_path / "specks" / "results.json").read_text())["rows"]
    assert [(r["resolution"], r["corner_gap"]) for r in rows] == [(32, 0.0), (32, 0.1), (48, 0.0), (48, 0.1)]
    for plain, gapped in zip(rows[::2], rows[1::2]):
        assert plain["needles"] > 0 and gapped["needles"] < plain["needles"]  # a sphere grazes many grid points
        assert gapped["faces"] == plain["faces"] and gapped["pieces"] == plain["pieces"] == 1
        assert gapped["nc"] >= plain["nc"] - 0.001
    assert (tmp_path / "specks" / "figure.png").stat().st_size > 0
    assert "| sphere | 32 |" in (tmp_path / "specks" / "table.md").read_text()
