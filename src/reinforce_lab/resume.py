"""``rlab-train resume=RUN_DIR [overrides]``: what a resume may change, and whether anything is left to train.

A resume continues a run in its own folder and its own W&B run, from its checkpoint, with
the run's own overrides (``.hydra/overrides.yaml``) followed by the new ones. Everything here
runs before Hydra starts, so a refused resume, or one with nothing to do, writes nothing:

- an override that changes **what was trained** (env, algo, loss, policy, optimiser, seeds,
  ``train.num_seeds``, ``train.window``…) is refused in one line naming the key; a resume may
  change only how the run goes on (:data:`RESUMABLE`): budgets, logger, device, checkpoint
  cadence, progress and torch threads;
- a run whose every agent has reached a limit of the (new) budget has nothing left to train:
  one line saying so, exit code 0, nothing touched. Raising the budget
  (``train.max_env_steps=`` larger, ``train.max_episodes=``, or ``train.target_return=null``
  for a run that stopped at its target) is the explicit way to continue a finished run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import ConfigError

# Config keys (and subtrees) a resume may change: how the run goes on, not what it learns.
RESUMABLE = ("train.max_env_steps", "train.max_episodes", "train.target_return", "train.checkpoint_every_s",
             "train.checkpoint_every_updates", "train.progress", "train.torch_threads", "logger", "device",
             "callbacks.progress", "callbacks.periodic_checkpoint", "tags", "resume")
ALLOWED_TEXT = ("overrides that do not change what was trained: budgets (train.max_env_steps, train.max_episodes, "
                "train.target_return), logger, device, checkpoint cadence (train.checkpoint_every_s, "
                "train.checkpoint_every_updates), train.progress, train.torch_threads")


class NothingToTrain(Exception):
    """The run has already reached its budget: the message says so (exit code 0, nothing written)."""


def resume_argv(argv: list[str]) -> list[str]:
    """``resume=RUN_DIR [overrides]`` → that run's own overrides, then the new ones, in its folder."""
    given = [a for a in argv if a.startswith("resume=")]
    if not given:
        return argv
    if any(a in ("-m", "--multirun") for a in argv):
        raise ConfigError("resume", given[-1].split("=", 1)[1], "a single run (not with -m)")
    run_dir = Path(given[-1].split("=", 1)[1]).expanduser().resolve()
    if not (run_dir / ".hydra" / "overrides.yaml").is_file():
        raise ConfigError("resume", run_dir, "a run folder written by rlab-train (with .hydra/overrides.yaml)")
    extra = [a for a in argv if not a.startswith("resume=")]
    return _recorded_overrides(run_dir) + extra + [f"hydra.run.dir={run_dir}", f"resume={run_dir}"]


def _recorded_overrides(run_dir: Path) -> list[str]:
    """The overrides the run was started with (a resume's own ``resume=``/``hydra.run.dir=`` dropped)."""
    import yaml

    recorded = yaml.safe_load((run_dir / ".hydra" / "overrides.yaml").read_text()) or []
    return [str(o) for o in recorded if not str(o).startswith(("resume=", "hydra.run.dir="))]


def _job_overrides(overrides: list[str]) -> list[str]:
    """Without Hydra's own overrides (launcher, run folder): those never change what is trained."""
    return [o for o in overrides if not o.startswith(("hydra.", "hydra/", "+hydra", "~hydra"))]


def check_resume(argv: list[str]) -> None:
    """For an expanded ``resume=`` argv (:func:`resume_argv`): refuse changes to what was trained, stop if done.

    Raises:
        ConfigError: a new override changes a key outside :data:`RESUMABLE`, or the
            checkpoint is missing, unreadable or of an older format.
        NothingToTrain: every agent of the checkpoint has reached a limit of the new budget.
    """
    resume = [a.split("=", 1)[1] for a in argv if a.startswith("resume=")]
    if not resume or any(a.startswith("-") for a in argv):
        return
    run_dir = Path(resume[-1])
    previous, extra = _split_argv(run_dir, argv)
    before, after = _flat_config(previous), _flat_config(previous + extra)
    changed = [k for k in dict.fromkeys([*before, *after]) if before.get(k, _MISSING) != after.get(k, _MISSING)
               and not _resumable(k)]
    if changed:
        culprit = _override_for(changed[0], extra)
        what = ", ".join(f"{k} ({_show(before.get(k, _MISSING))} → {_show(after.get(k, _MISSING))})"
                         for k in changed[:3])
        key, _, value = culprit.partition("=")
        raise ConfigError(key, value, f"on resume= only {ALLOWED_TEXT}; this one changes {what}, what the run "
                          f"in {run_dir} trained (train a new run instead)")
    _check_something_left(run_dir, after)


def _split_argv(run_dir: Path, argv: list[str]) -> tuple[list[str], list[str]]:
    """The run's own overrides and the ones given now, as :func:`resume_argv` put them in ``argv``."""
    previous = _recorded_overrides(run_dir)
    extra = [a for a in argv[len(previous):] if not a.startswith(("resume=", "hydra.run.dir="))]
    return _job_overrides(previous), _job_overrides(extra)


_MISSING = object()


def _flat_config(overrides: list[str]) -> dict[str, Any]:
    """The composed job config as ``{dotted key: value}`` (resolved where it can be, else as written)."""
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    with initialize_config_module("reinforce_lab.conf", version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    try:
        tree = OmegaConf.to_container(cfg, resolve=True)
    except Exception:  # noqa: BLE001 - an interpolation that needs Hydra's runtime: compare as written
        tree = OmegaConf.to_container(cfg, resolve=False)
    return dict(_flatten(tree))


def _flatten(tree: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(tree, dict) and tree:
        return [kv for k, v in tree.items() for kv in _flatten(v, f"{prefix}{k}.")]
    return [(prefix[:-1], tree)]


def _resumable(key: str) -> bool:
    return any(key == k or key.startswith(k + ".") for k in RESUMABLE)


def _override_for(key: str, extra: list[str]) -> str:
    """The given override that changed ``key`` (its group or the key itself), else the key."""
    for override in reversed(extra):
        name = override.split("=", 1)[0].lstrip("+~")
        if key == name or key.startswith(name.replace("/", ".") + "."):
            return override
    return next((o for o in extra if o.startswith(("experiment=", "+experiment="))), f"{key}=")


def _show(value: Any) -> str:
    return "absent" if value is _MISSING else str(value)


def _check_something_left(run_dir: Path, config: dict[str, Any]) -> None:
    """Raise :class:`NothingToTrain` when every agent of the checkpoint has reached a limit of ``config``'s budget."""
    from .checkpointing import checkpoint_path, read_checkpoint
    from .ledger import TARGET, Budget, limit_reached

    ledger = read_checkpoint(checkpoint_path(run_dir))["rlab"]["ledger"]
    budget = Budget(config.get("train.max_env_steps"), config.get("train.max_episodes"),
                    config.get("train.target_return"), int(config.get("train.window") or 100))
    reasons = [limit_reached(budget, int(steps), int(eps), solved)
               for steps, eps, solved in zip(ledger["env_steps"], ledger["episodes"], ledger["solved_at"])]
    if all(reasons):
        steps, episodes = max(ledger["env_steps"]), max(ledger["episodes"])
        hint = (f"train.target_return=null (it reached its target)" if TARGET in reasons
                else f"train.max_env_steps=N (N > {steps:,})")
        raise NothingToTrain(
            f"[rlab] {run_dir} has finished ({', '.join(sorted(set(reasons)))}: {episodes:,} episodes, "
            f"{steps:,} env steps per agent); nothing to train, nothing changed. To train it further, raise its "
            f"budget: rlab-train resume={run_dir} {hint}")


def sweep_job_state(config: dict[str, Any], run_dir: Path) -> tuple[str | None, float | None]:
    """What a sweep job finds in its folder: ``("finished", final return)``, ``("resume", None)`` or ``(None, None)``.

    A folder already holds this job's run only after a requeue (SLURM preemption or time limit:
    the same job runs again in the same folder; sweep folders are otherwise new). Finished
    runs are never rerun; a checkpoint of the same config is resumed. A checkpoint of another
    config (a sweep started again into an old folder by hand) is refused in one line.

    Raises:
        ConfigError: the folder's checkpoint was trained with another config.
    """
    from .checkpointing import checkpoint_path, read_checkpoint
    from .run_summary import read_summary_fields

    try:
        summary = read_summary_fields(run_dir)
    except (OSError, ValueError):
        summary = {}
    if summary.get("status") == "finished":
        fr = summary.get("final_return")
        return "finished", float(fr) if isinstance(fr, (int, float)) else None
    if not checkpoint_path(run_dir).is_file():
        return None, None
    stored = dict(_flatten(read_checkpoint(checkpoint_path(run_dir))["rlab"]["config"]))
    now = dict(_flatten(config))
    changed = [k for k in dict.fromkeys([*stored, *now]) if not _resumable(k)
               and stored.get(k, _MISSING) != now.get(k, _MISSING) and stored.get(k) != "***"]  # *** a masked secret
    if changed:
        k = changed[0]
        raise ConfigError("hydra.sweep.dir", run_dir.parent, f"a new sweep folder ({run_dir} holds a run trained with "
                          f"{k}={_show(stored.get(k, _MISSING))}, this job has {_show(now.get(k, _MISSING))})")
    return "resume", None
