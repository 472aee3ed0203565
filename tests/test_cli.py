"""The console entry points leave without the interpreter's teardown but lose nothing on the way."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import BIN


def _run(body: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """Run ``body`` as the ``main`` of :func:`run_and_exit` in a fresh interpreter."""
    script = "\n".join([
        "import atexit, sys, threading, time",
        "from reinforce_lab.cli import run_and_exit",
        f"out = {str(tmp_path)!r}",
        "def main():",
        textwrap.indent(textwrap.dedent(body).strip(), "    "),
        "run_and_exit(main)",
        "print('not reached')",
    ])
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("body", "status", "stderr"), [
    ("pass", 0, ""),
    ("sys.exit()", 0, ""),
    ("sys.exit(3)", 3, ""),
    ("sys.exit('error: bad key')", 1, "error: bad key\n"),
])
def test_exit_status_is_what_the_interpreter_would_give(tmp_path, body, status, stderr):
    proc = _run(body, tmp_path)
    assert proc.returncode == status
    assert proc.stderr == stderr
    assert "not reached" not in proc.stdout


def test_buffered_output_atexit_handlers_and_threads_are_not_lost(tmp_path):
    # stdout to a pipe is block-buffered: without the flush the line would vanish with os._exit.
    proc = _run("""
        print("buffered line", end="")
        atexit.register(lambda: open(out + "/atexit", "w").write("ran"))
        def late():
            time.sleep(0.5)
            open(out + "/thread", "w").write("joined")
        threading.Thread(target=late).start()
    """, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "buffered line"
    assert (tmp_path / "atexit").read_text() == "ran"
    assert (tmp_path / "thread").read_text() == "joined"


def test_an_executor_left_open_does_not_hang_the_exit(tmp_path):
    # joblib's loky backend leaves such an executor behind; its threads wait for a shutdown hook.
    proc = _run("""
        from concurrent.futures import ThreadPoolExecutor
        global pool  # still referenced at exit, so its threads wait for the shutdown hook
        pool = ThreadPoolExecutor(2)
        print(pool.submit(lambda: 41 + 1).result())
    """, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "42\n"


def test_other_exceptions_keep_their_traceback(tmp_path):
    proc = _run("raise RuntimeError('boom')", tmp_path)
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "RuntimeError: boom" in proc.stderr


@pytest.mark.parametrize("name", ["rlab-train", "rlab-eval", "rlab-report"])
def test_console_scripts_use_the_fast_exit(name):
    text = (BIN / name).read_text()
    assert "from reinforce_lab.cli import" in text
