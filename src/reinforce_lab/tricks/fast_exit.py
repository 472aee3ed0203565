"""Trick ``fast_exit``: the console scripts leave without the interpreter's module teardown.

What: after ``main`` returns, do what interpreter shutdown does first, in its order (stop
and join non-daemon threads with ``threading._shutdown``, run the ``atexit`` handlers such
as W&B's, ``logging``'s and ``multiprocessing``'s with ``atexit._run_exitfuncs``, flush the
standard streams), then end the process with :func:`os._exit`.

Why: once PyTorch Lightning is imported (it imports ``torch._dynamo``, sympy and
torchmetrics) the interpreter's teardown (garbage collection, clearing hundreds of thousands
of module-level objects) takes 1.2–2 s after all work is done, and nothing needs it.

Measured gain (benchmarks/README.md, part (e), ``make bench``): start-up of a one-batch
``rlab-train`` 4.2 s against 5.4 s with the normal exit (``python -m reinforce_lab.train``);
part (d): a sweep's "after the last job" time fell from 1.3–1.5 s to 0.1 s, for both launchers.

Checked against: CPython 3.11.7 (``threading._shutdown`` and ``atexit._run_exitfuncs`` are
private; where ``threading._shutdown`` is missing the non-daemon threads are joined by hand).

Off (``RLAB_TRICKS=off`` or ``RLAB_TRICKS_OFF=fast_exit``): ``main`` runs and the process
exits the normal way (``SystemExit`` through the interpreter, full teardown), exactly as
``python -m reinforce_lab.train`` always does.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import Callable, NoReturn

from . import enabled


def run_and_exit(main: Callable[[], object]) -> NoReturn:
    """Run ``main`` and end the process with its exit status, skipping the teardown when the trick is on.

    ``SystemExit`` becomes a status as the interpreter does it (``None`` → 0, an int as is,
    anything else printed to stderr → 1). Any other exception propagates unchanged, with the
    usual traceback and a normal (slow) exit. A bad trick switch is a one-line error, exit 2.
    """
    try:
        fast = enabled("fast_exit")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if not fast:
        main()
        raise SystemExit(0)
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
    """The status the interpreter gives ``SystemExit(code)``, printing a message as it would."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1
