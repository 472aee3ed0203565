"""``rlab-train``: train one REINFORCE variant (or sweep with ``-m``), configured by Hydra.

Examples::

    rlab-train                                  # CartPole-v1, vanilla REINFORCE, W&B offline
    rlab-train env=pendulum algo=reinforce_baseline
    rlab-train -m seed=0,1,2 hydra/launcher=joblib
"""

from __future__ import annotations

import logging as _pylogging
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from . import sweeps
from .checkpointing import CheckpointError
from .config import ConfigError, check_group_choices, validate
from .preflight import precheck, resume_argv
from .update import NonFiniteError

_T0 = time.perf_counter()


def run(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Train as ``cfg`` says, writing everything into ``run_dir``; returns the summary.

    The W&B run is finished and ``summary.json`` written even when training fails.
    """
    import pytorch_lightning as pl
    import torch

    from . import logging as rlog
    from .callbacks import EpisodeRecorder, Progress, TrainingBudget
    from .checkpointing import PeriodicCheckpoint, read_checkpoint, save_atomic, truncate_episodes
    from .interrupts import GracefulStop
    from .redaction import redact, redacted_argv, scrub_files, secret_values
    from .update import parameters_finite
    from .config import (agent_generators, agent_seeds, asynchronous_agents, build_envs, build_optimizer,
                         build_policy, build_value_fn, env_seeds)
    from .module import ReinforceModule
    from .rollout import EpisodeCollector

    _quiet_lightning()
    graceful = GracefulStop()
    graceful.install()  # from the start: a SIGTERM during set-up also ends in a clean stop
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(int(cfg.train.torch_threads))
    pl.seed_everything(int(cfg.seed), verbose=False)
    ckpt_path = run_dir / "checkpoints" / "last.ckpt"
    resume_state = read_checkpoint(ckpt_path)["rlab"] if cfg.get("resume") else None

    seeds = agent_seeds(cfg)
    generators = agent_generators(seeds)
    envs_per_agent = min(cfg.env.num_envs, cfg.algo.episodes_per_update)
    envs = build_envs(cfg, envs_per_agent * len(seeds))
    policy = build_policy(cfg, envs.single_observation_space, envs.single_action_space, generators)
    algo = cfg.algo
    value_fn = (build_value_fn(cfg, envs.single_observation_space, generators)
                if algo.advantage != "return" else None)
    baseline_lr = algo.get("baseline_lr") or cfg.optimizer.lr
    update = dict(gamma=algo.gamma, gamma_t=algo.gamma_t, normalize=algo.normalize_returns,
                  advantage=algo.advantage, entropy_coef=algo.get("entropy_coef") or 0.0,
                  loss_form=cfg.loss.name, sequential=bool(cfg.loss.get("sequential", False)),
                  step_size=cfg.optimizer.lr, baseline_step_size=baseline_lr)
    raw = OmegaConf.to_container(cfg, resolve=True)
    secrets = secret_values(raw)
    resolved = redact(raw, secrets)  # what W&B, checkpoints and summary.json see
    scrub_files(run_dir / ".hydra", secrets)
    collector = EpisodeCollector(envs, algo.episodes_per_update, env_seeds(seeds, envs_per_agent),
                                 num_seeds=len(seeds), generators=generators,
                                 asynchronous=asynchronous_agents(cfg, envs, len(seeds)))
    module = ReinforceModule(policy, collector,
                             build_optimizer(cfg), value_fn, build_optimizer(cfg, lr=baseline_lr),
                             update=update, run_config=resolved)

    logger, mode, wandb_run = None, None, None
    if cfg.logger.get("_target_"):
        from hydra.utils import instantiate

        logger_cfg = OmegaConf.to_container(cfg.logger, resolve=True)
        init_timeout = float(logger_cfg.pop("init_timeout", 15.0) or 15.0)
        logger_cfg.pop("mode", None)
        if "Wandb" not in str(cfg.logger._target_):
            # Experiment presets may set W&B-only keys (group, tags...): other loggers ignore them.
            for key in ("group", "job_type", "tags", "project", "entity", "log_model"):
                logger_cfg.pop(key, None)
        factory = instantiate(logger_cfg, _partial_=True)
        if "Wandb" in str(cfg.logger._target_):
            os.environ.setdefault("WANDB_SILENT", "true")
            wandb_id = (resume_state or {}).get("wandb_id")
            if wandb_id:
                rlog.stop_orphaned_wandb_services()  # a killed run's W&B helper would hold its id
            # `config` clashes with instantiate's own first parameter: it goes to the partial.
            with redacted_argv(secrets):
                logger, wandb_run, mode = rlog.start_wandb(
                    factory, rlog.wandb_mode(cfg.logger.get("mode")), init_timeout, save_dir=str(run_dir),
                    dir=str(run_dir), config=resolved, **({"id": wandb_id, "resume": "allow"} if wandb_id else {}))
            module.wandb_id = wandb_run.id
        else:
            logger = factory(save_dir=str(run_dir))

    recorder = EpisodeRecorder(run_dir / "episodes.csv", window=int(cfg.train.window), seeds=seeds)
    budget = TrainingBudget(recorder, cfg.train.max_env_steps, cfg.train.max_episodes, cfg.train.target_return)
    if resume_state is not None:
        counts = (dict(zip(seeds, resume_state["agent_episodes"])) if len(seeds) > 1
                  else int(resume_state["episodes"]))
        recorder.restore(truncate_episodes(run_dir / "episodes.csv", counts))
    progress = Progress(recorder, budget, enabled=bool(cfg.train.progress))
    periodic = PeriodicCheckpoint(ckpt_path, cfg.train.get("checkpoint_every_s"),
                                  cfg.train.get("checkpoint_every_updates"))
    trainer = pl.Trainer(
        accelerator=cfg.device.accelerator, devices=cfg.device.devices, precision=cfg.device.precision,
        logger=logger if logger is not None else False,
        callbacks=[recorder, budget, progress, graceful, periodic],
        max_epochs=-1, max_steps=-1, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, log_every_n_steps=1, default_root_dir=str(run_dir),
    )
    status, error, start = "failed", None, time.perf_counter()
    try:
        trainer.fit(module, ckpt_path=str(ckpt_path) if resume_state is not None else None)
        status = "interrupted" if graceful.requested else "finished"
    except BaseException as exc:  # noqa: BLE001 - recorded, then re-raised
        error = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, (KeyboardInterrupt, SystemExit)) and graceful.requested:
            status = "interrupted"
        raise
    finally:
        graceful.restore()
        wall = time.perf_counter() - start
        recorder.close()
        if parameters_finite(module):
            try:
                save_atomic(trainer, ckpt_path)
            except Exception as exc:  # noqa: BLE001 - a failed save must not hide the first error
                print(f"error: {exc}", file=sys.stderr)
                error = error or str(exc)
                status = "failed"
        else:
            print(f"[rlab] parameters are not finite: kept the last good checkpoint {ckpt_path}", file=sys.stderr)
        summary = {
            "status": status,
            "final_return": recorder.mean_return if any(recorder.recent) else None,
            "final_window": len(recorder.recent[0]),
            "episodes": module.episodes,
            "env_steps": module.env_steps,
            "wall_s": round(wall, 3),
            "process_wall_s": round(time.perf_counter() - _T0, 3),
            "env_steps_per_s": module.env_steps / wall if wall > 0 else 0.0,
            "solved_at_episode": recorder.solved_at_episode,
            "target_return": cfg.train.target_return,
            "stop_reason": budget.stop_reason,
            "seed": int(cfg.seed),
            "env_id": cfg.env.id,
            "algo": cfg.algo.name,
            "loss": cfg.loss.name,
            "git_commit": _git_commit(),
            "wandb_run_dir": str(rlog.wandb_run_dir(wandb_run)) if wandb_run is not None else None,
            "run_dir": str(run_dir),
        }
        if len(seeds) > 1:
            # One job, several agents: the aggregates above are over agents (final_return is the
            # mean of the agents' final returns; env_steps and episodes are totals).
            summary["num_seeds"] = len(seeds)
            summary["agents"] = [
                {"seed": k, "final_return": recorder.agent_mean(a) if recorder.recent[a] else None,
                 "episodes": module.agent_episodes[a], "env_steps": module.agent_env_steps[a],
                 "solved_at_episode": recorder.solved_at[a], "stop_reason": budget.reasons[a]}
                for a, k in enumerate(seeds)]
        if error:
            summary["error"] = redact(error, secrets)
        summary = redact(summary, secrets)
        rlog.write_summary(run_dir, summary)
        if wandb_run is not None:
            wandb_run.summary.update({k: v for k, v in summary.items() if v is not None})
            wandb_run.finish(exit_code=0 if status == "finished" else 1)
        envs.close()
    if cfg.train.progress:
        print(rlog.closing_message(run_dir, summary, mode), flush=True)
    return summary


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _quiet_lightning() -> None:
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning"):
        _pylogging.getLogger(name).setLevel(_pylogging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*IterableDataset.*")
    warnings.filterwarnings("ignore", message=".*number of training batches.*")
    warnings.filterwarnings("ignore", message=".*log_every_n_steps.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")


def _fail(message: str, run_dir: Path | None = None) -> None:
    print(f"error: {message}", file=sys.stderr, flush=True)
    if run_dir is not None:
        _remove_if_only_hydra(run_dir)
    sys.exit(2)


def _remove_if_only_hydra(run_dir: Path) -> None:
    """Remove the folder Hydra made for a job that never started; never touches other files."""
    import shutil

    if run_dir.is_dir() and all(p.name == ".hydra" or p.suffix == ".log" for p in run_dir.iterdir()):
        shutil.rmtree(run_dir, ignore_errors=True)


@hydra.main(config_path="pkg://reinforce_lab.conf", config_name="train", version_base="1.3")
def _hydra_main(cfg: DictConfig) -> float | None:
    """One Hydra job. Returns the final return (what a sweeper such as Optuna maximises).

    A single run stops on bad input with one line and exit code 2. In a sweep a failing job
    (bad input or an exception in training) must not stop the others: it leaves a failed
    ``summary.json`` (and a finished W&B run), prints one line and returns
    :func:`~reinforce_lab.sweeps.failure_value`.
    """
    from hydra.core.hydra_config import HydraConfig

    run_dir = Path(HydraConfig.get().runtime.output_dir)
    multirun = sweeps.is_multirun()
    try:
        validate(cfg)
        summary = run(cfg, run_dir)
    except ConfigError as exc:
        if multirun:
            return sweeps.job_failed(cfg, run_dir, str(exc))
        _fail(str(exc), run_dir)
    except KeyboardInterrupt:
        print("[rlab] interrupted; checkpoint and summary.json written", file=sys.stderr)
        sys.exit(130)
    except (NonFiniteError, CheckpointError) as exc:
        if multirun:
            return sweeps.job_failed(cfg, run_dir, f"{type(exc).__name__}: {exc}")
        print(f"error: {exc} (run folder: {run_dir}; status failed in summary.json)", file=sys.stderr)
        sys.exit(1)
    except Exception as exc:
        if not multirun:
            raise
        return sweeps.job_failed(cfg, run_dir, f"{type(exc).__name__}: {exc}", exc)
    if not multirun and summary["status"] == "interrupted":
        print(f"[rlab] interrupted: continue with  rlab-train resume={run_dir}", file=sys.stderr)
        sys.exit(130)
    if not multirun and summary["status"] == "failed":
        sys.exit(1)
    final_return = summary.get("final_return")
    return sweeps.failure_value() if multirun and final_return is None else final_return


def _register_fork_launcher() -> None:
    """Make our joblib launcher subclass known to Hydra however the package was installed.

    Hydra finds plugins by walking the ``hydra_plugins`` namespace package's paths, which an
    editable install (``pip install -e``) does not extend; registering it by hand always works.
    """
    from hydra.core.plugins import Plugins
    from hydra_plugins.rlab_launchers.fork_joblib import ForkJoblibLauncher

    Plugins.instance().register(ForkJoblibLauncher)


def main() -> None:
    """Console entry point ``rlab-train``. A sweep exits with code 1 when any of its jobs failed."""
    # wandb exports WANDB_SERVICE in any process that uses it, and child processes inherit it:
    # a job started from such a process would register its run in the parent's W&B service,
    # where a killed job's run stays "in use" and cannot be resumed. Each job gets its own.
    os.environ.pop("WANDB_SERVICE", None)
    try:
        sys.argv[1:] = resume_argv(sys.argv[1:])
        check_group_choices([a for a in sys.argv[1:] if not a.startswith("-")])
        precheck(sys.argv[1:])
    except ConfigError as exc:
        _fail(str(exc))
    if any(a in ("-m", "--multirun") or "joblib" in a or "MULTIRUN" in a for a in sys.argv[1:]):
        _register_fork_launcher()  # only sweeps launch jobs; a single run skips the import
    _hydra_main()
    if sweeps.FAILED:
        sys.exit(1)


if __name__ == "__main__":
    main()
