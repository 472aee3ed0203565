"""train.num_seeds: N agents in one job, each exactly what a separate run with its seed gives."""

import csv
import json

import pytest

from conftest import train_in_process

# sync: one RNG per env copy (a native vector env shares one RNG, so agents are only
# independent in distribution there)
TINY = ["train.max_env_steps=700", "env.num_envs=2", "algo.episodes_per_update=4", "logger=none",
        "env.vectorization=sync"]


def rows(run_dir, seed=None):
    with open(run_dir / "episodes.csv") as fh:
        out = list(csv.DictReader(fh))
    if seed is None:
        return [(r["episode"], r["env_step"], r["return"], r["length"]) for r in out]
    return [(r["episode"], r["env_step"], r["return"], r["length"]) for r in out if r["seed"] == str(seed)]


def test_num_seeds_1_equals_a_plain_run(tmp_path):
    a, _ = train_in_process(tmp_path / "a", TINY + ["seed=4"])
    b, _ = train_in_process(tmp_path / "b", TINY + ["seed=4", "train.num_seeds=1"])
    assert rows(a) == rows(b) and len(rows(a)) > 10


@pytest.mark.parametrize("overrides", [
    [],
    ["env=pendulum", "algo=reinforce_baseline", "train.max_env_steps=1600"],
    ["algo=actor_critic", "loss=update_rule", "optimizer=sgd", "loss.sequential=true"],
    # agents that do not wait for each other (train.async_agents), per-episode and per-step updates
    ["optimizer=sgd", "optimizer.lr=0.05", "train.async_agents=true"],
    ["env=short_corridor", "policy=preferences", "optimizer=sgd", "optimizer.lr=0.001", "algo.gamma=1",
     "algo.normalize_returns=false", "algo.episodes_per_update=1", "env.num_envs=1", "train.max_episodes=60"],
    ["env=short_corridor", "policy=preferences", "optimizer=sgd", "loss=update_rule", "loss.sequential=true",
     "train.async_agents=true", "algo.gamma=1", "algo.normalize_returns=false", "env.num_envs=1",
     "algo.episodes_per_update=1", "train.max_episodes=60"],
])
def test_agents_in_a_batch_do_not_interact(tmp_path, overrides):
    """Agent k of a 3-agent job writes exactly the rows of a plain run with seed k."""
    batch_dir, summary = train_in_process(tmp_path / "batch", TINY + overrides + ["seed=5", "train.num_seeds=3"])
    assert summary["num_seeds"] == 3 and [a["seed"] for a in summary["agents"]] == [5, 6, 7]
    with open(batch_dir / "episodes.csv") as fh:
        assert next(csv.reader(fh)) == ["episode", "env_step", "return", "length", "seed"]
    for seed in (5, 7):
        single_dir, single = train_in_process(tmp_path / f"s{seed}", TINY + overrides + [f"seed={seed}"])
        assert rows(batch_dir, seed) == rows(single_dir), f"agent {seed} differs from its own run"
        agent = next(a for a in summary["agents"] if a["seed"] == seed)
        assert agent["env_steps"] == single["env_steps"] and agent["episodes"] == single["episodes"]
    # different seeds really are different agents
    assert rows(batch_dir, 5) != rows(batch_dir, 6)


def test_each_agent_stops_at_its_own_budget(tmp_path):
    run_dir, summary = train_in_process(tmp_path, ["train.max_episodes=12", "env.num_envs=2",
                                                   "algo.episodes_per_update=4", "train.num_seeds=4",
                                                   "logger=none", "train.max_env_steps=100000000"])
    for seed in range(4):
        assert [int(r[0]) for r in rows(run_dir, seed)] == list(range(1, 13))
    assert json.loads((run_dir / "summary.json").read_text())["episodes"] == 48


def test_wandb_gets_per_seed_curves_and_the_aggregate(tmp_path):
    from test_train_e2e import wandb_records

    _, summary = train_in_process(tmp_path, TINY + ["train.num_seeds=2", "logger=wandb"])
    items = [r["history"]["item"] for r in wandb_records(summary["wandb_run_dir"]) if r.get("type") == "history"]
    keys = set().union(*items)
    assert {"train/episode_return", "seeds/0/episode_return", "seeds/1/episode_return", "env_step"} <= keys


def test_async_agents_is_resolved_from_optimizer_and_envs():
    from omegaconf import OmegaConf

    from reinforce_lab.config import ConfigError, asynchronous_agents
    from reinforce_lab.envs import make_vec_env

    sync = make_vec_env("CartPole-v1", 4, vectorization="sync")
    native = make_vec_env("CartPole-v1", 4, vectorization="native")

    def cfg(opt="torch.optim.SGD", mode="auto", sequential=False):
        return OmegaConf.create({"optimizer": {"_target_": opt, "lr": 0.1}, "loss": {"sequential": sequential},
                                 "train": {"async_agents": mode}})

    assert asynchronous_agents(cfg(), sync, 2)
    assert not asynchronous_agents(cfg(), sync, 1)                      # one agent waits for nobody
    assert not asynchronous_agents(cfg("torch.optim.Adam"), sync, 2)    # Adam moves idle agents
    assert not asynchronous_agents(cfg(sequential=True), sync, 2)       # lockstep packs per-step updates better
    assert not asynchronous_agents(cfg(), native, 2)                    # copies cannot reset one by one
    with pytest.raises(ConfigError, match="train.async_agents"):
        asynchronous_agents(cfg(mode=True), native, 2)
    sync.close()
    native.close()
