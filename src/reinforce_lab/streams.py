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
        self._buffers: dict[tuple, _Buffer] = {}
        self.busy = np.ones(len(self.generators), dtype=bool)

    @property
    def busy(self) -> np.ndarray:
        """Agents that draw at this step (set by the collector when it changes)."""
        return self._busy

    @busy.setter
    def busy(self, value: np.ndarray) -> None:
        self._busy = np.asarray(value, dtype=bool)
        self._all_busy = bool(self._busy.all())

    def new_round(self, agents: np.ndarray | None = None) -> None:
        """Drop the buffered numbers of ``agents`` (all: None): their next draw refills from the generator."""
        for entry in self._buffers.values():
            entry.unlock()
            if agents is None:
                entry.pos[:] = _EMPTY
            else:
                entry.pos[np.asarray(agents, dtype=bool)] = _EMPTY

    def draw(self, fn: Callable[..., Tensor], like: Tensor, fill: float) -> Tensor:
        """Numbers shaped like ``like`` (``[S, ...]``) from ``fn`` (``torch.rand``/``torch.randn``).

        Busy agents get their next numbers; the others get ``fill`` and consume nothing. The
        result may be a view of the block: use it before the next draw (every caller does).
        """
        key = (fn, like.shape, like.dtype, like.device)
        entry = self._buffers.get(key)
        if entry is None:
            entry = self._buffers[key] = _Buffer(len(self.generators), like, self.block)
        if self._all_busy and entry.lock >= 0:
            # The common case (one agent, or all agents in step): a view of the block, no gather.
            start = entry.lock
            if start > entry.size - entry.per:
                self._refill_all(entry, fn, like)
                start = 0
            entry.lock = start + entry.per
            return entry.buf[:, start:start + entry.per].view(like.shape)
        return self._draw_some(entry, fn, like, fill)

    def _draw_some(self, entry: "_Buffer", fn: Callable[..., Tensor], like: Tensor, fill: float) -> Tensor:
        """Agents at different positions of their blocks, or some idle: a gather."""
        busy, per, size = self._busy, entry.per, entry.size
        entry.unlock()
        pos = entry.pos
        if not busy.any():
            return torch.full(like.shape, fill, dtype=like.dtype, device=like.device)
        if busy.all() and (pos == pos[0]).all():  # in step again: the fast path from here on
            entry.lock = int(pos[0])
            return self.draw(fn, like, fill)
        for a in np.flatnonzero(busy & (pos > size - per)):
            self._refill(entry, a, fn, like)
        start = torch.as_tensor(np.where(busy, pos, 0), device=like.device)
        idx = start.unsqueeze(1) + torch.arange(per, device=like.device)
        out = entry.buf.gather(1, idx)
        if not busy.all():
            out[torch.as_tensor(~busy, device=like.device)] = fill
        pos[busy] += per
        return out.reshape(like.shape)

    def _refill_all(self, entry: "_Buffer", fn: Callable[..., Tensor], like: Tensor) -> None:
        # A new tensor, not an in-place refill: the views handed out earlier stay valid.
        entry.buf = torch.stack([self._numbers(a, fn, entry.size, like) for a in range(len(self.generators))])

    def _refill(self, entry: "_Buffer", a: int, fn: Callable[..., Tensor], like: Tensor) -> None:
        entry.buf[a] = self._numbers(a, fn, entry.size, like)  # in place: a gather copies what it hands out
        entry.pos[a] = 0

    def _numbers(self, a: int, fn: Callable[..., Tensor], size: int, like: Tensor) -> Tensor:
        g = self.generators[a]
        # Drawn where the generator lives (CPU), then moved: the numbers do not depend on the
        # device the policy runs on, and a CPU generator cannot draw on a GPU.
        return fn(size, generator=g, dtype=like.dtype, device=g.device).to(like.device)


class _Buffer:
    """One kind of draw's block per agent, and where each agent is in it.

    ``lock`` ≥ 0: every agent is at that position (they draw in step), and ``pos`` is stale
    until :meth:`unlock` writes it back; −1: ``pos`` holds each agent's position.
    """

    def __init__(self, agents: int, like: Tensor, block: int) -> None:
        self.per = like[0].numel()
        self.size = self.per * block
        self.buf = torch.empty(agents, self.size, dtype=like.dtype, device=like.device)
        self.pos = np.full(agents, _EMPTY, dtype=np.int64)
        self.lock = -1

    def unlock(self) -> None:
        if self.lock >= 0:
            self.pos[:] = self.lock
            self.lock = -1


_EMPTY = np.iinfo(np.int64).max // 2  # "no numbers left": the next draw refills


def draw(fn: Callable[..., Tensor], like: Tensor, streams: AgentStreams | None, fill: float = 0.5) -> Tensor:
    """Random numbers shaped like ``like`` (``[S, ...]``) from ``fn`` (``torch.rand``/``randn``).

    ``streams=None`` uses torch's global RNG (evaluation, tests). Training passes the
    collector's :class:`~reinforce_lab.streams.AgentStreams`: slice ``s`` comes from agent
    ``s``'s own generator, and an agent that is idle at this step gets ``fill`` and draws
    nothing, so its random stream is exactly the one a separate run of it would consume.
    """
    if streams is None:
        return fn(like.shape, dtype=like.dtype, device=like.device)
    return streams.draw(fn, like, fill)
