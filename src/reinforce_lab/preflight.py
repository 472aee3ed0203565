"""Checks run by ``rlab-train`` before Hydra starts a job: nothing is created when they fail.

Group options, the composed config, its values and the run folder are checked (``resume=``
has its own checks in :mod:`reinforce_lab.resume`); every problem is one
:class:`~reinforce_lab.config.ConfigError` line (the entry point prints it and exits 2).
"""

from __future__ import annotations

import os
from pathlib import Path

from .config import ConfigError, validate


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
        raise ConfigError(*explain_composition_error(exc)) from None
    validate(cfg)
    _check_writable(argv)


def _has_sweep(overrides: list[str]) -> bool:
    """Whether any override sweeps (``a,b``, ``range()``, ``choice()``, ``interval()``, ``glob()``)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        return any(o.is_sweep_override() for o in OverridesParser.create().parse_overrides(overrides))
    except Exception:  # noqa: BLE001 - malformed: compose() reports it
        return False


def explain_composition_error(exc: BaseException) -> tuple[str, str, str]:
    """A Hydra/OmegaConf composition error as ``(key, value, allowed)`` for a one-line :class:`ConfigError`."""
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
