"""Optional extras (sweep plugins) checked before Hydra starts: one line naming the extra to install.

A bare ``pip install reinforce-lab`` has Hydra's ``basic`` launcher and sweeper only. The
joblib and submitit launchers and the Optuna sweeper come with the ``sweeps`` extra; asking
for one without it would end in a multi-line Hydra error (``Could not find
'hydra/sweeper/optuna'``) or, for our own ``hydra/launcher=joblib`` (whose config ships with
reinforce-lab), in a traceback once the first job is due, after the sweep folder exists.
:func:`check_extras` turns both into one :class:`~reinforce_lab.errors.ConfigError` line
before anything is created. It reads the choices from the command line and from the
defaults lists of the presets it selects (``hparams_search=optuna``, ``experiment=...``),
without composing the config: composition is exactly what fails when a plugin is missing.

:func:`check_report_extra` is the same check for ``rlab-report`` (the ``report`` extra), and
:func:`missing_modules` serves the config checks of the others (``env.vectorization=envpool``).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from importlib import resources
from typing import Any, Iterator

from .errors import ConfigError

CONFIG_PACKAGE = "reinforce_lab.conf"  # as reinforce_lab.config (not imported: it imports torch)
PRIMARY_CONFIG = "train"
PLUGIN_GROUPS = ("hydra/launcher", "hydra/sweeper")
REPORT_MODULES = ("matplotlib", "pandas", "rliable")  # pyproject.toml's `report` extra
ENVPOOL_MODULES = ("envpool",)  # pyproject.toml's `envpool` extra (env.vectorization=envpool)


@dataclass(frozen=True)
class Plugin:
    """A Hydra plugin of an extra: the group options it provides and the modules they need."""

    group: str                 # the config group its options belong to
    options: tuple[str, ...]   # what `group=option` selects it
    modules: tuple[str, ...]   # importable when installed (the plugin and the library it drives)
    dist: str                  # its PyPI name, for the message
    extra: str = "sweeps"      # pyproject.toml's extra that installs it

    def installed(self) -> bool:
        """Whether every module it needs can be imported (found, not imported: no import cost)."""
        return all(_importable(m) for m in self.modules)


# conf/hydra/launcher/joblib.yaml is ours but targets a wrapper of hydra-joblib-launcher;
# submitit_slurm.yaml is ours too and extends the plugin's config of the same name.
PLUGINS = (
    Plugin("hydra/launcher", ("joblib",), ("hydra_plugins.hydra_joblib_launcher", "joblib"), "hydra-joblib-launcher"),
    Plugin("hydra/launcher", ("submitit_local", "submitit_slurm"),
           ("hydra_plugins.hydra_submitit_launcher", "submitit"), "hydra-submitit-launcher"),
    Plugin("hydra/sweeper", ("optuna",), ("hydra_plugins.hydra_optuna_sweeper", "optuna"), "hydra-optuna-sweeper"),
)
BUILT_IN = {"hydra/launcher": "basic", "hydra/sweeper": "basic"}


def install_hint(extra: str) -> str:
    """The command that installs ``extra``."""
    return f"pip install 'reinforce-lab[{extra}]'"


def missing_modules(modules: tuple[str, ...]) -> list[str]:
    """Those of ``modules`` that cannot be imported (found, not imported: ``import envpool`` alone takes ~2 s)."""
    return [m for m in modules if not _importable(m)]


def plugin_for(group: str, option: str) -> Plugin | None:
    """The extra's plugin behind ``group=option``; None for Hydra's built-in options and ours."""
    return next((p for p in PLUGINS if p.group == group and option in p.options), None)


def check_extras(argv: list[str]) -> None:
    """Raise :class:`~reinforce_lab.errors.ConfigError` when ``argv`` asks for a plugin that is not installed.

    ``argv`` is ``rlab-train``'s arguments. A launcher or sweeper given on the command line
    wins over one a preset selects, as in Hydra; the first missing plugin is reported.
    """
    chosen = _overrides(argv)
    explicit = {group for group, _ in chosen if group in PLUGIN_GROUPS}
    selections = [(group, option, None) for group, option in chosen if group in PLUGIN_GROUPS]
    for group, option in [(PRIMARY_CONFIG, None), *chosen]:
        if group in PLUGIN_GROUPS:
            continue
        for plugin_group, plugin_option in _preset_plugin_choices(group, option):
            if plugin_group not in explicit:  # the command line's own choice wins
                selections.append((plugin_group, plugin_option, (group, option)))
    for group, option, preset in selections:
        plugin = plugin_for(group, option)
        if plugin is not None and not plugin.installed():
            raise _missing(plugin, group, option, preset)


class MissingExtra(ConfigError):
    """A command that needs an extra that is not installed; its message names the extra and how to install it."""

    def __init__(self, command: str, extra: str, missing: list[str]) -> None:
        super().__init__(command, "(without " + ", ".join(missing) + ")", install_hint(extra))
        # Not KEY=VALUE: no value of the user's is at fault, the install lacks something.
        self.message = f"{command} needs the {extra} extra ({', '.join(missing)} not installed): {install_hint(extra)}"

    def __str__(self) -> str:
        return self.message


def check_report_extra() -> None:
    """Raise :class:`MissingExtra` when ``rlab-report``'s libraries (the ``report`` extra) are not installed.

    For ``rlab-report``'s ``main`` to call first, before it reads a run folder: without the
    check, a bare install's ``rlab-report`` skips every run ("episodes.csv is malformed (No
    module named 'pandas')"), creates the ``--out`` folder and ends in a matplotlib traceback.
    """
    missing = [m for m in REPORT_MODULES if not _importable(m)]
    if missing:
        raise MissingExtra("rlab-report", "report", missing)


def _missing(plugin: Plugin, group: str, option: str, preset: tuple[str, str | None] | None) -> ConfigError:
    """The one-line error for ``group=option`` (selected by ``preset``, if any) without its plugin."""
    installed = [BUILT_IN[group] + " (built in)"]
    installed += [o for p in PLUGINS if p.group == group and p.installed() for o in p.options]
    needs, hint = f"the {plugin.extra} extra ({plugin.dist})", install_hint(plugin.extra)
    if preset is None:
        return ConfigError(group, option, f"{', '.join(installed)}, or {option} after installing {needs}: {hint}")
    preset_group, preset_option = preset
    if preset_option is None:  # train.yaml itself selects it: nothing on the command line to drop
        return ConfigError(group, option, f"{', '.join(installed)} (set in {PRIMARY_CONFIG}.yaml), or install "
                                          f"{needs}: {hint}")
    return ConfigError(preset_group, preset_option,
                       f"leaving {preset_group} out, or {preset_option} after installing {needs}, which its "
                       f"{group}={option} needs: {hint}")


def _overrides(argv: list[str]) -> list[tuple[str, str]]:
    """``(group, option)`` for every group choice in ``argv``, sweeps (``a,b``) element by element.

    Arguments are parsed one by one, so that flag values (``--cfg job``) and malformed
    overrides (which Hydra reports itself) are skipped.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    chosen: list[tuple[str, str]] = []
    for arg in argv:
        if arg.startswith("-") or "=" not in arg:
            continue
        try:
            (ov,) = parser.parse_overrides([arg])
            if ov.is_delete():
                continue
            values = list(ov.sweep_string_iterator()) if ov.is_sweep_override() else [ov.value()]
        except Exception:  # noqa: BLE001 - Hydra reports malformed overrides itself
            continue
        chosen += [(ov.key_or_group, v) for v in values if isinstance(v, str)]
    return chosen


def _preset_plugin_choices(group: str, option: str | None, depth: int = 0) -> Iterator[tuple[str, str]]:
    """``(plugin group, option)`` that the config ``group/option.yaml`` selects in its defaults list, recursively.

    ``option`` None is the primary config (``train.yaml``). Configs that do not exist in
    the package (a plain key such as ``seed=1``, a ``--config-dir`` of the user's) select nothing.
    """
    config = _read_config(group, option)
    if config is None or depth > 8:  # depth: a cycle is Hydra's to report, not a reason to hang here
        return
    here = "" if option is None else group
    for entry in config.get("defaults") or []:
        if not isinstance(entry, dict):
            continue  # "_self_" or a config of the same group: no group choice
        for key, value in entry.items():
            target = _default_group(str(key), here)
            for choice in value if isinstance(value, list) else [value]:
                if not isinstance(choice, str):
                    continue
                if target in PLUGIN_GROUPS:
                    yield target, choice
                else:
                    yield from _preset_plugin_choices(target, choice, depth + 1)


def _default_group(key: str, here: str) -> str:
    """The absolute group of a defaults-list key (``override /hydra/sweeper``, ``optional env@x``, ``env``)."""
    for keyword in ("override ", "optional "):
        key = key.removeprefix(keyword)
    key = key.split("@", 1)[0].strip()
    if key.startswith("/"):
        return key[1:]
    return f"{here}/{key}" if here else key  # relative to the config's own group, as in Hydra


def _read_config(group: str, option: str | None) -> dict[str, Any] | None:
    """The YAML of ``conf/<group>/<option>.yaml`` (``conf/<group>.yaml`` for option None), if the package has it."""
    import yaml

    node = resources.files(CONFIG_PACKAGE)
    for part in (f"{group}.yaml" if option is None else f"{group}/{option}.yaml").split("/"):
        node = node / part
    try:
        data = yaml.safe_load(node.read_text())
    except (OSError, yaml.YAMLError):
        return None
    return data if isinstance(data, dict) else None


def _importable(module: str) -> bool:
    """Whether ``module`` can be found on ``sys.path`` (its parents are imported, itself is not)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a missing parent package; a module with __spec__ None
        return False
