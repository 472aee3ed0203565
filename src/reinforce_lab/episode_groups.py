"""Groups of k episodes that start from the same state: shared reset seeds, quotas and slot order.

Leave-one-out and group-standardised baselines (:mod:`reinforce_lab.baselines`) compare an
episode with the other k − 1 of its group; they compare like with like when the k episodes
start from the same state (Kool et al. 2019 sample k sequences for one input; GRPO, Shao et al.
2024, k outputs for one question). Here an agent's N env copies form N/k *copy groups*
(copies ``c·k … c·k+k−1``) that reset with one seed, so every round their first episodes
start from the same state; the env's later auto-resets draw from each copy's own RNG, which
was seeded the same, so episode j of the k copies also starts from one state whenever the env
draws random numbers only when it resets (classic control, MuJoCo's reset noise, the short
corridor). Envs that draw while stepping give same-start groups for the first episode of a
round only (use as many copies as episodes to have only first episodes).

This needs copies that take one seed each (``rlab.per_copy_seeds``,
:mod:`reinforce_lab.envs.capabilities`): a native numpy vector env has one RNG for all copies,
and the collector refuses groups there. With k = 1 every function here is the identity of
the collector without groups (seeds, quotas and episode order bit for bit).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import fields
from typing import Sequence

import numpy as np
import torch
from gymnasium.vector import VectorEnv

from .envs import seeds_each_copy
from .episode_batch import EpisodeBatch


def group_seeds(seeds: Sequence[int] | None, envs_per_agent: int, group_size: int, envs: VectorEnv) -> list[int]:
    """Every copy's base seed, the copies of a copy group sharing its first copy's.

    Raises ValueError without seeds or when ``envs`` cannot take one seed per copy.
    """
    if seeds is None or not seeds_each_copy(envs):
        raise ValueError(f"group_size={group_size} needs env seeds and copies that take one seed each; "
                         f"{type(envs).__name__} cannot (allowed: sync, async vectorization)")
    return [int(seeds[i - (i % envs_per_agent) % group_size]) for i in range(len(seeds))]


def group_quota(episodes_per_update: int, envs_per_agent: int, num_seeds: int, group_size: int) -> np.ndarray:
    """Episodes per copy per round: the E/k groups spread evenly over the N/k copy groups.

    Every copy of a copy group gets the same quota, so each of its episodes j has its k − 1
    partners. With k = 1 this is E spread evenly over the N copies (the first ones get one more).
    """
    if envs_per_agent % group_size or episodes_per_update % group_size:
        raise ValueError(f"group_size={group_size} must divide the env copies per agent ({envs_per_agent}) "
                         f"and episodes_per_update ({episodes_per_update})")
    base, extra = divmod(episodes_per_update // group_size, envs_per_agent // group_size)
    return np.array([base + (i // group_size < extra) for i in range(envs_per_agent)] * num_seeds)


def group_order(spans: Sequence[Sequence[tuple[int, int, int]]], envs_per_agent: int, group_size: int,
                num_episodes: int) -> np.ndarray:
    """``[S, E]`` slot permutation that puts group g of every agent in slots ``[g·k, (g+1)·k)``.

    ``spans[a]`` are agent a's episodes in finishing order as ``(copy, first step, last step)``
    (:meth:`~reinforce_lab.episode_batch.BatchLayout.spans`). A group is episode j of the k
    copies of a copy group; groups are ordered by (j, copy group), members by copy.
    """
    order = np.tile(np.arange(num_episodes), (len(spans), 1))
    for a, episodes in enumerate(spans):
        seen: dict[int, int] = defaultdict(int)
        keys = []
        for slot, (copy, _, _) in enumerate(episodes):
            local = copy % envs_per_agent
            keys.append((seen[copy], local // group_size, local % group_size, slot))
            seen[copy] += 1
        if keys:
            order[a, :len(keys)] = [slot for *_, slot in sorted(keys)]
    return order


def regroup(batch: EpisodeBatch, order: np.ndarray) -> EpisodeBatch:
    """``batch`` with every agent's episode slots permuted by ``order`` (``[S, E]``)."""
    idx = torch.as_tensor(order, dtype=torch.long)
    rows = torch.arange(idx.shape[0]).unsqueeze(-1)
    return EpisodeBatch(*(getattr(batch, f.name)[rows, idx] for f in fields(batch)))
