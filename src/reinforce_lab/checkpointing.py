"""Checkpoints that survive crashes, and resuming a run from one.

``checkpoints/last.ckpt`` is rewritten atomically (write a temporary file, then rename), so
a kill at any moment leaves either the previous or the new checkpoint, never half of one.
Resuming truncates ``episodes.csv`` to the episodes the checkpoint had seen: episodes
recorded after the last checkpoint are trained again, so no episode is missing or doubled.
"""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from .errors import ConfigError


class CheckpointError(OSError):
    """The checkpoint could not be written (full disk, unwritable folder...)."""


def save_atomic(trainer: pl.Trainer, path: Path) -> None:
    """``trainer.save_checkpoint`` into ``path`` via a temporary file and ``os.replace``.

    Raises:
        CheckpointError: with the path and the OS's reason; the previous checkpoint is intact.
    """
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        trainer.save_checkpoint(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise CheckpointError(f"could not write checkpoint {path}: {exc.strerror or exc}; "
                              "the previous checkpoint is kept") from None


class PeriodicCheckpoint(pl.Callback):
    """Saves ``<run dir>/checkpoints/last.ckpt`` every ``every_s`` seconds and/or every ``every_updates`` updates.

    Args:
        every_s: wall-clock interval (None: off).
        every_updates: update interval (None: off).
    """

    def __init__(self, every_s: float | None = None, every_updates: int | None = None) -> None:
        self.every_s, self.every_updates = every_s, every_updates
        self._last = time.monotonic()
        self.saved = 0

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        due = (self.every_updates is not None and (batch_idx + 1) % self.every_updates == 0) or (
            self.every_s is not None and time.monotonic() - self._last >= self.every_s)
        if due and not trainer.should_stop:  # a stopping run is saved by train.run itself
            save_atomic(trainer, checkpoint_path(trainer.default_root_dir))
            self._last = time.monotonic()
            self.saved += 1


def checkpoint_path(run_dir: str | Path) -> Path:
    """Where a run's checkpoint lives: ``RUN/checkpoints/last.ckpt``."""
    return Path(run_dir) / "checkpoints" / "last.ckpt"


def read_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint written by rlab-train, or raise a one-line :class:`ConfigError`."""
    if not path.is_file():
        raise ConfigError("resume", path.parent.parent, "a run folder with checkpoints/last.ckpt "
                          f"({path} does not exist)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a corrupt file
        raise ConfigError("resume", path.parent.parent,
                          f"a readable checkpoint ({path.name} is corrupt: {type(exc).__name__})") from None
    if not isinstance(state, dict) or "rlab" not in state or "state_dict" not in state:
        raise ConfigError("resume", path.parent.parent, f"a checkpoint written by rlab-train ({path.name} is not)")
    if "ledger" not in state["rlab"]:  # written before the agent ledger (2026-12): counters in another layout
        raise ConfigError("resume", path.parent.parent, f"a checkpoint of this version of rlab-train ({path.name} "
                          "is older: evaluate it with rlab-eval, or train again)")
    return state


def truncate_episodes(path: Path, counts: dict[int, int] | int) -> list[dict[str, str]]:
    """Keep only the rows the checkpoint had seen; returns the kept rows.

    Args:
        path: ``episodes.csv``.
        counts: episodes per agent seed (``{seed: n}``), or one count for a plain run.
    """
    if not path.is_file():
        return []
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        fields = reader.fieldnames or []
        rows = list(reader)

    def keep(row: dict[str, str]) -> bool:
        limit = counts if isinstance(counts, int) else counts.get(int(row.get("seed") or 0), 0)
        return int(row["episode"]) <= limit

    kept = [r for r in rows if keep(r)]
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(kept)
    os.replace(tmp, path)
    return kept
