"""Occupancy batches gathered on the device are the batches the host gather gave (docs/method.md §6.3)."""

import numpy as np
import torch

from sape_geom.mesh.sampling import PointSetBuffer
from sape_geom.mesh.shapes import sphere
from sape_geom.nn.sync_counter import SyncCounter
from sape_geom.tasks.occupancy.batches import DeviceBatches


def test_device_batches_equal_the_host_epochs_for_the_same_seed():
    mesh = sphere(0.8)
    make = lambda: PointSetBuffer(mesh.vertices, mesh.faces, num_sets=2, n_points=900, seed=7, target="sdf")
    host, device = make(), make()
    batch, steps_per_epoch = 200, 900 // 200
    batches = DeviceBatches(device, batch, torch.device("cpu"))
    for step in range(5 * steps_per_epoch):  # five epochs: both sets, each twice or more
        _epoch, index = divmod(step, steps_per_epoch)
        if index == 0:
            points, targets = host.next_epoch()
        rows = slice(index * batch, (index + 1) * batch)
        x, y = batches(step)
        assert np.array_equal(x.numpy(), points[rows]) and np.array_equal(y[:, 0].numpy(), targets[rows])
        assert y.shape == (batch, 1)
    assert len(batches._sets) == 2  # each set uploaded once


def test_a_step_inside_an_epoch_reads_nothing_back():
    mesh = sphere(0.8)
    batches = DeviceBatches(
        PointSetBuffer(mesh.vertices, mesh.faces, num_sets=1, n_points=600, seed=0), 100, torch.device("cpu")
    )
    batches(0)
    with SyncCounter() as counter:
        for step in range(1, 6):
            batches(step)
    assert counter.total_syncs == 0 and counter.ops <= 20
