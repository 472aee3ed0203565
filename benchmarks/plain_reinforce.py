"""Vanilla REINFORCE on CartPole-v1 in plain PyTorch: the baseline ``rlab-train`` is timed against.

The same algorithm and hyper-parameters as ``rlab-train`` with its defaults (conf/train.yaml,
env=cartpole, algo=reinforce, loss=log_prob, optimizer=adam), with nothing else around it:

* gymnasium's native numpy vector CartPole, 8 copies
  (``gym.make_vec("CartPole-v1", num_envs=8, vectorization_mode="vector_entry_point")``).
  It auto-resets on the *next* step: the step after an episode's last one returns the reset
  observation with reward 0 and ignores the action; that transition belongs to no episode
  and is dropped.
* MLP 4-64-64-2 with tanh, categorical policy over its logits (sampled with
  ``torch.multinomial``, the cheapest idiomatic way); Adam, lr 0.005; one torch thread.
* 16 whole episodes per update, 2 per env copy (a copy that has finished its 2 keeps
  stepping until the others are done; those steps are discarded), all envs reset at the
  start of each update.
* γ = 0.99 reward-to-go G_t, normalised over the batch (mean and population std over all
  steps), loss ``−Σ_t Ψ_t ln π(A_t|S_t) / E`` with E = 16 episodes.
* stop once the mean return of the last 100 episodes is ≥ 475 (checked episode by episode,
  training stops at the end of that update) or after 500,000 env steps.

Usage::

    python benchmarks/plain_reinforce.py --seed 0 [--json out.json]

Prints one JSON line: ``wall_s`` (training time, imports excluded), ``process_wall_s``
(since the interpreter started), ``env_steps``, ``env_steps_per_s``, ``episodes``,
``solved_at_episode``, ``final_return``, ``import_s``.
"""

import time

_T_IMPORT = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
from collections import deque  # noqa: E402

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

_T_IMPORTED = time.perf_counter()


def process_age_s() -> float:
    """Seconds since this process started (Linux /proc; falls back to since this module's first line)."""
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return time.perf_counter() - _T_IMPORT


def collect(envs, policy: nn.Module, quota: np.ndarray, obs: np.ndarray) -> tuple[list[np.ndarray], list[float]]:
    """Step every copy until each has finished its quota of whole episodes.

    Returns the stacked observations, actions, rewards, kept-step masks and episode ends, all
    ``[T, n]`` (observations ``[T, n, 4]``), and the returns in the order the episodes ended.
    """
    num_envs = len(quota)
    done_count = np.zeros(num_envs, dtype=np.int64)
    resetting = np.zeros(num_envs, dtype=bool)  # this step only resets the copy (NEXT_STEP)
    ep_return = np.zeros(num_envs)
    obs_l, act_l, rew_l, valid_l, end_l = [], [], [], [], []
    finished = []  # returns in the order the episodes ended
    while (done_count < quota).any():
        with torch.no_grad():
            logits = policy(torch.as_tensor(obs))
        action = torch.multinomial(logits.softmax(-1), 1).squeeze(-1).numpy()
        next_obs, reward, term, trunc, _ = envs.step(action)
        valid = ~resetting & (done_count < quota)  # a transition of an episode we keep
        ended = (term | trunc) & valid
        obs_l.append(obs)
        act_l.append(action)
        rew_l.append(reward * valid)
        valid_l.append(valid)
        end_l.append(ended)
        ep_return += reward * valid
        for i in np.flatnonzero(ended):
            finished.append(float(ep_return[i]))
            ep_return[i] = 0.0
        done_count += ended
        resetting = (term | trunc) & ~resetting
        obs = next_obs
    return [np.stack(x) for x in (obs_l, act_l, rew_l, valid_l, end_l)], finished


def reward_to_go(rewards: np.ndarray, valid: np.ndarray, ends: np.ndarray, gamma: float) -> np.ndarray:
    """G_t of every kept step, one reverse scan over all copies at once (``[T, n]``, 0 elsewhere)."""
    returns = np.zeros_like(rewards)
    running = np.zeros(rewards.shape[1])
    for t in range(len(rewards) - 1, -1, -1):
        running = np.where(valid[t], rewards[t] + gamma * running * ~ends[t], 0.0)
        returns[t] = running
    return returns


def update(policy: nn.Module, optimizer: torch.optim.Optimizer, obs: np.ndarray, act: np.ndarray,
           returns: np.ndarray, episodes_per_update: int) -> None:
    """One Adam step on −Σ Ψ ln π / E, Ψ the returns normalised over the batch."""
    obs_b = torch.as_tensor(obs)  # [N, 4]: every kept step
    act_b = torch.as_tensor(act)
    psi = torch.as_tensor(returns, dtype=torch.float32)
    psi = (psi - psi.mean()) / (psi.std(unbiased=False) + 1e-8)
    log_prob = policy(obs_b).log_softmax(-1).gather(-1, act_b.unsqueeze(-1)).squeeze(-1)  # ln π(A_t|S_t)
    loss = -(psi * log_prob).sum() / episodes_per_update
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def train(seed: int = 0, num_envs: int = 8, episodes_per_update: int = 16, lr: float = 0.005,
          gamma: float = 0.99, target: float = 475.0, window: int = 100,
          max_env_steps: int = 500_000) -> dict:
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    np.random.seed(seed)
    envs = gym.make_vec("CartPole-v1", num_envs=num_envs, vectorization_mode="vector_entry_point")
    policy = nn.Sequential(nn.Linear(4, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 2))
    optimizer = torch.optim.Adam(policy.parameters(), lr=lr)
    quota = np.full(num_envs, episodes_per_update // num_envs)
    quota[: episodes_per_update % num_envs] += 1

    recent: deque = deque(maxlen=window)
    env_steps = episodes = 0
    solved_at = None
    first_reset = True
    start = time.perf_counter()
    while solved_at is None and env_steps < max_env_steps:
        # ---- `episodes_per_update` whole episodes with the current policy, all envs reset first
        obs, _ = envs.reset(seed=seed if first_reset else None)
        first_reset = False
        (obs_t, act_t, rewards, valid, ends), finished = collect(envs, policy, quota, obs)
        returns = reward_to_go(rewards, valid, ends, gamma)
        update(policy, optimizer, obs_t[valid], act_t[valid], returns[valid], episodes_per_update)
        # ---- bookkeeping: the solved criterion, episode by episode
        env_steps += int(valid.sum())
        for ret in finished:
            episodes += 1
            recent.append(ret)
            if solved_at is None and len(recent) == window and sum(recent) / window >= target:
                solved_at = episodes
    wall = time.perf_counter() - start
    envs.close()
    return {"seed": seed, "wall_s": round(wall, 3), "process_wall_s": round(process_age_s(), 3),
            "import_s": round(_T_IMPORTED - _T_IMPORT, 3), "env_steps": env_steps, "episodes": episodes,
            "env_steps_per_s": env_steps / wall, "solved_at_episode": solved_at,
            "final_return": sum(recent) / len(recent) if recent else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-env-steps", type=int, default=500_000)
    parser.add_argument("--json", help="also write the result to this file")
    args = parser.parse_args()
    result = train(seed=args.seed, max_env_steps=args.max_env_steps)
    result["process_wall_s"] = round(process_age_s(), 3)
    line = json.dumps(result)
    print(line, flush=True)
    if args.json:
        with open(args.json, "w") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    main()
