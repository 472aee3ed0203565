"""Does it actually learn? Slow tests (minutes each): `make test-slow`."""

import pytest

from conftest import train_in_process

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_default_reinforce_solves_cartpole(tmp_path, seed):
    _, summary = train_in_process(tmp_path, [f"seed={seed}", "logger=none"])
    assert summary["final_return"] >= 475 and summary["solved_at_episode"] is not None, summary


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_baseline_solves_cartpole(tmp_path, seed):
    _, summary = train_in_process(tmp_path, [f"seed={seed}", "algo=reinforce_baseline", "logger=none"])
    assert summary["final_return"] >= 475 and summary["solved_at_episode"] is not None, summary


def test_baseline_acrobot_reaches_minus_100(tmp_path):
    """The mean of 100 episodes reaches −100 (gymnasium's threshold) for 2 of seeds 0–2.

    Seed 0 never reaches the goal at all in 500k steps (every episode −500, so every return
    is the same and there is nothing to learn from): sparse-reward exploration, reported.
    """
    reached = 0
    for seed in (0, 1, 2):
        _, summary = train_in_process(tmp_path / str(seed), [f"seed={seed}", "env=acrobot", "algo=reinforce_baseline",
                                                             "logger=none"])
        reached += summary["solved_at_episode"] is not None
        if reached == 2:
            break
    assert reached >= 2


def test_baseline_inverted_pendulum_two_of_three_seeds(tmp_path):
    solved = 0
    for seed in (0, 1, 2):
        _, summary = train_in_process(tmp_path / str(seed), [
            f"seed={seed}", "env=inverted_pendulum", "algo=reinforce_baseline", "train.max_env_steps=300000",
            "train.window=20", "train.target_return=950", "logger=none"])
        solved += summary["solved_at_episode"] is not None and summary["env_steps"] <= 300000 + 16 * 1000
        if solved == 2:
            break
    assert solved >= 2


def test_actor_critic_improves_cartpole_to_200(tmp_path):
    _, summary = train_in_process(tmp_path, ["algo=actor_critic", "train.target_return=200", "logger=none"])
    assert summary["final_return"] >= 200, summary
