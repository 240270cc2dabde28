"""Fit every mesh in a folder headlessly: surfaces, checkpoints, previews and metrics.csv.

    python scripts/fit_meshes.py MESH_DIR OUT_DIR [--preset fast|quality] [--workers N] [--resolution 256]

The same job as ``sape-geom batch`` for users who script rather than call the command line; rerunning
skips meshes already fitted, and a mesh that fails is recorded in metrics.csv while the rest go on.
"""

from __future__ import annotations

import argparse
import sys

from sape_geom.app.batch import run_batch
from sape_geom.errors import SapeGeomError
from sape_geom.tasks.occupancy import PRESETS


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mesh_dir")
    parser.add_argument("out_dir")
    parser.add_argument("--preset", default="fast", choices=tuple(PRESETS))
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--resolution", type=int, default=None)
    parser.add_argument("--encoding", default=None)
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    overrides = {
        k: v
        for k, v in {"resolution": args.resolution, "encoding": args.encoding, "device": args.device}.items()
        if v is not None
    }
    try:
        rows = run_batch(args.mesh_dir, args.out_dir, args.preset, args.workers, overrides)
    except SapeGeomError as error:
        print(f"fit_meshes: error: {error}", file=sys.stderr)
        return 2
    failed = [name for name, row in rows.items() if row.get("status") != "ok"]
    print(f"{len(rows) - len(failed)} of {len(rows)} meshes fitted; see {args.out_dir}/metrics.csv")
    for name in failed:
        print(f"failed: {name}: {rows[name].get('error', '')}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
