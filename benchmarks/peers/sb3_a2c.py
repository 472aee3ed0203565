"""Stable-Baselines3's A2C on CartPole-v1 with rl-baselines3-zoo's hyper-parameters: a peer of
part (h) (``benchmarks/measure_peers.py``), run in ``benchmarks/.peers-venv``.

rl-zoo's ``hyperparams/a2c.yml`` entry for CartPole-v1 is ``n_envs: 8, n_timesteps: 5e5,
policy: MlpPolicy, ent_coef: 0.0``; everything else is SB3's A2C default: ``n_steps=5``,
``learning_rate=7e-4`` (constant), ``gamma=0.99``, ``gae_lambda=1.0``, ``vf_coef=0.5``,
``max_grad_norm=0.5``, RMSprop (``use_rms_prop=True``, ``rms_prop_eps=1e-5``),
``normalize_advantage=False``, separate actor and critic MLPs 64-64 tanh with orthogonal
initialisation. The envs are what rl-zoo builds: ``make_vec_env("CartPole-v1", n_envs=8,
seed=SEED)`` (a ``DummyVecEnv`` of ``Monitor``-wrapped envs). Not taken from rl-zoo's harness:
its periodic evaluation (``--eval-freq``), its logging and model saving.

One torch thread (as rlab-train), ``device="cpu"``. 'Solved' is checked on the training episodes
that ``Monitor`` reports (``solve_tracker.py``); the callback stops ``learn`` at the step that
solves it; ``n_timesteps`` (500,000) is the budget. Usage:
``benchmarks/.peers-venv/bin/python benchmarks/peers/sb3_a2c.py --seed 0``.
"""

import time

_T_START = time.perf_counter()

import torch  # noqa: E402
from stable_baselines3 import A2C  # noqa: E402
from stable_baselines3.common.callbacks import BaseCallback  # noqa: E402
from stable_baselines3.common.env_util import make_vec_env  # noqa: E402

from solve_tracker import SolveTracker, emit, parse_args  # noqa: E402

_T_IMPORTED = time.perf_counter()
ZOO = {"n_envs": 8, "policy": "MlpPolicy", "ent_coef": 0.0}  # rl-zoo hyperparams/a2c.yml, CartPole-v1


class SolveCallback(BaseCallback):
    """Feeds each finished training episode's return to the tracker; stops training once solved."""

    def __init__(self, tracker: SolveTracker) -> None:
        super().__init__()
        self.tracker = tracker

    def _on_step(self) -> bool:
        for info in self.locals["infos"]:
            if "episode" in info:
                self.tracker.add(info["episode"]["r"])
        return self.tracker.solved_at is None


def main() -> None:
    args = parse_args(__doc__.split("\n\n")[0])
    torch.set_num_threads(1)
    tracker = SolveTracker()
    env = make_vec_env("CartPole-v1", n_envs=ZOO["n_envs"], seed=args.seed)
    model = A2C(ZOO["policy"], env, ent_coef=ZOO["ent_coef"], seed=args.seed, device="cpu", verbose=0)
    start = time.perf_counter()
    model.learn(total_timesteps=args.max_env_steps, callback=SolveCallback(tracker))
    wall = time.perf_counter() - start
    env.close()
    emit({"seed": args.seed, "peer": "sb3_a2c", "setup_s": round(start - _T_IMPORTED, 3)}, tracker,
         model.num_timesteps, wall, _T_START, _T_IMPORTED, args.json)


if __name__ == "__main__":
    main()
