"""The agent ledger: counters, windows, targets and stop decisions, saved and restored as one unit."""

import json

import numpy as np
import pytest

from reinforce_lab.ledger import MAX_ENV_STEPS, MAX_EPISODES, TARGET, AgentLedger, Budget
from reinforce_lab.run_summary import AgentSummary, RunSummary, read_summary


class FakeRollout:
    def __init__(self, n):
        self.active = np.ones(n, dtype=bool)
        self.loaded = None

    def state_dict(self):
        return {"rounds": 7, "active": self.active.tolist()}

    def load_state_dict(self, state):
        self.loaded = state
        self.active[:] = state["active"]


def test_record_counts_numbers_and_env_steps_per_agent():
    ledger = AgentLedger([5, 6], Budget(max_env_steps=None, max_episodes=10, target_return=None, window=3))
    rows = ledger.record([[1.0, 2.0], [3.0]], [[10, 20], [7]])
    assert [r.seed for r in rows] == [5, 6]
    assert rows[0].numbers == [1, 2] and rows[0].env_steps == [10, 30] and rows[1].env_steps == [7]
    rows = ledger.record([[4.0], []], [[5], []])
    assert rows[0].numbers == [3] and rows[0].env_steps == [35] and rows[1].numbers == []
    assert ledger.episodes == [3, 1] and ledger.env_steps == [35, 7]
    assert ledger.total_env_steps == 42 and ledger.env_step == 21
    assert ledger.agent_mean(0) == pytest.approx(7 / 3) and ledger.mean_return == pytest.approx((7 / 3 + 3) / 2)


def test_window_and_target_are_those_of_gymnasiums_solved_criterion():
    ledger = AgentLedger([0], Budget(None, 100, target_return=2.0, window=3))
    ledger.record([[1.0, 2.0, 2.5, 1.5, 3.0]], [[1] * 5])
    # windows: [1,2,2.5]=1.83, [2,2.5,1.5]=2.0 → solved at episode 4 (first full window ≥ target)
    assert ledger.solved_at == [4]
    assert list(ledger.recent[0]) == [2.5, 1.5, 3.0]
    assert ledger.decide() == [0] and ledger.reasons == [TARGET] and ledger.should_stop


def test_each_agent_stops_at_its_first_limit_and_its_copies_stop_collecting():
    rollout = FakeRollout(3)
    ledger = AgentLedger([0, 1, 2], Budget(max_env_steps=10, max_episodes=2, target_return=None, window=100), rollout)
    ledger.record([[1.0], [1.0, 1.0], [1.0]], [[12], [1, 1], [3]])
    assert ledger.decide() == [0, 1]
    assert ledger.reasons == [MAX_ENV_STEPS, MAX_EPISODES, None] and not ledger.should_stop
    assert rollout.active.tolist() == [False, False, True]
    assert ledger.decide() == []  # decided once
    assert ledger.stop_reason == f"{MAX_ENV_STEPS}, {MAX_EPISODES}"


def test_one_agent_is_stopped_by_the_trainer_not_by_its_active_flag():
    rollout = FakeRollout(1)
    ledger = AgentLedger([0], Budget(max_env_steps=1, max_episodes=None, target_return=None), rollout)
    ledger.record([[1.0]], [[3]])
    assert ledger.decide() == [0] and ledger.should_stop and rollout.active.tolist() == [True]


def test_a_clean_stop_request_ends_the_run():
    flag = {"stop": False}
    ledger = AgentLedger([0], Budget(None, 5, None), interrupted=lambda: flag["stop"])
    assert not ledger.should_stop
    flag["stop"] = True
    assert ledger.should_stop and ledger.reasons == [None]


def test_state_round_trips_as_one_unit_through_json_and_the_rollout():
    budget = Budget(max_env_steps=None, max_episodes=50, target_return=1.5, window=2)
    a = AgentLedger([3, 4], budget, FakeRollout(2))
    a.record([[1.0, 2.0, 3.0], [0.5]], [[4, 5, 6], [9]])
    a.decide()
    state = json.loads(json.dumps(a.state_dict()))  # plain data: fits any checkpoint
    rollout = FakeRollout(2)
    b = AgentLedger([3, 4], budget, rollout)
    b.load_state_dict(state)
    assert rollout.loaded == {"rounds": 7, "active": [False, True]}  # agent 0 reached the target
    for key in ("env_steps", "episodes", "solved_at"):
        assert getattr(b, key) == getattr(a, key)
    assert b.reasons == [None, None] and b.decide() == [0] and b.reasons == a.reasons  # derived again
    assert [list(r) for r in b.recent] == [[2.0, 3.0], [0.5]]
    assert b.recent[0].maxlen == 2
    rows_a, rows_b = a.record([[9.0], []], [[1], []]), b.record([[9.0], []], [[1], []])
    assert rows_a == rows_b and a.mean_return == b.mean_return


def test_a_resume_with_a_larger_budget_continues():
    a = AgentLedger([0], Budget(max_env_steps=10, max_episodes=None, target_return=None))
    a.record([[1.0]], [[12]])
    assert a.decide() == [0] and a.should_stop
    b = AgentLedger([0], Budget(max_env_steps=20, max_episodes=None, target_return=None))
    b.load_state_dict(a.state_dict())
    assert b.decide() == [] and not b.should_stop
    b.record([[1.0]], [[9]])
    assert b.decide() == [0] and b.reasons == [MAX_ENV_STEPS]


def test_resuming_with_other_seeds_is_refused():
    a = AgentLedger([0, 1], Budget(None, 5, None))
    with pytest.raises(ValueError, match="seeds"):
        AgentLedger([2, 3], Budget(None, 5, None)).load_state_dict(a.state_dict())


def test_run_summary_is_the_one_schema_of_summary_json(tmp_path):
    s = RunSummary(status="finished", final_return=float("nan"), final_window=2, episodes=3, env_steps=30,
                   wall_s=1.5, env_steps_per_s=20.0, solved_at_episode=None, seed=0, run_dir=str(tmp_path),
                   num_seeds=2, agents=[AgentSummary(0, 1.0, 2, 20, None, "max_episodes reached"),
                                        AgentSummary(1, None, 1, 10, None, None)])
    s.write(tmp_path)
    data = json.loads((tmp_path / "summary.json").read_text())
    assert data["final_return"] is None and data["agents"][0]["stop_reason"] == "max_episodes reached"
    assert "error" not in data
    back = read_summary(tmp_path)
    assert back.agents == s.agents and back.status == "finished"
    single = RunSummary.failed(tmp_path, "boom", seed=4).to_dict()
    assert single["error"] == "boom" and "agents" not in single and "num_seeds" not in single
    for bad in ("[]", '{"status": "finished"', '{"status": "finished"}'):
        (tmp_path / "summary.json").write_text(bad)
        with pytest.raises(ValueError):
            read_summary(tmp_path)


def test_closing_message_names_status_files_and_wandb(tmp_path):
    s = RunSummary.failed(tmp_path, "x", 0)
    s.status, s.stop_reason, s.wandb_run_dir, s.target_return = "finished", "target return reached", "/w/offline-run-1", 475
    text = s.closing_message("offline")
    assert "status: finished (target return reached)" in text and "wandb sync /w/offline-run-1" in text
    assert "target 475: not reached" in text


@pytest.mark.parametrize(("status", "reason", "shown"), [
    ("interrupted", "SIGINT received", "status: interrupted (SIGINT received)"),
    ("interrupted", None, "status: interrupted\n"),          # never "budget spent" for a stopped run
    ("finished", None, "status: finished (budget spent)"),
    ("failed", None, "status: failed (x)"),                  # the error
])
def test_closing_message_status_line(tmp_path, status, reason, shown):
    s = RunSummary.failed(tmp_path, "x", 0)
    s.status, s.stop_reason = status, reason
    assert shown in s.closing_message(None) + "\n"
