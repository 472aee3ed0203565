"""What the peer scripts share: the 'solved' criterion of part (a) and the JSON line they print.

Standard library only: it runs in ``benchmarks/.peers-venv``, beside Tianshou or SB3, and must
cost nothing to import. The criterion is ``plain_reinforce.py``'s and ``rlab-train``'s: CartPole-v1
is solved at the first episode after which the mean return of the last 100 training episodes
is ≥ 475, checked episode by episode; each peer stops at the end of that update (or rollout).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import deque

WINDOW, TARGET, MAX_ENV_STEPS = 100, 475.0, 500_000


class SolveTracker:
    """Counts training episodes and notes the first one at which the moving mean reaches the target."""

    def __init__(self, window: int = WINDOW, target: float = TARGET) -> None:
        self.window, self.target = window, target
        self.recent: deque[float] = deque(maxlen=window)
        self.episodes = 0
        self.solved_at: int | None = None

    def add(self, episode_return: float) -> None:
        self.episodes += 1
        self.recent.append(float(episode_return))
        if self.solved_at is None and len(self.recent) == self.window and self.mean() >= self.target:
            self.solved_at = self.episodes

    def mean(self) -> float | None:
        return sum(self.recent) / len(self.recent) if self.recent else None


def process_age_s(fallback_start: float) -> float:
    """Seconds since this process started (Linux /proc), as ``plain_reinforce.py`` measures it."""
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return time.perf_counter() - fallback_start


def parse_args(description: str) -> argparse.Namespace:
    """The flags every peer script takes (those of ``plain_reinforce.py``)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-env-steps", type=int, default=MAX_ENV_STEPS)
    parser.add_argument("--json", help="also write the result to this file")
    return parser.parse_args()


def emit(result: dict, tracker: SolveTracker, env_steps: int, wall_s: float, t_start: float, t_imported: float,
         json_path: str | None) -> None:
    """Print (and write) the one JSON line, with ``plain_reinforce.py``'s keys."""
    result.update(wall_s=round(wall_s, 3), import_s=round(t_imported - t_start, 3), env_steps=int(env_steps),
                  episodes=tracker.episodes, env_steps_per_s=env_steps / wall_s if wall_s > 0 else None,
                  solved_at_episode=tracker.solved_at, final_return=tracker.mean(),
                  process_wall_s=round(process_age_s(t_start), 3))
    line = json.dumps(result)
    print(line, flush=True)
    if json_path:
        with open(json_path, "w") as f:
            f.write(line + "\n")
