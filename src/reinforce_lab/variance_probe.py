"""Callback: measure the gradient estimator's variance (and bias) during training, at the current θ.

Every ``every_updates`` updates it draws ``num_batches`` extra batches with the current θ and w,
computes each one's ĝ with the run's own loss (:mod:`reinforce_lab.gradient_variance`) and
logs, against ``env_step``:

* ``train/grad_var``: tr Cov[ĝ] (mean over the agents still training);
* ``train/grad_norm_mean``: |ḡ|, the norm of the mean over the probe's batches;
* ``train/grad_snr``: |ḡ|² / tr Cov[ĝ];
* on the short corridor with aliased states and the preference policy (S&B Ex. 13.1), where
  ∇J is known exactly (:mod:`reinforce_lab.exact_gradient`): ``train/grad_bias`` = |ḡ − ∇J|,
  ``train/grad_bias_z`` (the largest |z| over θ's entries) and ``train/grad_cosine``;
* ``train/probe_env_steps``: the env steps the probe has spent so far.

**It only observes.** Nothing is trained on the probe's batches, and the training run's
random streams are untouched: the probe samples actions from its own generators (seeded from
the agent's seed and the update count) and resets the envs with round numbers no training
round uses; afterwards the collector's state (rounds, RNG states, active agents) is put back
with its ``load_state_dict``, so the next training batch is the one it would have been
(``episodes.csv`` is the same file, tested). With asynchronous agents this restarts their
rounds in flight, which then run again identically (the resume path): each agent's episodes
and θ are the same, but which agent's batch a call returns first, hence the order of rows
in ``episodes.csv`` and the global ``env_step`` of a record, may change. This needs env seeds
(``rlab-train`` always gives them). An estimator that kept state across batches would see
the probe's batches; none of :mod:`reinforce_lab.advantages` does.

**Cost.** The probe's episodes are env steps that the run's budget (``train.max_env_steps``)
does *not* count: each probe costs ``num_batches`` batches. Enable it with
``callbacks=variance_probe`` (conf/callbacks/variance_probe.yaml).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np
import pytorch_lightning as pl
import torch

from .envs import ShortCorridorEnv, ShortCorridorVectorEnv
from .exact_gradient import exact_gradient
from .gradient_variance import GradientStats, collector_batches, measure, probe_seed
from .objectives import PolicyGradientLoss
from .policies import PreferencePolicy
from .rollout import EpisodeCollector
from .streams import AgentStreams

PROBE_ROUNDS = 1 << 40  # env-seed round numbers from here on are the probe's (training counts from 0)


@contextmanager
def borrowed(collector: EpisodeCollector, seeds: list[int], key: int) -> Iterator[EpisodeCollector]:
    """The collector with the probe's own random streams; its state is restored on exit.

    Inside, collection is lockstep, actions come from generators seeded by ``(seed, key)`` and
    the envs are reset with probe-only round numbers.
    """
    state = collector.state_dict()
    saved = (collector.generators, collector.streams, collector.asynchronous, collector.ready.copy())
    generators = [torch.Generator().manual_seed(probe_seed(s, key)) for s in seeds]
    collector.generators, collector.streams = generators, AgentStreams(generators)
    collector.asynchronous = False
    collector.rounds = PROBE_ROUNDS + (key % (1 << 20)) * (1 << 16)
    collector.restart()
    try:
        yield collector
    finally:
        collector.generators, collector.streams, collector.asynchronous, collector.ready = saved
        collector.load_state_dict(state)  # rounds, agent rounds, active flags, the RNG states


def corridor_exact(loss: PolicyGradientLoss, envs: Any) -> torch.Tensor | None:
    """``[S, 2]`` ∇J per agent when the run is the book's short corridor, else None.

    The straight-through gradient (:func:`~reinforce_lab.exact_gradient.exact_gradient`):
    what the estimator targets even where ``policy.min_prob`` binds.
    """
    unwrapped = getattr(envs, "unwrapped", envs)
    copies = getattr(unwrapped, "envs", None)  # a SyncVectorEnv's copies; the native one has none
    env = unwrapped if copies is None else copies[0].unwrapped
    if not isinstance(env, (ShortCorridorVectorEnv, ShortCorridorEnv)) or env.observe_state \
            or type(loss.policy) is not PreferencePolicy:
        return None
    policy = loss.policy
    est = loss.estimator
    return exact_gradient(policy.theta.detach().cpu(), est.gamma, policy.min_prob, straight_through=True)


class VarianceProbe(pl.Callback):
    """Logs bias and variance of ĝ every ``every_updates`` updates (0 or None: off).

    Args:
        every_updates: probe after every this many updates (counted from the start of this
            process: a resumed run counts again from 0).
        num_batches: M, the batches per probe (each a full batch of ``algo.episodes_per_update``
            episodes per agent).
    """

    def __init__(self, every_updates: int | None = 0, num_batches: int = 16) -> None:
        self.every_updates = int(every_updates or 0)
        self.num_batches = int(num_batches)
        self.updates = 0
        self.probe_env_steps = 0
        if self.every_updates < 0 or self.num_batches < 2:
            raise ValueError(f"variance_probe: every_updates={every_updates}, num_batches={num_batches}; "
                             "allowed: every_updates ≥ 0, num_batches ≥ 2")

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        self.updates += 1
        if not self.every_updates or self.updates % self.every_updates:
            return
        stats, active = self.probe(pl_module)
        if trainer.logger is not None and active.any():
            trainer.logger.log_metrics({**self.metrics(stats, active), "env_step": pl_module.ledger.env_step})

    def probe(self, pl_module: pl.LightningModule) -> tuple[GradientStats, np.ndarray]:
        """M batches at the current θ and w; returns their statistics and the agents measured."""
        collector: EpisodeCollector = pl_module.collector
        loss: PolicyGradientLoss = pl_module.objective.loss
        active = collector.active.copy()
        exact = corridor_exact(loss, collector.envs)
        with borrowed(collector, pl_module.ledger.seeds, self.updates) as probe_collector:
            draw = collector_batches(probe_collector, loss)

            def counted():
                batch = draw()
                self.probe_env_steps += batch.num_steps
                return batch

            stats = measure(loss, counted, self.num_batches, exact)
        return stats, active

    def metrics(self, stats: GradientStats, active: np.ndarray) -> dict[str, float]:
        """The logged values: means over the ``active`` agents."""
        idx = torch.as_tensor(np.flatnonzero(active))
        out = {"train/grad_var": float(stats.total_var[idx].mean()),
               "train/grad_norm_mean": float(stats.mean_norm[idx].mean()),
               "train/grad_snr": float(stats.snr[idx].mean()),
               "train/probe_env_steps": float(self.probe_env_steps)}
        if stats.bias is not None:
            out["train/grad_bias"] = float(stats.bias[idx].norm(dim=-1).mean())
            out["train/grad_bias_z"] = float(stats.z[idx].abs().amax(dim=-1).mean())
            out["train/grad_cosine"] = float(stats.cosine[idx].mean())
        return out
