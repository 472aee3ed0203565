"""``rlab-train``: train one REINFORCE variant (or sweep with ``-m``), configured by Hydra.

Examples::

    rlab-train                                  # CartPole-v1, vanilla REINFORCE, W&B offline
    rlab-train env=pendulum algo=reinforce_baseline
    rlab-train -m seed=0,1,2 hydra/launcher=joblib
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from . import run_summary  # noqa: F401 - imported first: its clock is the fallback for process_wall_s
from . import sweeps
from .checkpointing import CheckpointError
from .config import ConfigError, check_group_choices, validate
from .extras import check_extras
from .numerics import NonFiniteError
from .preflight import precheck
from .resume import NothingToTrain, check_resume, resume_argv
from .settings import RunSettings, run_settings


def run(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Train as ``cfg`` says, writing everything into ``run_dir``; returns ``summary.json``'s contents.

    The composition root: builds every object from the config, then hands them to a
    :class:`~reinforce_lab.session.TrainingSession`, which writes the records (checkpoint,
    ``summary.json``, the finished W&B run) even when training fails.
    """
    import pytorch_lightning as pl
    import torch
    from hydra.utils import instantiate

    from .builders import build_optimizer
    from .checkpointing import checkpoint_path, read_checkpoint
    from .interrupts import GracefulStop
    from .ledger import AgentLedger, Budget
    from .lr_schedules import make_schedule
    from .module import ReinforceModule
    from .normalizers import ReturnStats
    from .redaction import redacted_config
    from .run_logger import RunLogger
    from .session import TrainingSession, quiet_lightning
    from .update import build_update

    s = run_settings(cfg)
    graceful = GracefulStop()
    graceful.install()  # from the start: a SIGTERM during set-up also ends in a clean stop
    quiet_lightning()
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(s.train.torch_threads)
    pl.seed_everything(s.seed, verbose=False)
    resumed = read_checkpoint(checkpoint_path(run_dir))["rlab"] if s.resume else None
    # What W&B, checkpoints and summary.json see: the resolved config with its secrets masked.
    resolved, secrets = redacted_config(OmegaConf.to_container(cfg, resolve=True), run_dir / ".hydra")
    envs, collector, policy, value_fn = _agents(cfg, s)
    baseline_lr = s.algo.baseline_lr or cfg.optimizer.lr
    ledger = AgentLedger(s.seeds, Budget(s.train.max_env_steps, s.train.max_episodes, s.train.target_return,
                                         s.train.window), collector, interrupted=lambda: graceful.requested)
    return_stats = ReturnStats(len(s.seeds)) if s.algo.needs_return_stats else None
    update = build_update(policy, value_fn, **_update_args(s, cfg.optimizer.lr, baseline_lr), running=return_stats)
    module = ReinforceModule(policy, collector, update, ledger, build_optimizer(cfg.optimizer), value_fn,
                             build_optimizer(cfg.optimizer, lr=baseline_lr), run_config=resolved,
                             return_stats=return_stats, lr_schedule=make_schedule(s.train.lr_schedule,
                                                                                  s.train.max_env_steps))
    run_logger = RunLogger.start(resolved["logger"], run_dir, resolved, secrets, (resumed or {}).get("wandb_id"))
    module.wandb_id = run_logger.wandb.id if run_logger.wandb is not None else None
    callbacks = [*instantiate(cfg.callbacks).values(), graceful]
    trainer = instantiate(cfg.trainer, logger=run_logger.lightning or False, callbacks=callbacks,
                          default_root_dir=str(run_dir))
    session = TrainingSession(trainer, module, run_dir, s, run_logger, graceful, secrets, envs)
    summary = session.fit(resume=resumed is not None)
    if s.train.progress:
        print(summary.closing_message(run_logger.mode), flush=True)
    graceful.hand_over()  # SLURM preemption/time limit: submitit requeues the job now that all is saved
    return summary.to_dict()


def _agents(cfg: DictConfig, s: RunSettings) -> tuple[Any, Any, Any, Any]:
    """The vector env (every agent's copies), the collector, the policy and v̂ of ``train.num_seeds`` agents."""
    from .builders import agent_generators, build_envs, build_policy, build_value_fn, env_seeds
    from .config import asynchronous_agents
    from .corridor_rollout import collector_class
    from .horizon_rollout import HorizonCollector

    seeds = s.seeds
    generators = agent_generators(seeds)
    horizon = s.algo.rollout == "horizon"
    envs_per_agent = s.env.num_envs if horizon else min(s.env.num_envs, s.algo.episodes_per_update)
    env = replace(s.env, vectorization="sync") if horizon and s.env.vectorization == "auto" else s.env
    envs = build_envs(env, envs_per_agent * len(seeds))
    policy = build_policy(cfg.policy, envs.single_observation_space, envs.single_action_space, generators)
    value_fn = (build_value_fn(s.algo, OmegaConf.to_container(cfg.policy, resolve=True), envs.single_observation_space,
                               generators) if s.algo.has_value_fn else None)
    if horizon:  # fixed-horizon rollouts (algo.rollout=horizon): N env steps per update, episodes cut and bootstrapped
        return envs, HorizonCollector(envs, s.algo.horizon, env_seeds(seeds, envs_per_agent), len(seeds),
                                      generators), policy, value_fn
    collector = collector_class(envs)(envs, s.algo.episodes_per_update, env_seeds(seeds, envs_per_agent),
                                      num_seeds=len(seeds), generators=generators,
                                      asynchronous=asynchronous_agents(cfg, envs, len(seeds)),
                                      group_size=s.algo.group_size)
    return envs, collector, policy, value_fn


def _update_args(s: RunSettings, lr: float, baseline_lr: float) -> dict[str, Any]:
    a = s.algo
    return dict(gamma=a.gamma, gamma_t=a.gamma_t, normalize=a.normalize_returns, advantage=a.advantage,
                entropy_coef=a.entropy_coef or 0.0, loss_form=s.loss.name, sequential=s.loss.sequential,
                closed_form=s.loss.closed_form,
                step_size=lr, baseline_step_size=baseline_lr, lambda_theta=a.lambda_theta, lambda_w=a.lambda_w,
                group_size=a.group_size, bootstrap=a.bootstrap_choice, normalize_by=a.normalize_by)


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
        if multirun and (done := _continue_sweep_job(cfg, run_dir)) is not None:
            return done
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


def _continue_sweep_job(cfg: DictConfig, run_dir: Path) -> float | None:
    """A sweep job whose folder already holds its run (a SLURM requeue after preemption or a time limit).

    Finished: never rerun; its final return is returned as is. Interrupted or killed with a
    checkpoint: ``cfg.resume`` is set so that the job continues from the checkpoint. Else None.
    """
    from omegaconf import open_dict

    from .resume import sweep_job_state

    state, final_return = sweep_job_state(OmegaConf.to_container(cfg, resolve=True), run_dir)
    if state == "finished":
        print(f"[rlab] {run_dir} has finished: not run again", flush=True)
        return sweeps.failure_value() if final_return is None else final_return
    if state == "resume":
        print(f"[rlab] {run_dir} holds this job's checkpoint: resuming it", flush=True)
        with open_dict(cfg):
            cfg.resume = str(run_dir)
    return None


def main() -> None:
    """Console entry point ``rlab-train``. A sweep exits with code 1 when any of its jobs failed."""
    # wandb exports WANDB_SERVICE in any process that uses it, and child processes inherit it:
    # a job started from such a process would register its run in the parent's W&B service,
    # where a killed job's run stays "in use" and cannot be resumed. Each job gets its own.
    os.environ.pop("WANDB_SERVICE", None)
    try:
        sys.argv[1:] = resume_argv(sys.argv[1:])
        check_group_choices([a for a in sys.argv[1:] if not a.startswith("-")])
        check_extras(sys.argv[1:])
        precheck(sys.argv[1:])
        check_resume(sys.argv[1:])
    except ConfigError as exc:
        _fail(str(exc))
    except NothingToTrain as done:
        print(done, flush=True)
        sys.exit(0)
    _hydra_main()


if __name__ == "__main__":
    main()
