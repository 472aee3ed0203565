"""Checks run by ``rlab-eval`` before Hydra starts (and again inside the job): nothing is written when they fail.

The command line is composed against ``conf/eval.yaml`` and every value is checked, the
checkpoint included (readable, written by rlab-train, with the agent asked for), before any
env is made. Every problem is one :class:`~reinforce_lab.errors.ConfigError` line; the entry
point prints it and exits 2. ``env`` is accepted only to *confirm* the checkpoint's env: the
policy was trained on that env alone, so evaluating it elsewhere is refused, not ignored.
"""

from __future__ import annotations

import importlib.util
import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from .errors import ConfigError

# = config.CONFIG_PACKAGE, not imported: config loads torch and gymnasium (~3 s), and most bad
# input is refused before the checkpoint needs torch.
CONFIG_PACKAGE = "reinforce_lab.conf"
CKPT_HELP = "a checkpoint written by rlab-train (ckpt=RUN/checkpoints/last.ckpt, or its run folder: ckpt=RUN)"
_ENV_GROUP = re.compile(r"^\+{0,2}env=(.*)$")  # env=NAME, +env=NAME, ++env=NAME: an option of conf/env/
_ADDED_KEY = re.compile(r"^\+{1,2}([A-Za-z_][\w.]*)=(.*)$")


@dataclass(frozen=True)
class EvalRequest:
    """A checked ``rlab-eval`` command: the loaded checkpoint and the evaluation's settings."""

    ckpt: Path
    state: dict[str, Any]
    episodes: int
    greedy: bool
    seed: int
    video: bool
    video_episodes: int
    agent: int
    out_dir: Path


def eval_keys() -> list[str]:
    """The keys ``rlab-eval`` takes, dotted, read from ``conf/eval.yaml`` (the one place they are listed)."""
    text = (resources.files(CONFIG_PACKAGE) / "eval.yaml").read_text()
    node = OmegaConf.create(text)
    keys = OmegaConf.to_container(node, resolve=False)
    return [k for k in _dotted(keys) if not k.startswith(("defaults", "hydra"))]


def _dotted(node: dict[str, Any], prefix: str = "") -> list[str]:
    """The leaf keys of a nested dict, dotted (``env.id``)."""
    out: list[str] = []
    for key, value in node.items():
        out += _dotted(value, f"{prefix}{key}.") if isinstance(value, dict) and value else [f"{prefix}{key}"]
    return out


def eval_argv(argv: list[str]) -> list[str]:
    """Rewrite the command line into overrides of ``conf/eval.yaml``; raises :class:`ConfigError`.

    ``env=NAME`` (with or without ``+``) names an option of the ``env`` group: it becomes
    ``env.id=<that option's id>``, which is then checked against the checkpoint's env.
    ``+key=value`` of a key eval.yaml already has becomes ``key=value`` (Hydra would refuse
    to add a key that exists). Unknown keys are refused here, with the value as given.
    """
    keys, out = eval_keys(), []
    for arg in argv:
        group, added = _ENV_GROUP.match(arg), _ADDED_KEY.match(arg)
        if group and group.group(1) not in ("null", ""):
            arg = f"env.id={_env_option_id(group.group(1))}"
        elif group:
            arg = "env.id=null"
        elif added and added.group(1) in keys:
            arg = f"{added.group(1)}={added.group(2)}"
        _check_known(arg, keys)
        out.append(arg)
    return out


def _env_option_id(name: str) -> str:
    """The gymnasium id of option ``name`` of the ``env`` group (conf/env/NAME.yaml)."""
    import yaml

    env_dir = resources.files(CONFIG_PACKAGE) / "env"
    options = sorted(p.name[:-5] for p in env_dir.iterdir() if p.name.endswith(".yaml"))
    if name not in options:  # config.group_options lists the same, but importing config loads torch
        raise ConfigError("env", name, ", ".join(options))
    return str(yaml.safe_load((env_dir / f"{name}.yaml").read_text())["id"])


def _check_known(arg: str, keys: list[str]) -> None:
    """Refuse an override of a key eval.yaml does not have (Hydra's own message is several lines)."""
    if arg.startswith("-") or arg.startswith(("hydra.", "hydra/", "+hydra", "++hydra", "~hydra")):
        return
    if "=" not in arg and not arg.startswith("~"):
        return  # not an override at all: the parser names it
    key, _, value = arg.lstrip("+~").partition("=")
    if key not in keys and key != "env":
        raise ConfigError(key, value, f"one of rlab-eval's keys: {', '.join(keys)} "
                          "(the rest of the run's config comes from the checkpoint)")


def precheck(argv: list[str]) -> None:
    """Compose ``conf/eval.yaml`` with ``argv`` and check it, before Hydra runs the job.

    Skipped when Hydra's own flags are given (``--help``, ``--cfg``, ``-m``): the job checks
    its config again in any case.
    """
    from hydra import compose, initialize_config_module
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    if any(a.startswith("-") for a in argv):
        return
    overrides = [a for a in argv if not a.startswith(("hydra.", "hydra/", "+hydra", "++hydra", "~hydra"))]
    _parse_overrides(overrides)
    try:
        with initialize_config_module(CONFIG_PACKAGE, version_base="1.3"):
            cfg = compose("eval", overrides=overrides)
    except (HydraException, OmegaConfBaseException, ValueError) as exc:
        from .preflight import explain_composition_error  # here: preflight loads torch via config

        raise ConfigError(*explain_composition_error(exc)) from None
    check(cfg)


def _parse_overrides(overrides: list[str]) -> None:
    """Malformed overrides and sweeps without ``-m``: one line naming the argument.

    Hydra would say "Error parsing override" or "Ambiguous value" on several lines.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    for arg in overrides:
        key, _, value = arg.partition("=")
        try:
            (ov,) = parser.parse_overrides([arg])
        except Exception as exc:  # noqa: BLE001 - Hydra's parse errors have no common base class
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ConfigError(key, value, f"KEY=VALUE in Hydra's override syntax ({first})") from None
        if ov.is_sweep_override():
            raise ConfigError(ov.key_or_group, value, "one value (or add -m to evaluate each value in turn)")


def check(cfg: DictConfig) -> EvalRequest:
    """Every value of a composed eval config, the checkpoint's contents included; raises :class:`ConfigError`."""
    get = lambda key: OmegaConf.select(cfg, key, default=None, throw_on_missing=False)  # noqa: E731 - ??? → None
    episodes, video_episodes, seed, agent = get("episodes"), get("video_episodes"), get("seed"), get("agent")
    _check_int("episodes", episodes, 1)
    _check_int("video_episodes", video_episodes, 1)
    _check_int("seed", seed, 0)
    _check_int("agent", agent, 0)
    for key in ("greedy", "video"):
        if not isinstance(get(key), bool):
            raise ConfigError(key, get(key), "true or false")
    ckpt = checkpoint_file(get("ckpt"))
    state = load_checkpoint(ckpt, shown=get("ckpt"))
    conf = state["rlab"]["config"]
    check_agent(agent, int(conf["train"]["num_seeds"]))
    _check_env(get("env.id"), conf["env"]["id"])
    out = get("out")
    out_dir = Path(str(out)).expanduser() if out not in (None, "") else run_dir_of(ckpt)
    _check_writable("out", out, out_dir)
    if get("video") and importlib.util.find_spec("moviepy") is None:
        raise ConfigError("video", True, "false, or install moviepy for RecordVideo (pip install moviepy)")
    return EvalRequest(ckpt, state, episodes, get("greedy"), seed, get("video"), video_episodes, agent, out_dir)


def run_dir_of(ckpt: Path) -> Path:
    """``RUN/checkpoints/last.ckpt`` → ``RUN``: where eval.json and videos/ go by default."""
    return ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent


def checkpoint_file(value: Any) -> Path:
    """The checkpoint file ``ckpt=`` names: a file, or a run folder's ``checkpoints/last.ckpt``."""
    if value in (None, "", "???"):  # no ckpt= given (eval.yaml's ???), or an empty one
        raise ConfigError("ckpt", "???" if value is None else value, CKPT_HELP)
    path = Path(str(value)).expanduser()
    if path.is_dir():  # a run folder (or its checkpoints/ folder): its last checkpoint
        for inside in (path / "checkpoints" / "last.ckpt", path / "last.ckpt"):
            if inside.is_file():
                return inside
        raise ConfigError("ckpt", value, f"{CKPT_HELP}; {path} is a folder without checkpoints/last.ckpt")
    if not path.exists():
        raise ConfigError("ckpt", value, f"{CKPT_HELP}; {path} does not exist")
    if not path.is_file():
        raise ConfigError("ckpt", value, f"{CKPT_HELP}; {path} is not a file")
    return path


_last_load: tuple[tuple[str, int, int], dict[str, Any]] | None = None  # precheck and job read the file once


def load_checkpoint(path: Path, shown: Any = None) -> dict[str, Any]:
    """The checkpoint at ``path``, checked to be rlab-train's; raises a one-line :class:`ConfigError`.

    ``shown`` is the ``ckpt=`` value as typed (the message names what the user wrote).
    """
    global _last_load
    shown = path if shown is None else shown
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    if _last_load is not None and _last_load[0] == key:
        return _last_load[1]
    if stat.st_size == 0:
        raise ConfigError("ckpt", shown, f"{CKPT_HELP}; {path.name} is empty")
    import torch  # only now: it takes seconds to import

    try:
        # weights_only=False: the checkpoint holds the run config and ledger (plain Python objects).
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any failure to unpickle means "not a readable checkpoint"
        raise ConfigError("ckpt", shown, f"{CKPT_HELP}; {path.name} is not a readable checkpoint "
                          f"(truncated, corrupt or another format: {type(exc).__name__})") from None
    _check_contents(state, shown, path.name)
    _last_load = (key, state)
    return state


def _check_contents(state: Any, shown: Any, name: str) -> None:
    """The parts evaluation reads: ``state_dict`` and the run config's env, policy and agents."""
    if not isinstance(state, dict) or not isinstance(state.get("rlab"), dict):
        what = ("a Lightning checkpoint" if isinstance(state, dict) and "pytorch-lightning_version" in state
                else f"a torch file ({type(state).__name__})")
        raise ConfigError("ckpt", shown, f"{CKPT_HELP}; {name} is {what} without rlab-train's run config")
    conf = state["rlab"].get("config")
    try:
        complete = (isinstance(state["state_dict"], dict) and isinstance(conf["env"]["id"], str)
                    and isinstance(conf["policy"], dict) and int(conf["train"]["num_seeds"]) >= 1
                    and isinstance(conf["seed"], int))
    except (KeyError, TypeError, ValueError):
        complete = False
    if not complete:
        raise ConfigError("ckpt", shown, f"{CKPT_HELP}; {name} has an incomplete run config or no state_dict")


def check_agent(agent: int, num_agents: int) -> None:
    """``agent`` must be one of the checkpoint's ``train.num_seeds`` agents."""
    if not 0 <= agent < num_agents:
        allowed = ("0 (this checkpoint has one agent)" if num_agents == 1
                   else f"an integer in [0, {num_agents - 1}] (this checkpoint has {num_agents} agents)")
        raise ConfigError("agent", agent, allowed)


def _check_env(given: Any, trained: str) -> None:
    """A policy is evaluated on the env it was trained on: ``env.id`` may only confirm it."""
    if given is not None and str(given) != trained:
        raise ConfigError("env.id", given, f"{trained}, the env this checkpoint was trained on "
                          "(or leave env unset; to evaluate elsewhere, train there)")


def _check_writable(key: str, value: Any, folder: Path) -> None:
    """eval.json must be writable into ``folder``: say so now rather than after the episodes."""
    probe = folder
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    problem = ("is not a folder" if probe.exists() and not probe.is_dir()
               else "is not writable" if not os.access(probe, os.W_OK) else None)
    if problem:
        raise ConfigError(key, value, f"a writable folder for eval.json ({probe} {problem})")


def _check_int(key: str, value: Any, low: int) -> None:
    """An integer ≥ ``low`` (``episodes=abc`` arrives as a string: eval.yaml has no typed schema)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(key, value, f"an integer ≥ {low}")
