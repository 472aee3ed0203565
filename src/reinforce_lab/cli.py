"""Console entry points (``rlab-train``, ``rlab-eval``, ``rlab-report``).

Each runs the ``main`` of its module through :func:`~reinforce_lab.tricks.fast_exit.run_and_exit`,
which (trick ``fast_exit``, on by default) skips the interpreter's module teardown, 1.2–2 s
per command once Lightning is loaded. ``RLAB_TRICKS=off`` or ``RLAB_TRICKS_OFF=fast_exit``
gives the normal exit; ``python -m reinforce_lab.train`` always has it.
"""

from __future__ import annotations

from typing import NoReturn

from .tricks.fast_exit import run_and_exit

__all__ = ["evaluate", "report", "run_and_exit", "train"]


def train() -> NoReturn:
    """``rlab-train``: see :func:`reinforce_lab.train.main`."""
    from .train import main

    run_and_exit(main)


def evaluate() -> NoReturn:
    """``rlab-eval``: see :func:`reinforce_lab.eval.main`."""
    from .eval import main

    run_and_exit(main)


def report() -> NoReturn:
    """``rlab-report``: see :func:`reinforce_lab.report.main`."""
    from .report import main

    run_and_exit(main)
