"""Trick ``wandb_orphans``: before resuming a W&B run, stop ``wandb-core`` helpers whose parent died.

What: scan ``/proc`` (Linux) for ``wandb-core`` processes whose ``--pid`` (the process they
serve) no longer exists, and send them SIGTERM.

Why: each training process starts a ``wandb-core`` helper that watches its parent's pid.
After the parent is killed (SIGKILL, out of memory) the helper can linger, still holding the
run id, and a resumed run with the same id is refused ("run ID is in use") until it goes.

Measured gain: the commit that added it (e93a515, "resume after SIGKILL") gives no figure. On
2026-12-01 with wandb 0.31.0, an offline run's helper exited by itself 0.3–0.6 s after its
parent's SIGKILL (two tries; a shell loop polled ``/proc`` every 0.2 s), so with this version
the trick saves at most one 2-s retry of the W&B start; it stays because the helper's delay is
W&B's to change and the scan is cheap (1.2 ms over ~140 processes, best of 3 × 20 scans), run
once per resume and once per "in use" retry.

Checked against: wandb 0.31.0 (the helper is ``…/wandb/bin/wandb-core … --pid PID``), Linux
``/proc``; elsewhere there is no ``/proc`` and nothing is stopped.

Off (``RLAB_TRICKS=off`` or ``RLAB_TRICKS_OFF=wandb_orphans``): nothing is scanned or
stopped; the W&B start retries "in use" every 2 s (up to 90 s) until the helper has noticed
its parent is gone and exited by itself.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from . import enabled


def stop_orphaned_wandb_services() -> int:
    """Stop W&B service processes whose parent has died; returns how many were (0 when the trick is off)."""
    if not enabled("wandb_orphans"):
        return 0
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
