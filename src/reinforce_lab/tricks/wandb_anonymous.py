"""Trick ``wandb_anonymous``: drop the ``anonymous`` argument Lightning's ``WandbLogger`` always passes.

What: removes ``anonymous`` from the logger's private ``_wandb_init`` keyword arguments before
the run starts.

Why: pytorch-lightning 2.6 always passes ``anonymous=None`` to ``wandb.init``; wandb ≥ 0.22
deprecated the setting and prints ``wandb: WARNING The anonymous setting has no effect and will
be removed in a future version.`` on every run, even with ``WANDB_SILENT=true`` (checked on
2026-12-01: one such line per ``rlab-train`` run without the trick, none with it). In a sweep
that is one meaningless warning per job in every log.

Checked against: pytorch-lightning 2.6.6 (``WandbLogger._wandb_init``), wandb 0.31.0.

Off (``RLAB_TRICKS=off`` or ``RLAB_TRICKS_OFF=wandb_anonymous``): the logger is left as
Lightning made it and W&B prints its warning.
"""

from __future__ import annotations

from typing import Any

from . import enabled


def drop_anonymous(logger: Any) -> None:
    """Remove ``anonymous`` from a ``WandbLogger``'s init arguments (before its run starts)."""
    if enabled("wandb_anonymous"):
        getattr(logger, "_wandb_init", {}).pop("anonymous", None)
