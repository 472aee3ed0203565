"""The Lightning module that trains every REINFORCE variant.

One ``training_step`` = collect ``episodes_per_update`` whole episodes per agent with the
current policy, then one update: the loss terms of :mod:`reinforce_lab.objectives` summed,
backpropagated and stepped, or the book's rule of :mod:`reinforce_lab.book_rule`. Optimisation
is manual because ``loss=update_rule`` changes the parameters without any loss, and the
sequential rule updates many times per batch; Lightning still owns the loop, devices,
precision, loggers, callbacks and checkpoints.

With ``train.num_seeds = S`` the module holds S independent agents (every parameter has a
leading agent dimension, see :mod:`reinforce_lab.policies`). An agent that has used its
budget (or reached the target) stops collecting episodes and its parameters are frozen,
so each agent's record is what a separate run with its seed would have written.

Per-agent state (counters, return windows, stop decisions, the rollout's rounds and RNG
states) is owned by the :class:`~reinforce_lab.ledger.AgentLedger`: the module feeds it after
every update, applies its decisions (freezing stopped agents, ending the fit) and saves and
restores it as one unit in the checkpoint.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, IterableDataset

from .ledger import AgentLedger, UpdateRecord
from .lr_schedules import LrSchedule
from .numerics import NonFiniteError, parameters_finite
from .objectives import descend
from .policies import Policy
from .rollout import EpisodeBatch, EpisodeCollector
from .update import Update

OptimizerFactory = Callable[..., torch.optim.Optimizer]


class _Ticks(IterableDataset):
    """An endless stream of dummy items: the data are the episodes the module collects itself."""

    def __iter__(self) -> Iterator[int]:
        while True:
            yield 0


class ReinforceModule(pl.LightningModule):
    """REINFORCE-family training as a LightningModule.

    Args:
        policy: π(a|s, θ) for S agents.
        collector: gathers whole episodes from the vector env (S&B §13.3 needs complete episodes).
        update: the loss (and, for ``loss=update_rule``, the rule) of
            :func:`~reinforce_lab.update.build_update`, over ``policy`` and ``value_fn``.
        ledger: the agents' training state (counters, windows, stop decisions, rollout state).
        optimizer: partial ``torch.optim`` constructor for θ (its ``lr`` is α_θ).
        value_fn: v̂(s, w) for ``baseline``/``td`` advantages.
        value_optimizer: partial constructor for w (its ``lr`` is α_w).
        run_config: the resolved run configuration, stored in every checkpoint so that
            ``rlab-eval`` can rebuild env and policy from the checkpoint alone.
        return_stats: running statistics of returns and Ψ (``algo.normalize_by=running``,
            ``algo.bootstrap=return_mean``); a submodule, so checkpoints keep them.
        lr_schedule: ``train.lr_schedule`` (:mod:`reinforce_lab.lr_schedules`); None: constant.
    """

    def __init__(self, policy: Policy, collector: EpisodeCollector, update: Update, ledger: AgentLedger,
                 optimizer: OptimizerFactory, value_fn: nn.Module | None = None,
                 value_optimizer: OptimizerFactory | None = None, run_config: dict[str, Any] | None = None,
                 return_stats: nn.Module | None = None, lr_schedule: LrSchedule | None = None) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.policy = policy
        self.value_fn = value_fn
        self.collector = collector
        self._optimizer, self._value_optimizer = optimizer, value_optimizer
        self.objective = update  # loss terms (+ the book's rule)
        self.run_config = run_config or {}
        self.num_seeds = collector.num_seeds
        self.ledger = ledger
        self.return_stats = return_stats
        self.lr_schedule = lr_schedule
        self.wandb_id: str | None = None  # the W&B run this training writes to (kept for resumes)
        self._frozen: dict[str, torch.Tensor] = {}

    def configure_optimizers(self) -> Any:
        optimizers = [self._optimizer(self.policy.parameters())]
        if self.value_fn is not None:
            factory = self._value_optimizer or self._optimizer
            optimizers.append(factory(self.value_fn.parameters()))
        if self.lr_schedule is None:
            return optimizers
        # Lightning saves and restores the schedulers with the checkpoint; with manual
        # optimisation the module steps them (after each update, once the ledger has counted it).
        return optimizers, [self.lr_schedule.scheduler(o, lambda: self.ledger.env_step) for o in optimizers]

    def train_dataloader(self) -> DataLoader:
        return DataLoader(_Ticks(), batch_size=None)

    def _snapshot(self) -> None:
        self._frozen_mask = ~torch.as_tensor(self.collector.active)
        for name, p in self.named_parameters():
            self._frozen[name] = p.detach().clone()

    def _restore_frozen(self) -> None:
        # Adam moves parameters even on a zero gradient (momentum): put frozen agents back.
        if self._frozen:
            self._copy_back(self._frozen_mask, self._frozen)

    def _copy_back(self, agents: torch.Tensor, saved: dict[str, torch.Tensor]) -> None:
        """Set the slices of ``agents`` (a ``[S]`` mask) of every parameter to ``saved``."""
        with torch.no_grad():
            for name, p in self.named_parameters():
                mask = agents.to(p.device)
                p[mask] = saved[name][mask]

    def training_step(self, _tick: Any, _index: int) -> dict[str, Any]:
        if not self._frozen and not self.collector.active.all():  # resumed with stopped agents
            self._snapshot()
        dtype = next(self.policy.parameters()).dtype
        self.collector.device, self.collector.dtype = self.device, dtype
        batch = self.collector.collect(self.policy)
        optimizers = self.optimizers()
        if not isinstance(optimizers, list):
            optimizers = [optimizers]
        idle = None
        if self.collector.asynchronous:
            # Only the agents whose batch is complete update; the others' episodes are still
            # running. Their gradients are zero, so plain SGD leaves them as they are; copying
            # them back also guards against anything non-finite from their empty batches.
            idle = torch.as_tensor(~self.collector.ready)
            before = {name: p.detach().clone() for name, p in self.named_parameters()} if idle.any() else None
        metrics = {}
        if idle is None or not idle.all():
            metrics = self._optimise(batch.to(self.device, dtype), optimizers)  # rewards → policy dtype
        if idle is not None and before is not None:
            self._copy_back(idle, before)
        self._restore_frozen()
        if not parameters_finite(self):
            raise NonFiniteError("non-finite parameters after the update; the last checkpoint is kept. "
                                 "hint: lower optimizer.lr or keep algo.normalize_returns=true")
        self.objective.loss.commit()  # the running statistics learn the batch just trained on
        record = self._record(batch, metrics)
        if self.lr_schedule is not None:
            schedulers = self.lr_schedulers()
            for scheduler in schedulers if isinstance(schedulers, list) else [schedulers]:
                scheduler.step()
            record.metrics["train/lr"] = optimizers[0].param_groups[0]["lr"]
        if self.ledger.decide() and self.num_seeds > 1:
            self._snapshot()  # the ledger stopped agents: keep their parameters as they are now
        if self.ledger.should_stop:
            self.trainer.should_stop = True
        return {"record": record}

    def _optimise(self, batch: EpisodeBatch, optimizers: list[torch.optim.Optimizer]) -> dict[str, float]:
        """One update from ``batch``; returns the metrics to log (the same keys for every loss form).

        ``loss=update_rule`` changes θ (and w) in place without a loss (:mod:`reinforce_lab.book_rule`);
        every other form sums the loss terms, backpropagates and steps θ's and w's optimisers.
        """
        if self.objective.rule is not None:
            return self.objective.rule(batch)
        loss = self.objective.loss
        return descend(loss(batch), loss.parameters(), optimizers, backward=self.manual_backward)

    def _record(self, batch: Any, metrics: dict[str, float]) -> UpdateRecord:
        """Hand the batch's finished episodes to the ledger (an agent that has stopped has none)."""
        finished = getattr(self.collector, "finished", None)  # fixed-horizon rollouts say what ended
        if finished is not None:
            agents = self.ledger.record(finished.returns, finished.lengths, finished.offsets, finished.steps)
            return UpdateRecord(metrics, agents, self.ledger.env_step)
        returns, lengths = batch.episode_returns.tolist(), batch.lengths.tolist()
        # one tensor op for every agent's count (a per-agent loop cost 100 agents 1 s per 1000 episodes)
        counts = (batch.lengths > 0).sum(-1).tolist() if self.num_seeds > 1 else [batch.num_episodes]
        agents = self.ledger.record([r[:n] for r, n in zip(returns, counts)], [x[:n] for x, n in zip(lengths, counts)])
        return UpdateRecord(metrics, agents, self.ledger.env_step)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Everything a resumed run needs, as one unit: the ledger (with the rollout's rounds and
        # RNG states). With asynchronous agents it holds every agent as of the start of its round
        # in flight (those episodes are run again, identically, after a resume).
        checkpoint["rlab"] = {"config": self.run_config, "wandb_id": self.wandb_id,
                              "env_steps": self.ledger.total_env_steps,  # for readers such as rlab-eval
                              "ledger": self.ledger.state_dict()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.ledger.load_state_dict(checkpoint["rlab"]["ledger"])
