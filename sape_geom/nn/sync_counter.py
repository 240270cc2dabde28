"""Counting the operations a piece of torch code dispatches and the host syncs among them (docs/method.md §5.9).

A host sync is any operation after which the host has to wait for the device's values: reading a scalar
(``.item()``, ``float(t)``, ``bool(t)``, ``int(t)``: ``aten._local_scalar_dense``, ``aten.is_nonzero``,
``aten.equal``), an output whose shape depends on the data (``nonzero``, ``unique``, ``masked_select``,
boolean-mask indexing), a copy to the CPU, or ``.tolist()`` / ``.numpy()`` / ``.cpu()``. On a CPU-only
machine nothing really waits, but the same calls are seen, so a CPU test can show that a training step
would not wait on a GPU.
"""

from __future__ import annotations

from collections import Counter

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

_SYNC_OPS = {
    "aten._local_scalar_dense",
    "aten.is_nonzero",
    "aten.equal",
    "aten.nonzero",
    "aten.nonzero_static",
    "aten.unique",
    "aten._unique",
    "aten._unique2",
    "aten.unique_dim",
    "aten.unique_consecutive",
    "aten.masked_select",
    "aten.bincount",
    "aten.repeat_interleave",
}
_SYNC_METHODS = {"tolist", "numpy", "cpu", "item", "__bool__", "__int__", "__float__", "__index__"}


def _op_name(func) -> str:
    return f"{func.namespace}.{func._opname}" if hasattr(func, "_opname") else str(func).split(".default")[0]


def _has_bool_index(args) -> bool:
    for arg in args:
        if isinstance(arg, (list, tuple)) and any(isinstance(a, torch.Tensor) and a.dtype == torch.bool for a in arg):
            return True
    return False


class _Ops(TorchDispatchMode):
    def __init__(self, owner: SyncCounter) -> None:
        super().__init__()
        self.owner = owner

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = _op_name(func)
        self.owner.ops += 1
        sync = name in _SYNC_OPS
        if name in ("aten.index", "aten.index_put", "aten.index_put_", "aten._index_put_impl_"):
            sync = _has_bool_index(args)
        elif name in ("aten._to_copy", "aten.copy_", "aten.to"):
            source = args[1] if name == "aten.copy_" else args[0]
            target = args[0].device if name == "aten.copy_" else kwargs.get("device")
            sync = (
                isinstance(source, torch.Tensor)
                and source.device.type != "cpu"
                and (target is not None and torch.device(target).type == "cpu")
            )
        if sync:
            self.owner.syncs[name] += 1
        return func(*args, **kwargs)


class _Calls(TorchFunctionMode):
    def __init__(self, owner: SyncCounter) -> None:
        super().__init__()
        self.owner = owner

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        # ``item`` and the conversions also reach the dispatcher as _local_scalar_dense: counted there.
        if name in ("tolist", "numpy", "cpu") and args and isinstance(args[0], torch.Tensor):
            self.owner.syncs[f"Tensor.{name}"] += 1
        return func(*args, **(kwargs or {}))


class SyncCounter:
    """``with SyncCounter() as counter: ...``: ``counter.ops`` operations dispatched, ``counter.syncs``
    a Counter of host syncs by operation (``counter.total_syncs`` in all)."""

    def __init__(self) -> None:
        self.ops = 0
        self.syncs: Counter[str] = Counter()
        self._modes = (_Calls(self), _Ops(self))

    @property
    def total_syncs(self) -> int:
        return sum(self.syncs.values())

    def reset(self) -> None:
        self.ops = 0
        self.syncs.clear()

    def __enter__(self) -> SyncCounter:
        for mode in self._modes:
            mode.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        for mode in reversed(self._modes):
            mode.__exit__(*exc)
