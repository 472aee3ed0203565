"""Every option of every config group composes; bad input gets one clear line."""

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from reinforce_lab.config import ConfigError, check_group_choices, group_options, validate

from conftest import cli, make_cfg

GROUPS = ["env", "algo", "loss", "optimizer", "device", "logger", "policy", "trainer", "callbacks"]


def test_groups_have_the_contract_options():
    assert set(group_options("env")) >= {"cartpole", "acrobot", "lunar_lander", "short_corridor", "pendulum",
                                         "mountain_car_continuous", "inverted_pendulum"}
    assert set(group_options("loss")) >= {"log_prob"}
    assert set(group_options("optimizer")) == {"adam", "sgd"}
    assert set(group_options("device")) == {"cpu", "gpu", "mps", "auto"}
    assert set(group_options("logger")) == {"wandb", "csv", "none"}


# Options that are valid only with particular other options: each refuses the defaults in one line.
COMPANIONS = {("loss", "update_rule"): ["optimizer=sgd"],
              ("algo", "actor_critic_traces"): ["loss=update_rule", "loss.sequential=true", "optimizer=sgd"]}


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in group_options(g)])
def test_every_option_composes_and_resolves(group, option):
    cfg = make_cfg([f"{group}={option}"])
    container = OmegaConf.to_container(cfg, resolve=True)
    assert container[group] is not None
    if group == "device":
        return  # gpu/mps are validated against the hardware (test_gpu.py)
    companions = COMPANIONS.get((group, option))
    if companions:
        with pytest.raises(ConfigError) as err:  # with the defaults of the others: one line, naming what it needs
            validate(cfg)
        assert "\n" not in str(err.value)
        cfg = make_cfg([f"{group}={option}", *companions])
    validate(cfg)  # every option is valid with the defaults of the others, or with its companions


def test_defaults_are_the_contract_defaults():
    cfg = make_cfg()
    assert (cfg.env.id, cfg.algo.name, cfg.loss.name, cfg.logger._target_.split(".")[-1]) == (
        "CartPole-v1", "reinforce", "log_prob", "WandbLogger")
    assert cfg.algo.gamma_t is False and cfg.train.target_return == 475


@pytest.mark.parametrize("overrides,key", [
    (["env.id=NoSuch-v0"], "env.id"),
    (["algo.gamma=1.5"], "algo.gamma"),
    (["env.num_envs=0"], "env.num_envs"),
    (["optimizer.lr=-1"], "optimizer.lr"),
    (["algo.episodes_per_update=0"], "algo.episodes_per_update"),
    (["train.max_env_steps=0"], "train.max_env_steps"),
    (["algo.entropy_coef=-0.1"], "algo.entropy_coef"),
])
def test_validate_names_the_key(overrides, key):
    with pytest.raises(ConfigError) as err:
        validate(make_cfg(overrides))
    assert err.value.key == key and "allowed" in str(err.value)


def test_unknown_group_option_lists_the_allowed_ones():
    with pytest.raises(ConfigError, match="cartpole") as err:
        check_group_choices(["env=nope"])
    assert err.value.key == "env"
    check_group_choices(["env=cartpole,acrobot", "seed=3", "experiment=loss_forms", "hydra/launcher=joblib"])
    with pytest.raises(ConfigError):
        check_group_choices(["algo=reinforce,nope"])


BAD_INPUTS = [
    ("env=nope", "env"),
    ("env.id=NoSuch-v0", "env.id"),
    ("algo.gamma=1.5", "algo.gamma"),
    ("env.num_envs=0", "env.num_envs"),
    ("optimizer.lr=-1", "optimizer.lr"),
    ("device=gpu", "device"),
]


@pytest.mark.parametrize("override,key", BAD_INPUTS)
def test_cli_bad_input_is_one_line_exit_2_no_wandb_run(tmp_path: Path, override, key):
    import torch

    if override == "device=gpu" and torch.cuda.is_available():
        pytest.skip("a GPU is present")
    out = cli("rlab-train", override, cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith(f"error: {key}=") and "allowed:" in lines[0]
    assert "Traceback" not in out.stderr + out.stdout
    assert not list(tmp_path.rglob("wandb")), "a W&B run was created"
    assert not list(tmp_path.rglob("summary.json"))
    assert not list(tmp_path.rglob(".hydra")), "a half-made run folder was left behind"
