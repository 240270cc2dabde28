"""The CPU's Adam: PyTorch's update bit for bit, a schedule's learning rate, parameters without a
gradient left alone, and a fit in a fresh process that never imports TorchDynamo."""

from __future__ import annotations

import subprocess
import sys

import torch

from sape_geom.nn.adam import PlainAdam


def _train_both(steps: int, batch: int, before_step) -> None:
    """The same network trained by ``torch.optim.Adam`` and by ``PlainAdam`` on the same batches;
    ``before_step(step, net, optimizer)`` runs after the backward pass. Asserts equal weights."""
    torch.manual_seed(0)
    reference = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    ours = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    ours.load_state_dict(reference.state_dict())
    pairs = (
        (reference, torch.optim.Adam(reference.parameters(), lr=1e-2)),
        (ours, PlainAdam(ours.parameters(), lr=1e-2)),
    )
    for step in range(steps):
        x = torch.randn(batch, 6)
        for net, optimizer in pairs:
            optimizer.zero_grad(set_to_none=True)
            net(x).square().mean().backward()
            before_step(step, net, optimizer)
            optimizer.step()
    for a, b in zip(reference.parameters(), ours.parameters()):
        assert torch.equal(a, b)


def test_the_update_is_pytorchs_bit_for_bit_under_a_changing_learning_rate():
    def schedule(step, _net, optimizer):
        optimizer.param_groups[0]["lr"] = 1e-2 * 0.98**step

    _train_both(200, 32, schedule)


def test_a_parameter_without_a_gradient_is_left_alone_as_pytorch_leaves_it():
    def sit_out(step, net, _optimizer):
        if step % 3 == 0:  # the last layer's bias sits out every third step
            net[2].bias.grad = None

    _train_both(20, 8, sit_out)


def test_a_cpu_fit_in_a_fresh_process_never_imports_dynamo():
    code = (
        "import sys, torch\n"
        "from sape_geom.nn import trainer\n"
        "net = torch.nn.Linear(3, 1)\n"
        "x, y = torch.randn(16, 3), torch.randn(16, 1)\n"
        "loss = lambda p, t, _x: (((p - t) ** 2).mean(), ((p - t) ** 2)[:, 0])\n"
        "trainer.train(net, lambda _: (x, y), loss, lr=1e-2, steps=5, feedback=False)\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
