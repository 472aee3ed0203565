"""Tianshou 2.0.1's REINFORCE on CartPole-v1, set up as close to ``rlab-train``'s default job as
its API allows: a peer of part (h) (``benchmarks/measure_peers.py``), run in ``benchmarks/.peers-venv``.

Settings (those of rlab's defaults unless said otherwise):

* ``tianshou.env.DummyVectorEnv`` of 8 ``gym.make("CartPole-v1")`` (Tianshou's own vector env:
  it does not take gymnasium's native vector CartPole), seeded with the seed;
* ``tianshou.utils.net.common.Net``, MLP 4-64-64-2 with tanh (Tianshou's default activation is
  ReLU), ``softmax=True`` with ``dist_fn=torch.distributions.Categorical`` and the layers' default
  initialisation (as rlab's ``policy.init=default``), as in Tianshou's own ``test/discrete/test_reinforce.py``;
* ``Reinforce(gamma=0.99, return_standardization=True)`` with ``AdamOptimizerFactory(lr=0.005)``.
  Tianshou standardises the returns with running statistics of the earlier batches, not with the
  batch's own (rlab's ``algo.normalize_by=batch``; rlab's ``normalize_by=running`` is Tianshou's);
  its loss is the mean over steps, −mean_t G_t ln π, where rlab's is the sum over steps / 16
  episodes (a scale Adam ignores);
* ``OnPolicyTrainer`` (``algorithm.run_training``) with ``collection_step_num_episodes=16``,
  ``batch_size=None`` (the whole batch in one gradient step) and ``update_step_num_repetitions=1``:
  one Adam step per 16 whole episodes; no test collector, no logger, no progress bar;
* one torch thread; a 500,000 env-step budget (one epoch of that many steps).

'Solved' is checked on the training episodes the collector returns (``solve_tracker.py``); the
run stops at the start of the next training step, i.e. after the update of the batch that solved
it. Usage: ``benchmarks/.peers-venv/bin/python benchmarks/peers/tianshou_reinforce.py --seed 0``.
"""

import time

_T_START = time.perf_counter()

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from tianshou.algorithm import Reinforce  # noqa: E402
from tianshou.algorithm.modelfree.reinforce import ProbabilisticActorPolicy  # noqa: E402
from tianshou.algorithm.optim import AdamOptimizerFactory  # noqa: E402
from tianshou.data import Collector, CollectStats, VectorReplayBuffer  # noqa: E402
from tianshou.env import DummyVectorEnv  # noqa: E402
from tianshou.trainer import OnPolicyTrainerParams  # noqa: E402
from tianshou.utils.net.common import Net  # noqa: E402

from solve_tracker import SolveTracker, emit, parse_args  # noqa: E402

_T_IMPORTED = time.perf_counter()
NUM_ENVS, EPISODES_PER_UPDATE, LR, GAMMA = 8, 16, 0.005, 0.99


class Solved(Exception):
    """Raised from the trainer's ``training_fn`` to end the run once CartPole is solved."""


class TrackingCollector(Collector[CollectStats]):
    """Tianshou's collector, noting the return of every training episode it completes."""

    def __init__(self, *args, tracker: SolveTracker, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.tracker, self.env_steps = tracker, 0

    def collect(self, *args, **kwargs) -> CollectStats:
        stats = super().collect(*args, **kwargs)
        self.env_steps += stats.n_collected_steps
        for ret in stats.returns:
            self.tracker.add(float(ret))
        return stats


def build(seed: int, tracker: SolveTracker) -> tuple[Reinforce, TrackingCollector]:
    """The algorithm and its training collector, as Tianshou's REINFORCE example builds them."""
    envs = DummyVectorEnv([lambda: gym.make("CartPole-v1") for _ in range(NUM_ENVS)])
    envs.seed(seed)
    net = Net(state_shape=4, action_shape=2, hidden_sizes=[64, 64], activation=torch.nn.Tanh, softmax=True)
    policy = ProbabilisticActorPolicy(actor=net, dist_fn=torch.distributions.Categorical,
                                      action_space=gym.spaces.Discrete(2), action_scaling=False,
                                      action_bound_method=None)
    algorithm = Reinforce(policy=policy, optim=AdamOptimizerFactory(lr=LR), gamma=GAMMA,
                          return_standardization=True)
    collector = TrackingCollector(algorithm, envs, VectorReplayBuffer(20_000, NUM_ENVS), tracker=tracker)
    return algorithm, collector


def main() -> None:
    args = parse_args(__doc__.split("\n\n")[0])
    torch.set_num_threads(1)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    tracker = SolveTracker()
    algorithm, collector = build(args.seed, tracker)

    def stop_when_solved(epoch: int, env_step: int) -> None:
        if tracker.solved_at is not None:
            raise Solved

    params = OnPolicyTrainerParams(
        training_collector=collector, test_collector=None, max_epochs=1, epoch_num_steps=args.max_env_steps,
        collection_step_num_episodes=EPISODES_PER_UPDATE, collection_step_num_env_steps=None, batch_size=None,
        update_step_num_repetitions=1, training_fn=stop_when_solved, logger=None, verbose=False,
        show_progress=False)
    start = time.perf_counter()
    try:
        algorithm.run_training(params)
    except Solved:
        pass
    wall = time.perf_counter() - start
    emit({"seed": args.seed, "peer": "tianshou_reinforce", "setup_s": round(start - _T_IMPORTED, 3)}, tracker,
         collector.env_steps, wall, _T_START, _T_IMPORTED, args.json)


if __name__ == "__main__":
    main()
