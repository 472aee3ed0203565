"""Console entry points (``rlab-train``, ``rlab-eval``, ``rlab-report``) that exit without teardown.

Once PyTorch Lightning is imported (it imports ``torch._dynamo``, sympy and torchmetrics),
the interpreter's own shutdown (garbage collection and clearing hundreds of thousands of
module-level objects) takes 1.2–2 s on a laptop CPU, after all work is done: measured in
``benchmarks/`` as part (e), it was a fifth of a short job's start-up cost and the whole
"after the last job" time of a sweep. Nothing needs that teardown, so the entry points do
what the interpreter does first, in its order (stop and wait for non-daemon threads, run ``atexit``
handlers such as W&B's, ``logging`` and ``multiprocessing`` clean-up, flush the standard
streams), then leave with :func:`os._exit`.

The ``main`` functions of the modules keep the normal behaviour for in-process callers
(``python -m reinforce_lab.train`` included).
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import Callable, NoReturn


def run_and_exit(main: Callable[[], object]) -> NoReturn:
    """Run ``main`` and end the process with its exit status, skipping the interpreter's teardown.

    ``SystemExit`` is turned into a status as the interpreter does (``None`` → 0, an int as
    is, anything else printed to stderr → 1). Any other exception propagates unchanged, with
    the usual traceback and a normal (slow) exit.
    """
    try:
        main()
        status = 0
    except SystemExit as exc:
        status = _exit_status(exc.code)
    _wait_for_threads()
    atexit._run_exitfuncs()  # noqa: SLF001 -- the interpreter's own atexit pass, done by hand
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):  # closed pipe or stream; nothing to save
            pass
    os._exit(status)


def _wait_for_threads() -> None:
    """What interpreter shutdown does first: ``threading._shutdown``.

    It runs the hooks that tell worker threads to stop (``concurrent.futures`` and joblib's
    ``loky`` executor register them) and then joins the non-daemon threads; joining without
    those hooks would wait forever on such an executor's management thread.
    """
    shutdown = getattr(threading, "_shutdown", None)
    if shutdown is not None:
        shutdown()
        return
    for thread in threading.enumerate():  # a Python without the hook: join what would be joined
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


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
