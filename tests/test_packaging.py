"""The config tree ships inside the package: a regular (non-editable) install finds it from any directory."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_contains_configs_and_composes_from_elsewhere(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path / "dist"), str(ROOT)], check=True, capture_output=True, timeout=300)
    wheel = next((tmp_path / "dist").glob("reinforce_lab-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for needed in ("reinforce_lab/conf/train.yaml", "reinforce_lab/conf/eval.yaml",
                   "reinforce_lab/conf/env/cartpole.yaml", "reinforce_lab/conf/loss/log_prob.yaml"):
        assert needed in names
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    code = ("import reinforce_lab, hydra; from hydra import compose, initialize_config_module\n"
            "with initialize_config_module('reinforce_lab.conf', version_base='1.3'):\n"
            "    cfg = compose('train', overrides=['env=pendulum'])\n"
            "print(reinforce_lab.__file__); print(cfg.env.id)")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(site)})
    assert out.returncode == 0, out.stderr
    path, env_id = out.stdout.split()
    assert path.startswith(str(site)) and env_id == "Pendulum-v1"
