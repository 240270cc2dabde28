"""Surface quality benchmark: SAPE vs Fourier features on meshes of many kinds, with a contact sheet.

    .venv/bin/python benchmarks/surface_quality.py            # writes benchmarks/results/surface_quality/

The same as ``run_experiments.py surface_quality`` (see ``experiments/surface_quality.py``); README's
Results section is regenerated from its table with ``run_experiments.py readme --write-readme``.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run_experiments import main

if __name__ == "__main__":
    sys.exit(main(["surface_quality", *sys.argv[1:]]))
