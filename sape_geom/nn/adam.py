"""Adam for the CPU without ``torch.optim`` (docs/method.md §5.9).

The same update as ``torch.optim.Adam``'s single-tensor loop with its defaults (β = (0.9, 0.999),
ε = 1e-8, no weight decay), operation for operation, so a run gives the same weights bit for bit and
takes the same time per step. What differs: no ``torch.optim`` optimizer is made, whose first
construction imports TorchDynamo, about a second that every fit in a fresh process paid. On an
accelerator :func:`~sape_geom.nn.trainer.make_optimizer` uses PyTorch's fused kernel instead.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

__all__ = ["PlainAdam"]


class PlainAdam:
    """Adam over a fixed list of parameters, with the slice of ``torch.optim.Optimizer`` that training
    uses: ``param_groups[0]["lr"]`` (read at every step, so a schedule can set it), ``zero_grad`` and
    ``step``. A parameter without a gradient at a step is left alone and its step count not advanced."""

    def __init__(self, parameters: Iterable[torch.Tensor], lr: float, betas=(0.9, 0.999), eps: float = 1e-8):
        params = list(parameters)
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        self.param_groups = [{"params": params, "lr": lr}]
        self.betas, self.eps = betas, eps
        self._exp_avg = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in params]
        self._exp_avg_sq = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in params]
        self._steps = [0] * len(params)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.param_groups[0]["params"]:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        beta1, beta2 = self.betas
        lr = self.param_groups[0]["lr"]
        for index, param in enumerate(self.param_groups[0]["params"]):
            grad = param.grad
            if grad is None:
                continue
            self._steps[index] += 1
            step = self._steps[index]
            exp_avg, exp_avg_sq = self._exp_avg[index], self._exp_avg_sq[index]
            exp_avg.lerp_(grad, 1 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            bias_correction1 = 1 - beta1**step
            bias_correction2_sqrt = (1 - beta2**step) ** 0.5
            denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(self.eps)
            param.addcdiv_(exp_avg, denom, value=-lr / bias_correction1)
