"""``rlab-eval ckpt=PATH [episodes=N] [video=true]``: evaluate a trained policy.

The checkpoint carries the run's resolved config, so env and policy are rebuilt from it
alone. Prints ``mean ± std`` of the episode returns and writes ``eval.json`` beside the
run's other files (or to ``out``); ``video=true`` saves MP4s through gymnasium's
``RecordVideo``. Bad input (no or an unreadable ``ckpt``, an ``env`` other than the
checkpoint's, unknown keys, bad values) is one line and exit code 2 before anything is
written: :mod:`~reinforce_lab.eval_checks` checks the command line before Hydra starts.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any, NoReturn

import hydra
from omegaconf import DictConfig, OmegaConf

from .errors import ConfigError
from .eval_checks import (EvalRequest, check, check_agent, checkpoint_file, eval_argv, load_checkpoint, precheck,
                          run_dir_of)

__all__ = ["evaluate", "main", "run_dir_of"]


def evaluate(ckpt: Path, episodes: int = 10, greedy: bool = False, seed: int = 12345,
             video_dir: Path | None = None, video_episodes: int = 1, agent: int = 0,
             state: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run ``episodes`` episodes with the checkpoint's policy; returns the results.

    ``agent`` picks one agent of a ``train.num_seeds`` checkpoint (0 for a plain run).
    ``state`` is the checkpoint already loaded by :func:`~reinforce_lab.eval_checks.load_checkpoint`
    (read from ``ckpt`` when None). Bad input raises a one-line :class:`ConfigError` before
    anything (videos included) is written.
    """
    import gymnasium as gym
    import torch

    from .settings import EnvSettings, section
    from .envs import make_env

    os.environ.setdefault("MUJOCO_GL", "egl")
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    ckpt = checkpoint_file(ckpt)
    state = load_checkpoint(ckpt) if state is None else state
    conf = OmegaConf.create(state["rlab"]["config"])
    env_s = section(conf, "env", EnvSettings)
    num_seeds = int(conf.train.num_seeds)
    check_agent(agent, num_seeds)
    env = make_env(env_s.id, env_s.max_episode_steps, render_mode="rgb_array" if video_dir else None,
                   **(env_s.kwargs or {}))
    policy = _load_policy(conf, state, env, ckpt)
    if video_dir is not None:  # only now: a checkpoint refused above leaves no videos folder behind
        env = gym.wrappers.RecordVideo(env, str(video_dir), name_prefix="eval",
                                       episode_trigger=lambda i: i < video_episodes, disable_logger=True)
    returns, lengths = [], []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        total, steps, done = 0.0, 0, False
        while not done:
            obs_t = torch.as_tensor(obs, dtype=torch.float32).expand(num_seeds, 1, -1)  # [agents, 1, obs_dim]
            # The run's observation statistics (policy.obs_norm) and action bounding (policy.bound) apply.
            action = policy.act(policy.observe(obs_t), greedy=greedy)[agent, 0].numpy()
            obs, reward, terminated, truncated, _ = env.step(policy.env_action(action) if not policy.discrete
                                                             else int(action))
            total += float(reward)
            steps += 1
            done = terminated or truncated
        returns.append(total)
        lengths.append(steps)
    env.close()
    result = {
        "ckpt": str(ckpt), "env_id": conf.env.id, "agent_seed": int(conf.seed) + agent, "episodes": episodes,
        "greedy": greedy, "seed": seed,
        "return_mean": statistics.fmean(returns), "return_std": statistics.pstdev(returns),
        "returns": returns, "lengths": lengths, "trained_env_steps": state["rlab"].get("env_steps"),
    }
    if video_dir is not None:
        result["videos"] = sorted(str(p) for p in Path(video_dir).glob("*.mp4"))
    return result


def _load_policy(conf: DictConfig, state: dict[str, Any], env: Any, ckpt: Path) -> Any:
    """The checkpoint's policy, rebuilt from its run config, in eval mode."""
    from .builders import build_policy

    num_seeds = int(conf.train.num_seeds)
    policy = build_policy(conf.policy, env.observation_space, env.action_space, [None] * num_seeds)
    try:
        policy.load_state_dict({k[len("policy."):]: v for k, v in state["state_dict"].items()
                                if k.startswith("policy.")})
    except (RuntimeError, KeyError, TypeError) as exc:  # weights that do not fit the config's policy
        raise ConfigError("ckpt", ckpt, "a checkpoint whose weights fit its run config's policy "
                          f"({type(exc).__name__} loading them)") from None
    return policy.eval()


def _fail(message: str) -> NoReturn:
    """One line on stderr, exit code 2: bad input never shows a traceback."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


@hydra.main(config_path="pkg://reinforce_lab.conf", config_name="eval", version_base="1.3")
def _hydra_main(cfg: DictConfig) -> None:
    """The Hydra job: check (again), evaluate, write ``eval.json``, print one line of results."""
    try:
        req: EvalRequest = check(cfg)  # again: --cfg/-m skip the precheck, and it is cheap (the load is cached)
        result = evaluate(req.ckpt, req.episodes, req.greedy, req.seed, req.out_dir / "videos" if req.video else None,
                          req.video_episodes, req.agent, state=req.state)
    except ConfigError as exc:
        _fail(str(exc))
    out_dir = req.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "eval.json").write_text(json.dumps(result, indent=2) + "\n")
    mode = "greedy" if req.greedy else "stochastic"
    print(f"[rlab-eval] {result['env_id']}: return {result['return_mean']:.2f} ± {result['return_std']:.2f} "
          f"over {req.episodes} {mode} episodes")
    print(f"[rlab-eval] wrote {out_dir / 'eval.json'}")
    for video in result.get("videos", []):
        print(f"[rlab-eval] video: {video}")


def main() -> None:
    """Console entry point ``rlab-eval``: bad input is one line and exit code 2, before Hydra starts."""
    try:
        sys.argv[1:] = eval_argv(sys.argv[1:])
        precheck(sys.argv[1:])
    except ConfigError as exc:
        _fail(str(exc))
    _hydra_main()


if __name__ == "__main__":
    main()
