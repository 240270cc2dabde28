"""The plumbing of benchmarks/stress.py: commands run in fresh processes with their peak RSS, the
generated inputs, and what a fault case asks of processes, files and mounts."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT_MB = 2048
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
CLI = [sys.executable, "-m", "sape_geom"]


def run(command: list[str], timeout: float = 1200, **popen) -> dict:
    """Run ``command``; its exit status, output, seconds and peak RSS (MB, its waited-for children too)."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, cwd=ROOT, **popen
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        err += f"\ntimed out after {timeout:.0f} s"
    return {
        "rc": proc.returncode,
        "stdout": out,
        "stderr": err,
        "seconds": time.perf_counter() - start,
        "peak_mb": float(getattr(proc, "peak_mb", 0.0)),
    }


class Tracked(subprocess.Popen):
    """Popen that records the child's peak RSS (ru_maxrss of it and its waited-for children) on wait."""

    peak_mb = 0.0

    def _try_wait(self, wait_flags):  # CPython's hook around waitpid
        try:
            pid, status, usage = os.wait4(self.pid, wait_flags)
        except ChildProcessError:
            return self.pid, 0
        if pid:
            self.peak_mb = usage.ru_maxrss / 1024.0
        return pid, status


def torus_grid(faces: int, path: Path) -> Path:
    """A closed ridged, noisy torus of exactly ``faces`` triangles (a grid of quads), written once."""
    import numpy as np
    import trimesh

    if path.exists():
        return path
    quads = faces // 2
    nv = max(d for d in range(1, int(quads**0.5) + 1) if quads % d == 0 and d <= (quads / 2.5) ** 0.5 + 1)
    nu = quads // nv
    u, v = np.meshgrid(
        np.linspace(0, 2 * np.pi, nu, endpoint=False), np.linspace(0, 2 * np.pi, nv, endpoint=False), indexing="ij"
    )
    r = 0.25 + 0.01 * np.sin(40 * u) * np.cos(9 * v) + 0.002 * np.random.default_rng(0).standard_normal(u.shape)
    verts = np.stack([(0.7 + r * np.cos(v)) * np.cos(u), (0.7 + r * np.cos(v)) * np.sin(u), r * np.sin(v)], -1)
    i, j = np.meshgrid(np.arange(nu), np.arange(nv), indexing="ij")
    a, b = i * nv + j, (i + 1) % nu * nv + j
    c, d = (i + 1) % nu * nv + (j + 1) % nv, i * nv + (j + 1) % nv
    tris = np.concatenate([np.stack([a, b, c], -1).reshape(-1, 3), np.stack([a, c, d], -1).reshape(-1, 3)])
    trimesh.Trimesh(verts.reshape(-1, 3), tris, process=False).export(path)
    return path


def small_meshes(folder: Path, count: int) -> Path:
    import trimesh

    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        trimesh.creation.icosphere(subdivisions=3, radius=0.4 + 0.1 * index).export(folder / f"shape{index}.obj")
    return folder


def sphere_mesh(work: Path) -> Path:
    path = work / "sphere.ply"
    if not path.exists():
        from sape_geom.mesh.shapes import sphere

        sphere(0.8, subdivisions=4).export(path)
    return path


def fitted_sphere(work: Path) -> tuple[Path, dict | None]:
    """A sphere fitted with the fast preset for 300 steps, as a checkpoint (made once)."""
    ckpt = work / "sphere.ckpt"
    if ckpt.exists():
        return ckpt, None
    fitted = run(
        CLI
        + [
            "fit",
            str(sphere_mesh(work)),
            "-o",
            str(work / "sphere_fit.ply"),
            "--steps",
            "300",
            "--resolution",
            "64",
            "--checkpoint",
            str(ckpt),
            "--quiet",
            "--no-metrics",
        ]
    )
    return ckpt, (fitted if fitted["rc"] != 0 else None)


def one_line(result: dict) -> str:
    lines = [line for line in result["stderr"].splitlines() if line.strip()]
    return lines[-1] if lines else ""


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, ValueError, IndexError):
                pass
    return found


def alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def complete(path: Path) -> bool:
    """Whether a final output reads back whole."""
    import trimesh

    try:
        if path.suffix == ".ply":
            trimesh.load(path, process=False)
        elif path.suffix == ".ckpt":
            from sape_geom.tasks.occupancy import OccupancyFit

            OccupancyFit.load(path, device="cpu")
        elif path.suffix == ".png":
            from PIL import Image

            Image.open(path).load()
        return True
    except Exception:
        return False


def mount_tmpfs(path: Path, options: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    return (
        os.geteuid() == 0
        and subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True).returncode
        == 0
    )


def umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)
