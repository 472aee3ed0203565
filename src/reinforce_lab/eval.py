"""``rlab-eval ckpt=PATH [episodes=N] [video=true]``: evaluate a trained policy.

The checkpoint carries the run's resolved config, so env and policy are rebuilt from it
alone. Prints ``mean ± std`` of the episode returns and writes ``eval.json`` beside the
run's other files (or to ``out``); ``video=true`` saves MP4s through gymnasium's
``RecordVideo``.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from .config import ConfigError


def run_dir_of(ckpt: Path) -> Path:
    """``RUN/checkpoints/last.ckpt`` → ``RUN``."""
    return ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent


def evaluate(ckpt: Path, episodes: int = 10, greedy: bool = False, seed: int = 12345,
             video_dir: Path | None = None, video_episodes: int = 1, agent: int = 0) -> dict[str, Any]:
    """Run ``episodes`` episodes with the checkpoint's policy; returns the results.

    ``agent`` picks one agent of a ``train.num_seeds`` checkpoint (0 for a plain run).
    """
    import gymnasium as gym
    import torch

    from .builders import build_policy
    from .settings import EnvSettings, section
    from .envs import make_env

    os.environ.setdefault("MUJOCO_GL", "egl")
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    if "rlab" not in state:
        raise ConfigError("ckpt", ckpt, "a checkpoint written by rlab-train (this one has no run config)")
    conf = OmegaConf.create(state["rlab"]["config"])
    env_s = section(conf, "env", EnvSettings)
    env = make_env(env_s.id, env_s.max_episode_steps, render_mode="rgb_array" if video_dir else None,
                   **(env_s.kwargs or {}))
    if video_dir is not None:
        env = gym.wrappers.RecordVideo(env, str(video_dir), name_prefix="eval",
                                       episode_trigger=lambda i: i < video_episodes, disable_logger=True)
    num_seeds = int(conf.train.num_seeds)
    if not 0 <= agent < num_seeds:
        raise ConfigError("agent", agent, f"an integer in [0, {num_seeds - 1}] (this checkpoint has {num_seeds} agents)")
    policy = build_policy(conf.policy, env.observation_space, env.action_space, [None] * num_seeds)
    policy.load_state_dict({k[len("policy."):]: v for k, v in state["state_dict"].items()
                            if k.startswith("policy.")})
    policy.eval()
    returns, lengths = [], []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        total, steps, done = 0.0, 0, False
        while not done:
            obs_t = torch.as_tensor(obs, dtype=torch.float32).expand(num_seeds, 1, -1)  # [agents, 1, obs_dim]
            action = policy.act(obs_t, greedy=greedy)[agent, 0].numpy()
            obs, reward, terminated, truncated, _ = env.step(action if not policy.discrete else int(action))
            total += float(reward)
            steps += 1
            done = terminated or truncated
        returns.append(total)
        lengths.append(steps)
    env.close()
    result = {
        "ckpt": str(ckpt), "env_id": conf.env.id, "agent_seed": int(conf.seed) + agent, "episodes": episodes, "greedy": greedy, "seed": seed,
        "return_mean": statistics.fmean(returns), "return_std": statistics.pstdev(returns),
        "returns": returns, "lengths": lengths, "trained_env_steps": state["rlab"].get("env_steps"),
    }
    if video_dir is not None:
        result["videos"] = sorted(str(p) for p in Path(video_dir).glob("*.mp4"))
    return result


@hydra.main(config_path="pkg://reinforce_lab.conf", config_name="eval", version_base="1.3")
def _hydra_main(cfg: DictConfig) -> None:
    ckpt = Path(cfg.ckpt)
    try:
        if not ckpt.is_file():
            raise ConfigError("ckpt", ckpt, "an existing checkpoint file (RUN/checkpoints/last.ckpt)")
        if not isinstance(cfg.episodes, int) or cfg.episodes < 1:
            raise ConfigError("episodes", cfg.episodes, "an integer ≥ 1")
        run_dir = run_dir_of(ckpt)
        out_dir = Path(cfg.out) if cfg.out else run_dir
        result = evaluate(ckpt, cfg.episodes, bool(cfg.greedy), int(cfg.seed),
                          out_dir / "videos" if cfg.video else None, int(cfg.video_episodes), int(cfg.agent))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "eval.json").write_text(json.dumps(result, indent=2) + "\n")
    mode = "greedy" if cfg.greedy else "stochastic"
    print(f"[rlab-eval] {result['env_id']}: return {result['return_mean']:.2f} ± {result['return_std']:.2f} "
          f"over {cfg.episodes} {mode} episodes")
    print(f"[rlab-eval] wrote {out_dir / 'eval.json'}")
    for video in result.get("videos", []):
        print(f"[rlab-eval] video: {video}")


def main() -> None:
    """Console entry point ``rlab-eval``."""
    _hydra_main()


if __name__ == "__main__":
    main()
