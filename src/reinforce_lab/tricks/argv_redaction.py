"""Trick ``argv_redaction``: mask secrets in ``sys.argv`` while W&B starts and records it.

What: for the duration of the ``with`` block, every secret in ``sys.argv`` is replaced by
``***`` (:func:`reinforce_lab.redaction.redact`); the original list is put back afterwards.

Why: W&B records the command line (``wandb.Settings._args``, read from ``sys.argv`` when the
run starts) in the run's metadata, in ``wandb-metadata.json`` and in the ``.wandb`` file. A
key given on the command line (``+train.api_token=…``) would be written there in clear. W&B
has no setting that masks it, only one that drops all metadata.

Gain: not speed but information kept: the run's metadata (host, Python, git commit, GPU, the
masked command line) stays in W&B while no secret reaches any file
(tests/test_reliability.py, ``test_planted_api_keys_never_reach_any_file``).

Checked against: wandb 0.31.0 (``Settings._args`` is a computed field reading ``sys.argv[1:]``).

Off (``RLAB_TRICKS=off`` or ``RLAB_TRICKS_OFF=argv_redaction``): ``sys.argv`` is left alone
and, only when a secret occurs in it, the block is given W&B's public setting
``x_disable_meta=True``, which stops W&B from collecting system metadata, the command line
included (checked with wandb 0.31.0: an offline run started with a secret in ``sys.argv``
left it in ``run-*.wandb`` without the setting and nowhere with it). The price: such a run
has no host, git or Python metadata in W&B.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any, Iterator

from ..redaction import redact
from . import enabled


@contextlib.contextmanager
def redacted_argv(secrets: list[str]) -> Iterator[dict[str, Any]]:
    """Keep ``secrets`` out of the command line W&B records while the block starts the run.

    Yields extra keyword arguments for ``wandb.Settings`` (empty unless the trick is off and a
    secret is on the command line): pass them to the settings of the run started in the block.
    """
    if not enabled("argv_redaction"):
        leaks = any(s in arg for s in secrets for arg in sys.argv)
        yield {"x_disable_meta": True} if leaks else {}
        return
    original = sys.argv[:]
    sys.argv[:] = [redact(a, secrets) for a in original]
    try:
        yield {}
    finally:
        sys.argv[:] = original
