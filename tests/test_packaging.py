"""The config tree ships inside the package: a regular (non-editable) install finds it from any directory.

The joblib launcher is registered by packaging alone: Hydra's plugin scan finds it in editable
and regular installs, with no code registering it by hand."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Prints the file of the class Hydra's plugin scan registered for hydra/launcher=joblib's target.
DISCOVER_LAUNCHER = (
    "import sys; from hydra.core.plugins import Plugins; from hydra.plugins.launcher import Launcher\n"
    "found = {f'{c.__module__}.{c.__name__}' for c in Plugins.instance().discover(Launcher)}\n"
    "assert 'hydra_plugins.rlab_launchers.fork_joblib.ForkJoblibLauncher' in found, found\n"
    "print(sys.modules['hydra_plugins.rlab_launchers.fork_joblib'].__file__)"
)


def test_wheel_contains_configs_and_composes_from_elsewhere(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path / "dist"), str(ROOT)], check=True, capture_output=True, timeout=300)
    wheel = next((tmp_path / "dist").glob("reinforce_lab-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for needed in ("reinforce_lab/conf/train.yaml", "reinforce_lab/conf/eval.yaml",
                   "reinforce_lab/conf/env/cartpole.yaml", "reinforce_lab/conf/loss/log_prob.yaml",
                   "reinforce_lab/tricks/__init__.py", "hydra_plugins/rlab_launchers/fork_joblib.py"):
        assert needed in names
    assert "hydra_plugins/__init__.py" not in names  # a namespace shared with the other plugins
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    code = ("import reinforce_lab, hydra; from hydra import compose, initialize_config_module\n"
            "with initialize_config_module('reinforce_lab.conf', version_base='1.3'):\n"
            "    cfg = compose('train', overrides=['env=pendulum'])\n"
            "print(reinforce_lab.__file__); print(cfg.env.id)\n" + DISCOVER_LAUNCHER)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(site)})
    assert out.returncode == 0, out.stderr
    path, env_id, launcher_file = out.stdout.split()
    assert path.startswith(str(site)) and env_id == "Pendulum-v1"
    assert launcher_file.startswith(str(site))  # Hydra found the launcher the wheel installed


def test_hydra_finds_the_joblib_launcher_in_the_installed_package(tmp_path):
    # A fresh interpreter, nothing registered by hand: Hydra's own scan of the `hydra_plugins`
    # namespace finds the launcher of this (editable, for development) install.
    out = subprocess.run([sys.executable, "-c", DISCOVER_LAUNCHER], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert Path(out.stdout.strip()).parts[-3:] == ("hydra_plugins", "rlab_launchers", "fork_joblib.py")
