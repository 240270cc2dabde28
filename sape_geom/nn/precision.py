"""The precision of the network's matrix products (``FieldConfig.precision``, docs/method.md §5.10).

Only the MLP runs in the low precision, under ``torch.autocast``: the Fourier angles and their sin/cos,
the progressive mask, the loss, SAPE's feedback and the optimiser state stay float32, and the network's
output is handed back as float32. ``auto`` picks bfloat16 only where the hardware computes it natively
(a CPU with AVX512-BF16 or AMX, an ARM CPU with BF16, a CUDA GPU that supports it) and float32 elsewhere:
a CPU without native bf16 emulates it, many times slower than float32 (benchmarks/results/speed).
"""

from __future__ import annotations

import platform
from functools import cache

import torch

from ..config import PRECISIONS

_DTYPES = {"float32": None, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _torch_cpu_check(name: str) -> bool:
    """One of torch's CPU feature checks; False where this torch lacks it (they are not public API)."""
    check = getattr(torch.cpu, name, None)
    try:
        return bool(check()) if callable(check) else False
    except (RuntimeError, AttributeError):
        return False


@cache
def cpu_has_native_bf16() -> bool:
    """True when this CPU multiplies bfloat16 natively, as torch's own dispatch sees it (never /proc)."""
    if platform.machine().lower() in ("x86_64", "amd64"):  # without these oneDNN emulates bf16 on x86
        return _torch_cpu_check("_is_avx512_bf16_supported") or _torch_cpu_check("_is_amx_tile_supported")
    try:  # ARM: oneDNN's check is the CPU's own BF16 flag
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (RuntimeError, AttributeError):
        return False


@cache
def _cuda_has_bf16(index: int) -> bool:
    major, _ = torch.cuda.get_device_capability(index)
    return major >= 8  # Ampere and later multiply bf16 in their tensor cores


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 matrix products natively (what ``auto`` asks)."""
    if device.type == "cpu":
        return cpu_has_native_bf16()
    if device.type == "cuda":
        return _cuda_has_bf16(device.index if device.index is not None else torch.cuda.current_device())
    return False  # MPS and others: float32, the safe choice


def resolve_precision(precision: str, device: torch.device) -> str:
    """The precision ``precision`` means on ``device``: ``auto`` resolved, the others as they are."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of: {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bfloat16" if native_bf16(device) else "float32"
    return precision


def compute_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``precision`` on ``device``; None for float32 (no autocast)."""
    return _DTYPES[resolve_precision(precision, device)]
