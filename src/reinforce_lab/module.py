"""The Lightning module that trains every REINFORCE variant.

One ``training_step`` = collect ``episodes_per_update`` whole episodes with the current
policy, then one :class:`~reinforce_lab.update.PolicyGradient` update. Optimisation is
manual because ``loss=update_rule`` changes the parameters without any loss, and the
sequential rule updates many times per batch; Lightning still owns the loop, devices,
precision, loggers, callbacks and checkpoints.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, IterableDataset

from .policies import Policy
from .rollout import EpisodeCollector
from .update import PolicyGradient

OptimizerFactory = Callable[..., torch.optim.Optimizer]


class _Ticks(IterableDataset):
    """An endless stream of dummy items: the data are the episodes the module collects itself."""

    def __iter__(self) -> Iterator[int]:
        while True:
            yield 0


class ReinforceModule(pl.LightningModule):
    """REINFORCE-family training as a LightningModule.

    Args:
        policy: π(a|s, θ).
        collector: gathers whole episodes from the vector env (S&B §13.3 needs complete episodes).
        optimizer: partial ``torch.optim`` constructor for θ (its ``lr`` is α_θ).
        value_fn: v̂(s, w) for ``baseline``/``td`` advantages.
        value_optimizer: partial constructor for w (its ``lr`` is α_w).
        update: keyword arguments of :class:`~reinforce_lab.update.PolicyGradient`.
        run_config: the resolved run configuration, stored in every checkpoint so that
            ``rlab-eval`` can rebuild env and policy from the checkpoint alone.
    """

    def __init__(self, policy: Policy, collector: EpisodeCollector, optimizer: OptimizerFactory,
                 value_fn: nn.Module | None = None, value_optimizer: OptimizerFactory | None = None,
                 update: dict[str, Any] | None = None, run_config: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.policy = policy
        self.value_fn = value_fn
        self.collector = collector
        self._optimizer, self._value_optimizer = optimizer, value_optimizer
        self.algo = PolicyGradient(policy, value_fn, **(update or {}))
        self.run_config = run_config or {}
        self.env_steps = 0
        self.episodes = 0

    def configure_optimizers(self):
        optimizers = [self._optimizer(self.policy.parameters())]
        if self.value_fn is not None:
            factory = self._value_optimizer or self._optimizer
            optimizers.append(factory(self.value_fn.parameters()))
        return optimizers

    def train_dataloader(self) -> DataLoader:
        return DataLoader(_Ticks(), batch_size=None)

    def training_step(self, _tick: Any, _index: int) -> dict[str, Any]:
        dtype = next(self.policy.parameters()).dtype
        self.collector.device, self.collector.dtype = self.device, dtype
        batch = self.collector.collect(self.policy)
        optimizers = self.optimizers()
        if not isinstance(optimizers, list):
            optimizers = [optimizers]
        metrics = self.algo.step(batch.to(self.device, dtype), optimizers[0],  # rewards → policy dtype
                                 optimizers[1] if len(optimizers) > 1 else None,
                                 backward=self.manual_backward)
        lengths = batch.lengths
        ends = (self.env_steps + torch.cumsum(lengths, 0)).tolist()
        first_episode = self.episodes + 1
        self.env_steps += batch.num_steps
        self.episodes += batch.num_episodes
        return {
            "metrics": metrics,
            "returns": batch.episode_returns.tolist(),
            "lengths": lengths.tolist(),
            "env_steps": ends,
            "first_episode": first_episode,
        }

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["rlab"] = {"config": self.run_config, "env_steps": self.env_steps,
                              "episodes": self.episodes}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("rlab", {})
        self.env_steps = int(state.get("env_steps", 0))
        self.episodes = int(state.get("episodes", 0))
