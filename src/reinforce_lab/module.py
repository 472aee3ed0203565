"""The Lightning module that trains every REINFORCE variant.

One ``training_step`` = collect ``episodes_per_update`` whole episodes per agent with the
current policy, then one :class:`~reinforce_lab.update.PolicyGradient` update. Optimisation
is manual because ``loss=update_rule`` changes the parameters without any loss, and the
sequential rule updates many times per batch; Lightning still owns the loop, devices,
precision, loggers, callbacks and checkpoints.

With ``train.num_seeds = S`` the module holds S independent agents (every parameter has a
leading agent dimension, see :mod:`reinforce_lab.policies`). An agent that has used its
budget (or reached the target) stops collecting episodes and its parameters are frozen,
so each agent's record is what a separate run with its seed would have written.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import numpy as np
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, IterableDataset

from .policies import Policy
from .rollout import EpisodeCollector
from .update import NonFiniteError, PolicyGradient, parameters_finite

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
        self.num_seeds = collector.num_seeds
        self.agent_env_steps = [0] * self.num_seeds
        self.agent_episodes = [0] * self.num_seeds
        self._frozen: dict[str, torch.Tensor] = {}

    # Totals over agents (a plain run has one agent).
    @property
    def env_steps(self) -> int:
        return sum(self.agent_env_steps)

    @property
    def episodes(self) -> int:
        return sum(self.agent_episodes)

    def configure_optimizers(self):
        optimizers = [self._optimizer(self.policy.parameters())]
        if self.value_fn is not None:
            factory = self._value_optimizer or self._optimizer
            optimizers.append(factory(self.value_fn.parameters()))
        return optimizers

    def train_dataloader(self) -> DataLoader:
        return DataLoader(_Ticks(), batch_size=None)

    def stop_agent(self, agent: int) -> None:
        """Freeze agent ``agent``: no more episodes, parameters kept as they are now."""
        if not self.collector.active[agent]:
            return
        self.collector.active[agent] = False
        self._snapshot()

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
            metrics = self.algo.step(batch.to(self.device, dtype), optimizers[0],  # rewards → policy dtype
                                     optimizers[1] if len(optimizers) > 1 else None,
                                     backward=self.manual_backward)
        if idle is not None and before is not None:
            self._copy_back(idle, before)
        self._restore_frozen()
        if not parameters_finite(self):
            raise NonFiniteError("non-finite parameters after the update; the last checkpoint is kept. "
                                 "hint: lower optimizer.lr or keep algo.normalize_returns=true")
        returns, lengths = batch.episode_returns.tolist(), batch.lengths.tolist()
        agents = []
        for a in range(self.num_seeds):
            n = int((batch.lengths[a] > 0).sum()) if self.num_seeds > 1 else batch.num_episodes
            ends = (self.agent_env_steps[a] + np.cumsum(lengths[a][:n])).tolist()
            agents.append({"returns": returns[a][:n], "lengths": lengths[a][:n], "env_steps": ends,
                           "first_episode": self.agent_episodes[a] + 1})
            self.agent_env_steps[a] += int(sum(lengths[a][:n]))
            self.agent_episodes[a] += n
        return {"metrics": metrics, "agents": agents}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Everything a resumed run needs to continue exactly where this one is: counters, the
        # collector's round (env seeds derive from it) and every agent's RNG state.
        # With asynchronous agents a checkpoint holds every agent as of the start of its round
        # in flight (those episodes are run again, identically, after a resume).
        checkpoint["rlab"] = {"config": self.run_config, "env_steps": self.env_steps, "episodes": self.episodes,
                              "agent_env_steps": self.agent_env_steps, "agent_episodes": self.agent_episodes,
                              "active": self.collector.active.tolist(), "rounds": self.collector.rounds,
                              "agent_rounds": self.collector.agent_rounds.tolist(),
                              "generator_states": self.collector.generator_states(),
                              "wandb_id": getattr(self, "wandb_id", None)}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("rlab", {})
        self.agent_env_steps = list(state.get("agent_env_steps", [state.get("env_steps", 0)]))
        self.agent_episodes = list(state.get("agent_episodes", [state.get("episodes", 0)]))
        self.collector.rounds = int(state.get("rounds", 0))
        self.collector.agent_rounds[:] = np.asarray(state.get("agent_rounds", self.collector.rounds), dtype=np.int64)
        self.collector.restart()
        if "active" in state:
            self.collector.active[:] = np.asarray(state["active"], dtype=bool)
        for g, g_state in zip(self.collector.generators or [], state.get("generator_states", [])):
            g.set_state(g_state)
