"""``env.vectorization=envpool``: envpool's next-step auto-reset presented exactly in the same-step form.

The reference is the raw envpool stream, stepped here one copy at a time with its own
NEXT_STEP semantics (the step after an end resets the copy, pays 0 and ignores the action):
every episode the collectors record must be that stream's, with the reset steps left out, the
true final observation, and termination told apart from the time limit. envpool's dynamics are
checked against gymnasium's own env from a common state.
"""

from __future__ import annotations

import csv
import importlib.util
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch

from reinforce_lab.config import ConfigError, asynchronous_agents, validate
from reinforce_lab.envs import make_env, make_vec_env, seeds_each_copy, supports_partial_reset
from reinforce_lab.horizon_rollout import HorizonCollector
from reinforce_lab.policies import make_policy
from reinforce_lab.rollout import EpisodeCollector

from conftest import cli, make_cfg, train_in_process

# envpool's own spaces (the raw pools below) warn that their float64 bounds are cast to float32.
pytestmark = pytest.mark.filterwarnings("ignore:.*precision lowered by casting to float32:UserWarning")
needs_envpool = pytest.mark.skipif(importlib.util.find_spec("envpool") is None,
                                   reason="envpool is not installed (pip install 'reinforce-lab[envpool]')")
CARTPOLE_LIMITS = (4.8 / 2, 12 * 2 * np.pi / 360)  # |x|, |θ| beyond which CartPole terminates


def cartpole_terminal(obs: np.ndarray) -> bool:
    return bool(abs(obs[0]) > CARTPOLE_LIMITS[0] or abs(obs[2]) > CARTPOLE_LIMITS[1])


TASKS = [("CartPole-v1", cartpole_terminal), ("HalfCheetah-v5", lambda obs: False)]  # HalfCheetah never terminates


def round_seed(base: int, r: int) -> int:
    """The seed the collectors give a copy with base seed ``base`` in round (or reset) ``r``."""
    return int(np.random.SeedSequence([base, r]).generate_state(1)[0])


class RawCopies:
    """The raw envpool stream: the same seeds and time limit, stepped copy by copy, NEXT_STEP auto-reset."""

    def __init__(self, env_id: str, seeds: list[int], limit: int) -> None:
        import envpool

        from reinforce_lab.envs.envpool_env import int32_seed

        self.pool = envpool.make_gymnasium(env_id, num_envs=len(seeds), seed=[int32_seed(s) for s in seeds],
                                           max_episode_steps=limit)
        self.obs = list(np.asarray(self.pool.reset()[0], dtype=np.float32))
        space = self.pool.single_action_space
        self.box = (space.low, space.high) if isinstance(space, gym.spaces.Box) else None
        self.idle = np.zeros(space.shape, np.float64 if self.box else np.int64)

    def step(self, i: int, action: np.ndarray) -> tuple[float, bool, bool]:
        """Step copy ``i`` alone; ``self.obs[i]`` becomes the observation envpool returns."""
        action = np.clip(action, *self.box) if self.box else action
        obs, reward, term, trunc, _ = self.pool.step(np.asarray(action)[None], env_id=np.array([i], np.int32))
        self.obs[i] = np.asarray(obs[0], dtype=np.float32)
        return float(reward[0]), bool(term[0]), bool(trunc[0])

    def reset_step(self, i: int) -> None:
        """The step after an end: envpool resets the copy; it pays 0 and belongs to no episode."""
        assert self.step(i, self.idle) == (0.0, False, False)


def replay(raw: RawCopies, i: int, obs, actions, rewards, length: int) -> tuple[float, bool, bool]:
    """Feed one recorded episode (or segment) to raw copy ``i``: its observations and rewards must be the stream's."""
    ret, term, trunc = 0.0, False, False
    for t in range(length):
        assert np.array_equal(obs[t].numpy(), raw.obs[i]), f"copy {i} step {t}: not the raw stream's state"
        assert not (term or trunc), f"copy {i}: the raw episode ended before step {t}"
        reward, term, trunc = raw.step(i, actions[t].numpy())
        assert float(rewards[t]) == reward
        ret += reward
    return ret, term, trunc


@needs_envpool
@pytest.mark.parametrize("env_id,terminal", TASKS)
def test_episode_collector_records_the_raw_stream_without_its_reset_steps(env_id, terminal):
    n, quota, limit, seeds = 3, 2, 12, [5, 6, 7]
    envs = make_vec_env(env_id, n, max_episode_steps=limit, vectorization="envpool")
    torch.manual_seed(0)
    policy = make_policy(envs.single_observation_space, envs.single_action_space)
    collector = EpisodeCollector(envs, n * quota, seeds=seeds)
    kinds = set()
    for r in range(2):  # round r: every copy reseeded from (its seed, r), like sync envs
        batch, raw = collector.collect(policy), RawCopies(env_id, [round_seed(s, r) for s in seeds], limit)
        slots = {batch.obs[0, e, 0].numpy().tobytes(): e for e in range(batch.num_episodes)}
        for i in range(n):
            for _ in range(quota):  # the copy's episodes, in order: each starts where the raw stream resets
                e = slots.pop(raw.obs[i].tobytes())
                length = int(batch.lengths[0, e])
                _, term, trunc = replay(raw, i, batch.obs[0, e], batch.actions[0, e], batch.rewards[0, e], length)
                assert term or trunc, "the episode must end where the raw one ends"
                assert np.array_equal(batch.final_obs[0, e].numpy(), raw.obs[i])  # the true final state
                # gymnasium's TimeLimit: terminal at the limit is terminated too; envpool says truncated only
                assert bool(batch.terminated[0, e]) == (term or (trunc and terminal(raw.obs[i])))
                kinds.add("terminated" if batch.terminated[0, e] else "truncated")
                assert length <= limit
                raw.reset_step(i)  # not a transition: the next episode starts with its observation
        assert not slots  # every recorded episode is one of the raw stream's
        assert batch.num_steps == int(batch.mask.sum())
    assert kinds == ({"terminated", "truncated"} if env_id == "CartPole-v1" else {"truncated"})
    envs.close()


@needs_envpool
@pytest.mark.parametrize("env_id,terminal", TASKS)
def test_horizon_collector_segments_are_the_raw_stream(env_id, terminal):
    n, per_copy, limit, seeds = 2, 9, 7, [3, 4]
    envs = make_vec_env(env_id, n, max_episode_steps=limit, vectorization="envpool")
    torch.manual_seed(1)
    policy = make_policy(envs.single_observation_space, envs.single_action_space)
    collector = HorizonCollector(envs, n * per_copy, seeds=seeds)
    raw = RawCopies(env_id, [round_seed(s, 0) for s in seeds], limit)  # reset once, with (seed, resets=0)
    running = [(0.0, 0)] * n
    for _ in range(3):  # the copies continue across updates: segments cut by the horizon are resumed
        batch, finished, e = collector.collect(policy), [], 0
        for i in range(n):  # agent 0's slots: copy 0's segments in time order, then copy 1's
            done_steps = 0
            while done_steps < per_copy:
                length = int(batch.lengths[0, e])
                ret, term, trunc = replay(raw, i, batch.obs[0, e], batch.actions[0, e], batch.rewards[0, e], length)
                done_steps += length
                running[i] = (running[i][0] + ret, running[i][1] + length)
                assert np.array_equal(batch.final_obs[0, e].numpy(), raw.obs[i])  # true final, or where it resumes
                assert bool(batch.terminated[0, e]) == (term or (trunc and terminal(raw.obs[i])))
                if term or trunc:
                    finished.append((done_steps, i, *running[i]))
                    running[i] = (0.0, 0)
                    raw.reset_step(i)
                e += 1
            assert done_steps == per_copy  # every step simulated is one transition: none lost to a reset
        assert e == int((batch.lengths[0] > 0).sum())
        finished.sort()
        assert collector.finished.returns[0] == [f[2] for f in finished]
        assert collector.finished.lengths[0] == [f[3] for f in finished]
        assert finished and all(f[3] <= limit for f in finished)
    envs.close()


@needs_envpool
def test_cartpole_steps_are_gymnasiums_from_the_same_state():
    envs = make_vec_env("CartPole-v1", 1, max_episode_steps=30, vectorization="envpool")
    obs, _ = envs.reset(seed=11)
    ref = gym.make("CartPole-v1", max_episode_steps=30)
    ref.reset(seed=0)
    ref.unwrapped.state = obs[0].astype(np.float64)  # envpool's first state (float32, as it reports it)
    rng = np.random.default_rng(0)
    for t in range(30):
        action = int(rng.integers(2)) if t % 3 else 0
        o, r, term, trunc, info = envs.step(np.array([action]))
        go, gr, gterm, gtrunc, _ = ref.step(action)
        assert (float(r[0]), bool(term[0]), bool(trunc[0])) == (gr, gterm, gtrunc)
        seen = info["final_obs"][0] if term[0] or trunc[0] else o[0]
        np.testing.assert_allclose(seen, go, atol=1e-5)
        if gterm or gtrunc:
            break
    assert gterm or gtrunc


@needs_envpool
def test_half_cheetah_steps_are_gymnasiums_from_the_same_state():
    envs = make_vec_env("HalfCheetah-v5", 1, max_episode_steps=20, vectorization="envpool")
    obs, _ = envs.reset(seed=3)
    ref = make_env("HalfCheetah-v5", max_episode_steps=20)
    ref.reset(seed=0)
    qpos = np.concatenate([[0.0], obs[0][:8]])  # x is not observed, and the dynamics do not depend on it
    ref.unwrapped.set_state(qpos.astype(np.float64), obs[0][8:].astype(np.float64))
    rng = np.random.default_rng(0)
    for t in range(20):
        action = rng.uniform(-1.5, 1.5, size=6).astype(np.float32)  # beyond the bounds: both clip
        o, r, term, trunc, info = envs.step(action[None])
        go, gr, gterm, gtrunc, _ = ref.step(action)
        assert (bool(term[0]), bool(trunc[0])) == (gterm, gtrunc) == (False, t == 19)
        assert float(r[0]) == pytest.approx(gr, rel=1e-5, abs=1e-5)  # envpool's rewards are float32
        np.testing.assert_allclose(info["final_obs"][0] if gtrunc else o[0], go, rtol=1e-4, atol=1e-4)


@needs_envpool
def test_terminal_at_the_time_limit_is_terminated_as_with_gymnasium():
    probe = make_vec_env("CartPole-v1", 1, vectorization="envpool")
    probe.reset(seed=2)
    steps = 1
    while not probe.step(np.array([0]))[2][0]:  # always push left: the pole falls after a few steps
        steps += 1
    envs = make_vec_env("CartPole-v1", 1, max_episode_steps=steps, vectorization="envpool")
    envs.reset(seed=2)
    for _ in range(steps):
        _, _, term, trunc, info = envs.step(np.array([0]))
    assert bool(term[0]) and bool(trunc[0]) and cartpole_terminal(info["final_obs"][0])


@needs_envpool
def test_declared_capabilities_spaces_and_per_copy_seeds():
    envs = make_vec_env("CartPole-v1", 3, vectorization="envpool")
    assert envs.metadata["autoreset_mode"] == gym.vector.AutoresetMode.SAME_STEP
    assert seeds_each_copy(envs) and not supports_partial_reset(envs)
    obs, _ = envs.reset(seed=[10, 2**32 + 20, 30])
    assert obs.dtype == np.float32 and obs.shape == (3, 4)
    alone = make_vec_env("CartPole-v1", 1, vectorization="envpool")
    assert np.array_equal(alone.reset(seed=[20])[0][0], obs[1])  # copy i is a separate run with its seed (mod 2³²)
    with pytest.raises(ValueError, match="reset_mask"):
        envs.reset(options={"reset_mask": np.array([True, False, False])})
    cheetah, ref = make_vec_env("HalfCheetah-v5", 2, vectorization="envpool"), make_env("HalfCheetah-v5")
    assert cheetah.single_action_space == ref.action_space  # Box(-1, 1, (6,), float32): the bounds tanh scales to
    assert cheetah.single_observation_space.shape == ref.observation_space.shape
    assert cheetah.single_observation_space.dtype == np.float32
    for e in (envs, alone, cheetah, ref):
        e.close()


@pytest.mark.parametrize("overrides,needle", [
    (["env=lunar_lander"], "LunarLander-v3 (envpool runs CartPole-v1"),
    (["env=half_cheetah", "env.id=Ant-v5"], "Ant-v5 (envpool's first step differs"),
])
def test_unsupported_tasks_are_refused_in_one_line(overrides, needle, monkeypatch):
    monkeypatch.setattr("reinforce_lab.extras._importable", lambda module: True)  # as if installed
    with pytest.raises(ConfigError) as err:
        validate(make_cfg([*overrides, "env.vectorization=envpool"]))
    message = str(err.value)
    assert message.startswith("env.vectorization=envpool is not allowed; allowed: auto, sync, async for ")
    assert needle in message and "\n" not in message


def test_missing_envpool_is_one_line_with_the_install_command(monkeypatch):
    monkeypatch.setattr("reinforce_lab.extras._importable", lambda module: module != "envpool")
    with pytest.raises(ConfigError) as err:
        validate(make_cfg(["env.vectorization=envpool"]))
    assert str(err.value).startswith("env.vectorization=envpool is not allowed; allowed: auto, sync, async, native, "
                                     "or envpool after installing the envpool extra")
    assert str(err.value).endswith("pip install 'reinforce-lab[envpool]'") and "\n" not in str(err.value)
    monkeypatch.setitem(sys.modules, "envpool", None)  # make_vec_env, called directly
    with pytest.raises(ValueError, match=r"^env.vectorization=envpool needs the envpool extra .*\[envpool\]'$"):
        make_vec_env("CartPole-v1", 2, vectorization="envpool")


@needs_envpool
def test_unknown_task_options_and_asynchronous_agents_are_refused():
    with pytest.raises(ConfigError, match=r"^env.kwargs.frobnicate=1 is not allowed; allowed: .*reset_noise_scale"):
        validate(make_cfg(["env=half_cheetah", "env.vectorization=envpool", "+env.kwargs.frobnicate=1"]))
    validate(make_cfg(["env=half_cheetah", "env.vectorization=envpool", "+env.kwargs.reset_noise_scale=0.2"]))
    cfg = make_cfg(["env.vectorization=envpool", "train.async_agents=true", "optimizer=sgd", "train.num_seeds=2"])
    envs = make_vec_env("CartPole-v1", 2, vectorization="envpool")
    with pytest.raises(ConfigError, match="^train.async_agents=True is not allowed"):
        asynchronous_agents(cfg, envs, 2)
    envs.close()


@needs_envpool
def test_rlab_train_with_envpool_end_to_end(tmp_path):
    out = cli("rlab-train", "env.vectorization=envpool", "train.max_env_steps=600", "env.num_envs=2",
              "algo.episodes_per_update=4", "logger=none", "train.progress=false", "hydra.run.dir=run", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    with open(tmp_path / "run" / "episodes.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows and all(float(r["return"]) == int(r["length"]) for r in rows)  # CartPole: +1 per real step


@needs_envpool
def test_horizon_run_on_half_cheetah_with_envpool(tmp_path):
    run_dir, summary = train_in_process(tmp_path, ["env=half_cheetah", "env.vectorization=envpool", "env.num_envs=4",
                                                    "env.max_episode_steps=20", "algo.rollout=horizon",
                                                    "algo.horizon=64", "train.max_env_steps=128", "logger=none"])
    assert summary["status"] == "finished" and summary["env_steps"] == 128
    with open(run_dir / "episodes.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4 * (128 // 4 // 20) and all(int(r["length"]) == 20 for r in rows)  # every copy truncated
