"""Build ``benchmarks/.peers-venv``: the venv in which part (h) runs Tianshou and Stable-Baselines3.

    .venv/bin/python benchmarks/peers/build_venv.py      # build it now (part (h) does it on first use)

Why a venv of their own: Tianshou 2.0.1 pins and pulls packages rlab does not want in its
environment (numba, pettingzoo, tensorboard, h5py, an older ``virtualenv`` …), and neither peer
belongs among rlab's dependencies. The venv is made by the same base interpreter as rlab's
``.venv`` (so the same CPU torch wheel fits), then ``pip install -c constraints.txt`` of the
three requirements below, with pip's own configuration (the machine's find-links, where
``make install`` also gets ``torch==2.13.0``). A dry run comes first: a plan that would install
any ``nvidia-*`` package, ``triton`` or a torch other than 2.13.0 is refused, so a bare PyPI
torch (gigabytes of CUDA libraries) is never downloaded. A stamp records the constraints the venv
was built with; changed constraints reinstall.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

PEERS = Path(__file__).resolve().parent
VENV = PEERS.parent / ".peers-venv"
PYTHON = VENV / "bin" / "python"
CONSTRAINTS = PEERS / "constraints.txt"
REQUIREMENTS = ("torch==2.13.0", "tianshou==2.0.1", "stable-baselines3==2.9.2")
STAMP = VENV / ".installed-stamp"
SHOWN = ("torch", "tianshou", "stable-baselines3", "gymnasium", "numpy", "numba")


def _stamp_text() -> str:
    return hashlib.sha256(CONSTRAINTS.read_bytes() + " ".join(REQUIREMENTS).encode()).hexdigest()


def _pip(*args: str, timeout: float) -> subprocess.CompletedProcess:
    cmd = [str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check", "-c", str(CONSTRAINTS), *args,
           *REQUIREMENTS]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("WARNING: Location")]
    return lines[-1][:200] if lines else "(no output)"


def _refused(report: dict) -> str | None:
    """Why the dry run's plan must not be installed, or None."""
    plan = {i["metadata"]["name"].lower(): i["metadata"]["version"] for i in report.get("install", [])}
    heavy = sorted(n for n in plan if n.startswith("nvidia-") or n == "triton")
    if heavy:
        return f"pip would install CUDA packages ({', '.join(heavy[:3])}…): refused"
    if "torch" in plan and plan["torch"].split("+")[0] != "2.13.0":
        return f"pip would install torch {plan['torch']}, not 2.13.0: refused"
    return None


def ensure_venv(timeout: float = 900) -> str | None:
    """Make sure the peers' venv is installed; None when it is, else why not (one line)."""
    if PYTHON.exists() and STAMP.exists() and STAMP.read_text().strip() == _stamp_text():
        return None
    try:
        if not PYTHON.exists():
            base = getattr(sys, "_base_executable", sys.executable)
            subprocess.run([base, "-m", "venv", str(VENV)], check=True, capture_output=True, timeout=120)
        dry = _pip("--dry-run", "--quiet", "--report", "-", timeout=timeout)
        if dry.returncode != 0:
            return f"could not build benchmarks/.peers-venv (offline?): pip: {_last_line(dry.stderr)}"
        report = json.loads(dry.stdout[dry.stdout.index("{"):])
        if why := _refused(report):
            return why
        res = _pip("--quiet", timeout=timeout)
        if res.returncode != 0:
            return f"could not build benchmarks/.peers-venv: pip: {_last_line(res.stderr)}"
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        return f"could not build benchmarks/.peers-venv: {type(exc).__name__}: {str(exc)[:160]}"
    STAMP.write_text(_stamp_text() + "\n")
    return None


def versions() -> dict[str, str | None]:
    """The peers' package versions, read in their venv."""
    code = ("import json, importlib.metadata as m\n"
            "def v(d):\n    try: return m.version(d)\n    except m.PackageNotFoundError: return None\n"
            f"print(json.dumps({{d: v(d) for d in {list(SHOWN)!r}}}))")
    res = subprocess.run([str(PYTHON), "-c", code], capture_output=True, text=True, timeout=60)
    return json.loads(res.stdout) if res.returncode == 0 else {}


if __name__ == "__main__":
    why = ensure_venv()
    print(f"build_venv: {why}" if why else f"build_venv: {VENV} ready: {versions()}")
    sys.exit(1 if why else 0)
