"""Run records: the W&B run (offline unless the user has a key), ``summary.json`` and the closing message.

W&B conventions (../shared/design.md): project ``reinforce-lab``; offline unless
``WANDB_MODE`` is set or an API key is available (``WANDB_API_KEY`` or a ``~/.netrc``
entry for the W&B host); ``env_step`` is the x-axis of every ``train/*`` and ``eval/*``
metric; one run per job, always finished. API keys are never read into the config,
printed or logged.
"""

from __future__ import annotations

import json
import math
import netrc
import os
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

SUMMARY_FILE = "summary.json"


def wandb_mode(requested: str | None = None) -> str:
    """``offline``/``online``/``disabled``: the config's choice, then ``WANDB_MODE``, then key presence."""
    if requested:
        return str(requested)
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    return "online" if has_wandb_key() else "offline"


def has_wandb_key() -> bool:
    """True when W&B could authenticate without a prompt (the key itself is never returned)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or "api.wandb.ai"
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def start_wandb(factory: Any, mode: str, init_timeout: float, **kwargs: Any) -> tuple[Any, Any, str]:
    """Create the Lightning ``WandbLogger`` and its run; fall back to offline if online fails.

    A dead server or no network makes ``wandb.init`` fail after ``init_timeout`` seconds (and
    W&B's own retries); the run then continues offline with a warning, nothing lost: the
    offline run can be uploaded later with ``wandb sync``.

    Returns:
        (logger, run, mode actually used).
    """
    import wandb

    def make(m: str) -> Any:
        logger = factory(mode=m, settings=wandb.Settings(init_timeout=init_timeout), **kwargs)
        # pytorch-lightning 2.6 always passes `anonymous`, which wandb ≥ 0.22 warns about.
        getattr(logger, "_wandb_init", {}).pop("anonymous", None)
        return logger

    logger = make(mode)
    try:
        for attempt in range(45):
            try:
                run = logger.experiment
                break
            except Exception as exc:  # noqa: BLE001
                # Resuming right after a SIGKILL: the killed process's W&B service still holds
                # the run id for a few seconds until it notices its parent is gone.
                if "in use" not in str(exc) or attempt == 44:
                    raise
                stop_orphaned_wandb_services()
                time.sleep(2.0)
                logger = make(mode)
    except Exception as exc:  # noqa: BLE001 - any failure to reach W&B
        if mode != "online":
            raise
        print(f"[rlab] warning: W&B online start failed ({type(exc).__name__}: {str(exc).splitlines()[0][:160]}); "
              "continuing offline — upload later with `wandb sync`", file=sys.stderr, flush=True)
        import wandb as _wandb

        if _wandb.run is not None:
            _wandb.run.finish(exit_code=1, quiet=True)
        mode = "offline"
        logger = make(mode)
        run = logger.experiment
    setup_wandb_run(run)
    return logger, run, mode


def stop_orphaned_wandb_services() -> int:
    """Stop W&B service processes whose parent has died (Linux), e.g. after a SIGKILL.

    Each training process starts a ``wandb-core`` helper that watches its parent's pid; after
    the parent is killed it can linger, still holding the run id, and a resumed run with the
    same id is then refused ("run ID is in use"). Only helpers whose watched pid no longer
    exists are stopped. Returns how many were.
    """
    import signal

    stopped = 0
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if not args or not args[0].endswith(b"wandb-core") or b"--pid" not in args:
            continue
        try:
            parent = int(args[args.index(b"--pid") + 1])
            if not Path(f"/proc/{parent}").exists():
                os.kill(int(proc.name), signal.SIGTERM)
                stopped += 1
        except (ValueError, IndexError, OSError):
            continue
    return stopped


def setup_wandb_run(run: Any) -> None:
    """Declare ``env_step`` as the x-axis of the contract's metrics."""
    run.define_metric("env_step")
    for pattern in ("train/*", "eval/*"):
        run.define_metric(pattern, step_metric="env_step")


def wandb_run_dir(run: Any) -> Path:
    """The local folder of a W&B run (``.../wandb/offline-run-…``), what ``wandb sync``/``leet`` take."""
    return Path(run.dir).parent


def write_summary(run_dir: Path, summary: dict[str, Any]) -> Path:
    """Write ``summary.json`` atomically (a crash mid-write never leaves half a file)."""
    path = Path(run_dir) / SUMMARY_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(_finite(summary), indent=2) + "\n")
    tmp.replace(path)
    return path


def closing_message(run_dir: Path, summary: dict[str, Any], mode: str | None) -> str:
    """The few lines printed at the end of a run: results, files, how to look at W&B."""
    lines = [f"[rlab] status: {summary['status']} ({summary.get('stop_reason') or 'budget spent'})"]
    fr = summary.get("final_return")
    fr_txt = "n/a" if fr is None else f"{fr:.2f}"
    lines.append(f"[rlab] final return (mean of last {summary.get('final_window', 100)} episodes): {fr_txt}"
                 f" after {summary['episodes']:,} episodes / {summary['env_steps']:,} env steps"
                 f" in {summary['wall_s']:.1f} s ({summary['env_steps_per_s']:,.0f} steps/s)")
    if summary.get("target_return") is not None:
        solved = summary.get("solved_at_episode")
        lines.append(f"[rlab] target {summary['target_return']}: "
                     + (f"reached at episode {solved}" if solved else "not reached"))
    lines.append(f"[rlab] run folder: {run_dir}  (episodes.csv, summary.json, checkpoints/last.ckpt)")
    wdir = summary.get("wandb_run_dir")
    if wdir:
        lines.append(f"[rlab] W&B run ({mode}): {wdir}")
        if mode == "offline":
            lines.append(f"[rlab]   look at it: wandb leet {wdir}   upload it: wandb sync {wdir}")
    return "\n".join(lines)


def _finite(obj: Any) -> Any:
    """JSON has no NaN/inf: write them as null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj
