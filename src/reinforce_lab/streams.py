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
                pos[:] = _EMPTY
            else:
                pos[np.asarray(agents, dtype=bool)] = _EMPTY

    def draw(self, fn: Callable[..., Tensor], like: Tensor, fill: float) -> Tensor:
        """Numbers shaped like ``like`` (``[S, ...]``) from ``fn`` (``torch.rand``/``torch.randn``).

        Busy agents get their next numbers; the others get ``fill`` and consume nothing.
        """
        per = like[0].numel()
        key = (fn, per, like.dtype, like.device)
        size = per * self.block
        entry = self._buffers.get(key)
        if entry is None:
            entry = self._buffers[key] = (torch.empty(len(self.generators), size, dtype=like.dtype, device=like.device),
                                          np.full(len(self.generators), _EMPTY, dtype=np.int64))
        buf, pos = entry
        busy = self.busy
        if not busy.any():
            return torch.full(like.shape, fill, dtype=like.dtype, device=like.device)
        if busy.all() and (pos == pos[0]).all():
            # The common case (one agent, or all agents in step): one slice, no gather.
            if pos[0] > size - per:
                for a in range(len(pos)):
                    self._refill(buf, pos, a, fn, size, like)
            start = int(pos[0])
            pos += per
            return buf[:, start:start + per].reshape(like.shape).clone()  # the buffer is refilled in place
        for a in np.flatnonzero(busy & (pos > size - per)):
            self._refill(buf, pos, a, fn, size, like)
        start = torch.as_tensor(np.where(busy, pos, 0), device=like.device)
        idx = start.unsqueeze(1) + torch.arange(per, device=like.device)
        out = buf.gather(1, idx)
        if not busy.all():
            out[torch.as_tensor(~busy, device=like.device)] = fill
        pos[busy] += per
        return out.reshape(like.shape)

    def _refill(self, buf: Tensor, pos: np.ndarray, a: int, fn: Callable[..., Tensor], size: int,
                like: Tensor) -> None:
        g = self.generators[a]
        # Drawn where the generator lives (CPU), then moved: the numbers do not depend on the
        # device the policy runs on, and a CPU generator cannot draw on a GPU.
        buf[a] = fn(size, generator=g, dtype=like.dtype, device=g.device).to(like.device)
        pos[a] = 0


_EMPTY = np.iinfo(np.int64).max // 2  # "no numbers left": the next draw refills
