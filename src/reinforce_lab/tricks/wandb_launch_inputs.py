"""Trick ``wandb_launch_inputs``: ``wandb.init`` does not import W&B Launch to find nothing.

What: wraps ``wandb.Run._detect_and_apply_job_inputs`` (private), which ``wandb.init`` calls
on every run. It imports ``wandb.sdk.launch.inputs.internal`` (and with it W&B Launch's
agent, the public API client and its generated GraphQL models) to apply the job inputs a
program staged with ``wandb.sdk.launch.manage_config_file``/``manage_wandb_config``. Those
calls store them in a singleton of that very module, so while the module has never been
imported nothing can be staged: the wrapper then returns at once; otherwise it calls the
original. The result is the same in every case.

Why: that import was the largest single part of ``wandb.init`` in offline mode (``python
-X importtime`` of an ``rlab-train`` run: 0.5–0.8 s on a quiet machine, 2.6 s on a loaded
one), paid by every job. Measured gain: benchmarks part (e), together with ``lean_imports``
(6.69 s → 2.05 s of fixed cost over ``import torch`` per job, 2026-12-02).

Checked against: wandb 0.31.0 (``wandb/sdk/wandb_run.py``, ``Run._detect_and_apply_job_inputs``;
``wandb/sdk/launch/inputs/internal.py``, ``StagedLaunchInputs``).

Off (``RLAB_TRICKS=off`` or ``RLAB_TRICKS_OFF=wandb_launch_inputs``): the original method
runs (the switch is read at each call).
"""

from __future__ import annotations

import sys
from typing import Any

from . import enabled

STAGING_MODULE = "wandb.sdk.launch.inputs.internal"


def skip_unstaged_launch_inputs() -> None:
    """Install the wrapper on ``wandb.Run`` (once; wandb must be importable)."""
    from wandb.sdk import wandb_run

    original = wandb_run.Run._detect_and_apply_job_inputs  # noqa: SLF001 -- the method wandb.init calls
    if getattr(original, "_rlab_wrapped", False):
        return

    def detect_and_apply_job_inputs(self: Any) -> None:
        if enabled("wandb_launch_inputs") and STAGING_MODULE not in sys.modules:
            return  # StagedLaunchInputs lives in that module: nothing staged without importing it
        original(self)

    detect_and_apply_job_inputs._rlab_wrapped = True  # type: ignore[attr-defined]
    wandb_run.Run._detect_and_apply_job_inputs = detect_and_apply_job_inputs  # noqa: SLF001
