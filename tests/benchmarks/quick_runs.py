"""Running a benchmark script's dry run (``--quick``) as a user would, for the tests beside this file."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_quick(script: str, out: Path) -> subprocess.CompletedProcess:
    """``python benchmarks/<script> --quick --out <out>`` from the repository root; fails the test on a
    non-zero exit, showing the end of its stderr."""
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / script), "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done
