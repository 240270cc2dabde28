"""The time a fit is expected to take, shown before it starts: scaled from the last fit of the same preset
on this machine (its labelling, seconds per training step and extraction time per grid cell²).

A fit's time depends on the machine more than on anything else (2 CPU cores or a GPU: a hundredfold),
so the panel shows nothing made up: until a fit of the preset has run here it says so. The records live
in one small JSON file in the add-on's user folder, written whole or not at all. No bpy here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

FILE_NAME = "fit_times.json"
RATES = ("labels_s", "seconds_per_step", "extract_s_per_cell2")
"""The numbers a record holds; one missing or not a number makes the record unusable."""


def record_from_metrics(metrics: dict[str, Any], resolution: int) -> dict[str, float] | None:
    """What a finished fit's metrics (the worker's ``fit_surface`` result) say about this machine's
    speed, or None when they lack a part (an older worker, a fit of no steps)."""
    try:
        steps = int(metrics["steps"])
        record = {
            "labels_s": float(metrics["labels_s"]),
            "seconds_per_step": float(metrics["train_s"]) / steps,
            "extract_s_per_cell2": float(metrics["extract_s"]) / float(resolution) ** 2,
            "device": str(metrics.get("device", "")),
        }
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
    return record if steps > 0 and resolution > 0 else None


def expected_seconds(record: dict[str, Any], steps: int | None, time_budget: float | None, resolution: int) -> float:
    """Labels as last time, then ``steps`` at the last rate (or the whole ``time_budget``), then the
    extraction at ``resolution`` (its time grows with the surface's cells, about resolution²)."""
    training = float(time_budget) if time_budget else float(steps or 0) * float(record["seconds_per_step"])
    return float(record["labels_s"]) + training + float(record["extract_s_per_cell2"]) * float(resolution) ** 2


_read: dict[Path, tuple[tuple[int, int], dict[str, dict[str, Any]]]] = {}
"""The file's records by its path, with its modification time and size: the panel asks at every redraw."""


def load(folder: Path) -> dict[str, dict[str, Any]]:
    """The usable records by preset name (one lacking a number of :data:`RATES` is left out); empty when
    there are none yet or the file cannot be read."""
    path = Path(folder) / FILE_NAME
    try:
        stat = path.stat()
        mtime = (stat.st_mtime_ns, stat.st_size)
        if path in _read and _read[path][0] == mtime:
            return _read[path][1]
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    records = {k: v for k, v in data.items() if _usable(v)} if isinstance(data, dict) else {}
    _read[path] = (mtime, records)
    return records


def _usable(record: Any) -> bool:
    return isinstance(record, dict) and all(
        isinstance(record.get(key), (int, float)) and not isinstance(record.get(key), bool) for key in RATES
    )


def remember(folder: Path, preset: str, record: dict[str, Any]) -> None:
    """Keep ``record`` as ``preset``'s (written to a temporary file, then renamed over the old one)."""
    path = Path(folder) / FILE_NAME
    records = {**load(folder), preset: record}
    temporary = path.with_name(f".{FILE_NAME}.{os.getpid()}.tmp")
    try:
        temporary.write_text(json.dumps(records, indent=1), encoding="utf-8")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
