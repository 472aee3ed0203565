"""The typed settings: every key of conf/ the code reads is there, typed, with its default from the YAML."""

import pytest

from reinforce_lab.config import ConfigError, group_options
from reinforce_lab.settings import AlgoSettings, run_settings

from conftest import make_cfg


@pytest.mark.parametrize("group", ["env", "algo", "loss"])
def test_every_option_of_every_group_gives_complete_settings(group):
    for option in group_options(group):
        s = run_settings(make_cfg([f"{group}={option}"]))
        assert getattr(s, group).name == option


@pytest.mark.parametrize("experiment", group_options("experiment"))
def test_every_experiment_preset_gives_complete_settings(experiment):
    s = run_settings(make_cfg([f"experiment={experiment}"]))
    assert s.seeds == [s.seed + a for a in range(s.train.num_seeds)]


def test_defaults_come_from_the_yaml():
    s = run_settings(make_cfg())
    assert isinstance(s.algo, AlgoSettings) and s.algo.entropy_coef == 0.0 and s.algo.value_hidden_sizes is None
    assert s.loss.sequential is False and s.train.window == 100 and s.env.kwargs == {}
    assert run_settings(make_cfg(["algo=reinforce_entropy"])).algo.entropy_coef == 0.01


def test_a_missing_key_is_one_line_and_an_added_one_is_left_out():
    with pytest.raises(ConfigError, match=r"algo.entropy_coef=\(missing\)"):
        run_settings(make_cfg(["~algo.entropy_coef"]))
    assert not hasattr(run_settings(make_cfg(["+algo.foo=1"])).algo, "foo")


def test_sequential_only_with_the_update_rule():
    from reinforce_lab.config import validate

    with pytest.raises(ConfigError) as err:
        validate(make_cfg(["loss.sequential=true"]))
    assert err.value.key == "loss.sequential"
