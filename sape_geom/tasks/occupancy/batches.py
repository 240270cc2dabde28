"""Training batches gathered on the training device (docs/method.md §6.3, §5.9).

Each labelled point set is uploaded once, the first time an epoch uses it; every epoch then uploads only
its permutation (from :meth:`PointSetBuffer.next_permutation`) and gathers the set on the device, and a
step takes a slice of it: no per-epoch gather of a million points on the host and no pageable copies of
points and labels; the batches and their order are those the buffer's permutations define.
"""

from __future__ import annotations

import torch

from ...mesh.sampling import PointSetBuffer


class DeviceBatches:
    """``next_batch(step) -> (points (B, 3), targets (B, 1))`` for :func:`sape_geom.nn.trainer.train`."""

    def __init__(self, buffer: PointSetBuffer, batch_size: int, device: torch.device) -> None:
        self.buffer, self.batch_size, self.device = buffer, int(batch_size), torch.device(device)
        self.steps_per_epoch = buffer.n_points // self.batch_size
        self._sets: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self._epoch = -1
        self._points: torch.Tensor | None = None
        self._targets: torch.Tensor | None = None

    def _upload(self, array) -> torch.Tensor:
        tensor = torch.from_numpy(array)
        if self.device.type == "cuda":  # pinned, so that the copy does not hold the host
            return tensor.pin_memory().to(self.device, non_blocking=True)
        return tensor.to(self.device)

    def _device_set(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if index not in self._sets:
            points, targets = self.buffer.get_set(index)
            self._sets[index] = (self._upload(points), self._upload(targets))
        return self._sets[index]

    def __call__(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, index = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:
            which, permutation = self.buffer.next_permutation()
            points, targets = self._device_set(which)
            order = self._upload(permutation)
            self._points, self._targets = points.index_select(0, order), targets.index_select(0, order)
            self._epoch = epoch
        rows = slice(index * self.batch_size, (index + 1) * self.batch_size)
        assert self._points is not None and self._targets is not None  # set at the first step (epoch 0)
        return self._points[rows], self._targets[rows, None]
