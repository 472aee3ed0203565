"""Trick ``forked_workers``: ``hydra/launcher=joblib`` runs each job in a process forked from the parent.

What: the parent imports torch, PyTorch Lightning, gymnasium and reinforce-lab (and wandb for
W&B sweeps) once, then forks one process per job, at most ``workers`` at a time. A job is
Hydra's own ``execute_job`` of hydra-joblib-launcher (``run_job``: job folder, ``.hydra/``,
logging, callbacks), handed to the child as the ``Process`` arguments, which under ``fork``
are inherited, not pickled (Hydra's task function, wrapped by ``@hydra.main``, cannot be
pickled). The result comes back through a pipe.

Why: the stock launcher hard-codes joblib's ``loky`` backend, whose workers are fresh Python
processes that import torch and Lightning again (about 5 s each on a laptop CPU), which on a
sweep of short jobs eats most of the gain of running several at once. Forking is safe here
because the parent has only imported libraries (no torch thread pool, CUDA context or W&B
service exists yet); a fresh fork per job also means no job inherits another job's state.

Measured gain (benchmarks/README.md, part (d), 8 default CartPole jobs on 2 cores, ``make
bench``): the first job starts after ≈ 5 s instead of ≈ 9–11 s; the sweep runs 1.68× faster
than the basic launcher (median of 3: 1.75, 1.70, 1.66), the stock loky workers 1.29×. (Those
runs used joblib's ``multiprocessing`` pool, whose forked workers took one job after another;
this module forks once per job, so a job no longer finds the lazy imports of the one before.
That is small: in a 3-job sweep run in one process (basic launcher, 300 env steps each) the
first job took 0.18 s from its ``.hydra/config.yaml`` to its ``summary.json`` and the later ones
0.11–0.15 s; ``make bench`` part (d) re-measures the speed-up.)

Checked against: hydra-core 1.3.8, hydra-joblib-launcher 1.2.0 (its private
``_core.execute_job``; the stock ``_core.launch`` is what runs when the trick is off),
joblib 1.6.0, CPython 3.11.7 ``multiprocessing`` ``fork`` context (Linux).

Of the plugin's other keys (``pre_dispatch``, ``batch_size``, ``timeout``, ``verbose``, …), which
tune joblib's task queue, none applies here: they apply to the stock ``loky`` path only.

Off (``RLAB_TRICKS=off`` or ``RLAB_TRICKS_OFF=forked_workers``), without ``fork`` (Windows),
or with ``hydra.launcher.backend=loky``: the stock launcher runs, i.e. joblib's ``loky``
workers, each importing everything again; the worker count is the same.
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Sequence

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, configure_log, filter_overrides, setup_globals
from hydra_plugins.hydra_joblib_launcher import _core
from omegaconf import OmegaConf

from . import enabled

log = logging.getLogger(__name__)

# What a reinforce-lab job imports first; loaded in the parent so forked jobs share them
# (wandb only when the sweep logs to W&B: the parent's import time is start-up every job waits for).
PRELOAD = ("torch", "pytorch_lightning", "gymnasium", "reinforce_lab.train")


def applies(backend: str | None) -> bool:
    """Whether jobs run on forked workers: the trick is on, ``backend: multiprocessing``, and ``fork`` exists."""
    return (enabled("forked_workers") and backend == "multiprocessing"
            and "fork" in multiprocessing.get_all_start_methods())


def launch(launcher: Any, job_overrides: Sequence[Sequence[str]], initial_job_idx: int,
           workers: int) -> list[JobReturn]:
    """Run the jobs of ``launcher`` (a set-up ``JoblibLauncher``) on forked workers, ``workers`` at a time.

    Mirrors the stock ``_core.launch`` (logging set-up, sweep folder, one log line per job),
    then forks instead of handing the jobs to joblib.
    """
    setup_globals()
    assert launcher.config is not None and launcher.task_function is not None
    assert launcher.hydra_context is not None
    config = launcher.config
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    sweep_dir = Path(str(config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    logger_target = str(config.get("logger", {}).get("_target_", ""))
    preload(PRELOAD + (("wandb",) if "Wandb" in logger_target else ()))
    log.info("Launching %d jobs on forked workers (n_jobs=%d,backend=multiprocessing)", len(job_overrides), workers)
    log.info("Launching jobs, sweep output dir : %s", sweep_dir)
    for idx, overrides in enumerate(job_overrides):
        log.info("\t#%d : %s", idx, " ".join(filter_overrides(overrides)))
    singleton_state = Singleton.get_state()
    jobs = [(initial_job_idx + idx, overrides, launcher.hydra_context, config, launcher.task_function,
             singleton_state) for idx, overrides in enumerate(job_overrides)]
    return run_forked(jobs, workers)


def preload(modules: Sequence[str]) -> None:
    """Import ``modules`` in the parent, so that every forked job starts with them loaded."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:  # an optional one (e.g. wandb) missing: the job will say so itself
            pass


def run_forked(jobs: Sequence[tuple], workers: int) -> list[JobReturn]:
    """``execute_job(*job)`` for each job in a forked process, at most ``workers`` at once; results in job order.

    A job that raises outside Hydra's ``run_job`` (which keeps a task's own exception in its
    ``JobReturn``) or whose process dies stops the launch with that error, as joblib does;
    the jobs still running are then terminated.
    """
    fork = multiprocessing.get_context("fork")
    results: dict[int, JobReturn] = {}
    running: dict[Connection, tuple[int, Any]] = {}
    waiting = list(enumerate(jobs))[::-1]  # popped from the end: job 0 first
    try:
        while waiting or running:
            while waiting and len(running) < max(1, workers):
                index, job = waiting.pop()
                receiver, sender = fork.Pipe(duplex=False)
                process = fork.Process(target=_run_job, args=(job, sender), name=f"hydra-job-{index}")
                process.start()
                sender.close()  # the child holds the only write end: its death reads as EOF here
                running[receiver] = (index, process)
            for receiver in wait(list(running)):
                index, process = running.pop(receiver)
                results[index] = _receive(receiver, process, number=jobs[index][0])
    finally:
        for receiver, (_, process) in running.items():
            process.terminate()
            process.join()
            receiver.close()
    return [results[i] for i in range(len(jobs))]


def _run_job(job: tuple, sender: Connection) -> None:
    """In the forked child: Hydra's ``execute_job``, its result (or exception) sent to the parent.

    The result travels by plain pickle, which refuses the structured launcher config inside
    ``hydra_cfg`` (Hydra's plugin scan re-executes the plugin modules, so the class found by
    name is not the one the config was made from): it is sent as a plain config.
    """
    try:
        result: Any = _core.execute_job(*job)
        result.hydra_cfg = OmegaConf.create(OmegaConf.to_container(result.hydra_cfg))
        result.cfg = OmegaConf.create(OmegaConf.to_container(result.cfg))
    except Exception as exc:  # noqa: BLE001 -- re-raised in the parent, as joblib does
        result = exc
    sender.send(result)
    sender.close()


def _receive(receiver: Connection, process: Any, number: int) -> JobReturn:
    """The result job ``number`` (Hydra's job index) sent; its exception re-raised, or an error if it died without one."""
    try:
        result = receiver.recv()
    except EOFError:
        result = None
    finally:
        receiver.close()
    process.join()
    if isinstance(result, BaseException):
        raise result
    if not isinstance(result, JobReturn):
        raise RuntimeError(f"job #{number} ended (exit code {process.exitcode}) without returning a result")
    return result
