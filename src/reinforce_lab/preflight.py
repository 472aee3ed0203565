"""Checks run by ``rlab-train`` before Hydra starts a job: nothing is created when they fail.

``resume=RUN_DIR`` is expanded into that run's overrides; group options, the composed
config, its values and the run folder are checked; every problem is one
:class:`~reinforce_lab.config.ConfigError` line (the entry point prints it and exits 2).
"""

from __future__ import annotations

import os
from pathlib import Path

from .config import ConfigError, validate


def resume_argv(argv: list[str]) -> list[str]:
    """``resume=RUN_DIR [overrides]`` → that run's own overrides, then the new ones, in its folder."""
    import yaml

    given = [a for a in argv if a.startswith("resume=")]
    if not given:
        return argv
    if any(a in ("-m", "--multirun") for a in argv):
        raise ConfigError("resume", given[-1].split("=", 1)[1], "a single run (not with -m)")
    run_dir = Path(given[-1].split("=", 1)[1]).expanduser().resolve()
    overrides = run_dir / ".hydra" / "overrides.yaml"
    if not overrides.is_file():
        raise ConfigError("resume", run_dir, "a run folder written by rlab-train (with .hydra/overrides.yaml)")
    previous = [o for o in (yaml.safe_load(overrides.read_text()) or [])
                if not o.startswith(("resume=", "hydra.run.dir="))]
    extra = [a for a in argv if not a.startswith("resume=")]
    return previous + extra + [f"hydra.run.dir={run_dir}", f"resume={run_dir}"]


def precheck(argv: list[str]) -> None:
    """Compose and validate a single run's config before Hydra makes its folder.

    Hydra's own composition errors (unknown keys, bad types) are several lines long; here
    each becomes one line naming the key. Sweeps are checked job by job instead, so one bad
    job cannot stop the others.
    """
    from hydra import compose, initialize_config_module
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    if any(a in ("-m", "--multirun") for a in argv) or any(a.startswith("-") for a in argv):
        return
    overrides = [a for a in argv if not a.startswith(("hydra.", "hydra/", "+hydra", "~hydra"))]
    if _has_sweep(overrides):
        return  # a sweep without -m: a preset sets hydra.mode=MULTIRUN (hparams_search=optuna)
    try:
        with initialize_config_module("reinforce_lab.conf", version_base="1.3"):
            cfg = compose("train", overrides=overrides)
    except (HydraException, OmegaConfBaseException, ValueError) as exc:
        raise ConfigError(*_explain_composition_error(exc)) from None
    validate(cfg)
    _check_writable(argv)


def _has_sweep(overrides: list[str]) -> bool:
    """Whether any override sweeps (``a,b``, ``range()``, ``choice()``, ``interval()``, ``glob()``)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        return any(o.is_sweep_override() for o in OverridesParser.create().parse_overrides(overrides))
    except Exception:  # noqa: BLE001 - malformed: compose() reports it
        return False


def _explain_composition_error(exc: BaseException) -> tuple[str, str, str]:
    text = str(exc)
    full_key = next((line.split(":", 1)[1].strip() for line in text.splitlines()
                     if line.strip().startswith("full_key:")), None)
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    if "Could not override" in first or "not in struct" in text:
        quoted = first.split("'")[1] if first.count("'") >= 2 else "override"
        return full_key or quoted, "(unknown key)", "an existing key (see `rlab-train --cfg job`); prefix + to add one"
    if "Value '" in text and full_key:
        value = text.split("Value '", 1)[1].split("'", 1)[0]
        return full_key, value, f"a value of the key's type ({first})"
    return full_key or "override", "", first


def _check_writable(argv: list[str]) -> None:
    """The run folder must be creatable: say so in one line instead of Hydra's traceback."""
    given = [a.split("=", 1)[1] for a in argv if a.startswith("hydra.run.dir=")]
    target = Path(given[-1]) if given else Path("outputs")
    probe = target
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if (probe.exists() and not probe.is_dir()) or not os.access(probe, os.W_OK):
        raise ConfigError("hydra.run.dir" if given else "working directory", target,
                          f"a writable folder ({probe} is {'not a folder' if probe.exists() and not probe.is_dir() else 'not writable'})")
