"""Per-agent random numbers, drawn from each agent's generator in blocks.

Every agent of a job (``train.num_seeds``) samples its actions from its own
``torch.Generator``, so that its episodes are the ones a separate run with its seed would
sample. Calling ``torch.rand(..., generator=g)`` once per agent per step costs a few
microseconds each, which with 100 agents is most of a step; drawing a block of numbers per
agent at once and handing them out step by step costs one gather per step.

Bit for bit, what an agent receives depends only on its own generator and on when its
rounds start (:meth:`AgentStreams.new_round` drops the rest of a block), never on the other
agents — a run with ``num_seeds=1`` receives exactly the same numbers as agent ``k`` of a
batch with seed ``k``. A checkpoint taken at the start of a round therefore needs only the
generators' states.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor


class AgentStreams:
    """Block-buffered random draws, one stream per agent.

    Args:
        generators: one torch generator per agent.
        block: draws per refill, in units of one step's draws for the agent.
    """

    def __init__(self, generators: Sequence[torch.Generator], block: int = 64) -> None:
        self.generators = list(generators)
        self.block = int(block)
        self.busy = np.ones(len(self.generators), dtype=bool)  # agents that draw at this step
        self._buffers: dict[tuple, tuple[Tensor, np.ndarray]] = {}

    def new_round(self, agents: np.ndarray | None = None) -> None:
        """Drop the buffered numbers of ``agents`` (all: None): their next draw refills from the generator."""
        for _, pos in self._buffers.values():
            if agents is None:
                pos[:] = np.iinfo(np.int64).max
            else:
                pos[np.asarray(agents, dtype=bool)] = np.iinfo(np.int64).max

    def draw(self, fn: Callable[..., Tensor], like: Tensor, fill: float) -> Tensor:
        """Numbers shaped like ``like`` (``[S, ...]``) from ``fn`` (``torch.rand``/``torch.randn``).

        Busy agents get their next numbers; the others get ``fill`` and consume nothing.
        """
        per = int(np.prod(like.shape[1:], dtype=np.int64))
        key = (fn, per, like.dtype, like.device)
        size = per * self.block
        if key not in self._buffers:
            self._buffers[key] = (torch.empty(len(self.generators), size, dtype=like.dtype, device=like.device),
                                  np.full(len(self.generators), np.iinfo(np.int64).max, dtype=np.int64))
        buf, pos = self._buffers[key]
        busy = self.busy
        for a in np.flatnonzero(busy & (pos > size - per)):
            buf[a] = fn(size, generator=self.generators[a], dtype=like.dtype, device=like.device)
            pos[a] = 0
        start = torch.as_tensor(np.where(busy, pos, 0), device=like.device)
        idx = start.unsqueeze(1) + torch.arange(per, device=like.device)
        out = buf.gather(1, idx)
        if not busy.all():
            out[torch.as_tensor(~busy, device=like.device)] = fill
        pos[busy] += per
        return out.reshape(like.shape)
