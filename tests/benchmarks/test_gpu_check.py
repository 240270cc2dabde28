"""benchmarks/gpu_check.sh's dry run: every case it runs on a GPU runs here at small sizes and writes results."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_gpu_check_quick_runs_every_case_and_writes_its_results(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable}
    done = subprocess.run(
        ["bash", str(REPO / "benchmarks" / "gpu_check.sh"), "--quick", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "gpu_check: 0 case(s) failed" in done.stderr
    results = json.loads((tmp_path / "gpu_speed" / "results.json").read_text())
    assert [c["variant"] for c in results["costs"]] == ["float32", "auto", "float32+compile"]
    toolchain = shutil.which("c++") is not None or shutil.which("g++") is not None  # inductor's CPU kernels
    assert [c["compiled"] for c in results["costs"]] == [False, False, toolchain]
    assert all(c["steps_per_s"] > 0 and c["queries_per_s"] > 0 for c in results["costs"])
    (run,) = results["runs"]
    assert run["mesh"] == "sphere" and run["precision"] == "float32" and run["iou"] > 0.9
    assert run["labels_s"] > 0 and run["train_s"] > 0 and run["extract_s"] > 0 and run["smooth_s"] >= 0
    table = (tmp_path / "gpu_speed" / "table.md").read_text()
    assert "| sphere | float32 (float32) |" in table
