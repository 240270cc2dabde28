"""Build the installable Blender add-on zip into dist/.

    python scripts/build_addon.py [--output-dir dist]

The zip holds one top-level folder, ``sape_geom_blender/``, whose name equals the manifest's ``id``, so
the same file installs as a Blender 4.2+ extension (Install from Disk, or
``bpy.ops.extensions.package_install_files``) and as a legacy add-on in Blender 3.4-4.1
(Preferences > Add-ons > Install, or ``bpy.ops.preferences.addon_install``). Prints the zip's path.

The zip also carries the pure-Python ``sape_geom`` package as ``sape_geom_blender/worker_lib/sape_geom/``
for the worker process (the add-on never imports it; ``worker_client.worker_env`` puts it on the
worker's PYTHONPATH), so a worker environment needs only the library's dependencies (Set Up Worker).
"""

from __future__ import annotations

import argparse
import re
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ADDON = ROOT / "blender_addon" / "sape_geom_blender"
LIBRARY = ROOT / "sape_geom"
WORKER_LIB = "worker_lib"


def _sources(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")
    )


def manifest_field(text: str, key: str) -> str:
    match = re.search(rf'^{key}\s*=\s*"([^"]*)"', text, flags=re.MULTILINE)
    if not match:
        raise SystemExit(f'blender_manifest.toml has no {key} = "..." line')
    return match.group(1)


def build(output_dir: Path) -> Path:
    manifest = (ADDON / "blender_manifest.toml").read_text(encoding="utf-8")
    addon_id, version = manifest_field(manifest, "id"), manifest_field(manifest, "version")
    if addon_id != ADDON.name:
        raise SystemExit(f"manifest id {addon_id!r} must equal the add-on folder name {ADDON.name!r}")
    init = (ADDON / "__init__.py").read_text(encoding="utf-8")
    legacy = re.search(r'"version":\s*\((\d+),\s*(\d+),\s*(\d+)\)', init)
    if not legacy or ".".join(legacy.groups()) != version:
        raise SystemExit(f"bl_info version must match the manifest's {version}")
    output_dir.mkdir(parents=True, exist_ok=True)
    target = output_dir / f"{addon_id}-{version}.zip"
    if (ADDON / WORKER_LIB).exists():
        raise SystemExit(
            f"{ADDON / WORKER_LIB} must not exist in the source tree: the zip's copy is made from {LIBRARY}"
        )
    tmp = target.with_suffix(".zip.part")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in _sources(ADDON):
            zf.write(path, f"{addon_id}/{path.relative_to(ADDON).as_posix()}")
        for path in _sources(LIBRARY):
            if path.suffix == ".py":
                zf.write(path, f"{addon_id}/{WORKER_LIB}/sape_geom/{path.relative_to(LIBRARY).as_posix()}")
    tmp.replace(target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=ROOT / "dist", help="folder for the zip (default: dist/)")
    args = parser.parse_args(argv)
    print(build(args.output_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
