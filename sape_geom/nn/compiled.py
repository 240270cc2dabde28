"""The network compiled for training (``FieldConfig.compile``, docs/method.md §5.12).

``torch.compile`` traces the MLP once, with symbolic sizes (SAPE's open width changes a few times in a
run), and runs generated kernels instead: on a CUDA GPU with CUDA graphs
(``reduce-overhead``), which remove the launch of every small kernel, the step's main cost there; on the
CPU with inductor's C++ kernels, which cannot beat the matrix library on the products that dominate a
step there and cost seconds of compiling (benchmarks/results/speed). So ``auto`` compiles on CUDA only.

Only training uses the compiled network: queries (extraction, previews) keep the eager one, whose outputs
stay valid while other chunks run (CUDA graphs reuse their output memory). Compiling can fail where a
toolchain is missing (no C++ compiler, an unsupported Python or platform): the first compiled step is
tried on its own, and on any failure the network runs eagerly with one log line saying why.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from ..config import COMPILE_MODES

log = logging.getLogger(__name__)


def compile_pays(device: torch.device) -> bool:
    """Whether compiling the training step pays on ``device`` (what ``auto`` asks): CUDA only."""
    return device.type == "cuda"


def resolve_compile(mode: str, device: torch.device) -> bool:
    """Whether ``mode`` (one of ``COMPILE_MODES``) compiles on ``device``."""
    if mode not in COMPILE_MODES:
        raise ValueError(f"unknown compile mode {mode!r}; choose one of: {', '.join(COMPILE_MODES)}")
    if mode == "auto":
        return compile_pays(device)
    return mode == "on"


class CompiledNetwork:
    """A network's compiled twin for training steps, with its fallback to the eager network.

    ``__call__`` runs the compiled network; before the first call, :meth:`warm_up` compiles it on a real
    batch (forward and backward) and switches to the eager network for good if that fails. Not a module:
    the weights are the eager network's, so state dicts and optimisers see nothing new.
    """

    def __init__(self, network: nn.Module, device: torch.device) -> None:
        self.network = network
        self.cuda_graphs = device.type == "cuda"
        # dynamic: traced once with symbolic sizes, so that SAPE opening a block (a new width) does not
        # stop a training step to compile again
        self._compiled = torch.compile(network, mode="reduce-overhead" if self.cuda_graphs else "default", dynamic=True)
        self.failure: str | None = None
        self._ready = False

    @property
    def active(self) -> bool:
        """True once the compiled network has run a step (and has not failed)."""
        return self._ready and self.failure is None

    def warm_up(self, *args) -> bool:
        """Compile for ``args`` by a forward and backward pass whose gradients are then dropped; False (and
        one log line) when compiling fails, after which only the eager network runs."""
        if self._ready:  # compiled already, or failed and fell back
            return self.active
        try:
            self._compiled(*args).float().sum().backward()
        except Exception as error:  # any compiler failure means: run eagerly
            self.failure = f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error) else ''}"
            log.warning("torch.compile is not available here (%s); training runs uncompiled", self.failure)
        finally:
            for parameter in self.network.parameters():
                parameter.grad = None
        self._ready = True
        return self.active

    def __call__(self, *args) -> torch.Tensor:
        if not self.active:
            return self.network(*args)
        if self.cuda_graphs:
            torch.compiler.cudagraph_mark_step_begin()
        return self._compiled(*args)
