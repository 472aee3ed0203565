"""A bare ``pip install reinforce-lab`` (no extras): single runs, basic sweeps, one line for a missing extra.

The bare install is simulated from this venv, fast and without a network: a "site" folder in
``tmp_path`` holds symlinks to the files of reinforce-lab's dependency closure *without
extras* (read from the installed distributions' metadata and RECORDs), plus pip and
setuptools as a fresh venv has them. Every other distribution (the hydra plugins of
``sweeps``, matplotlib/pandas/rliable of ``report``, MuJoCo, pytest, ...) is absent. Folders
that several distributions share (the ``hydra_plugins`` namespace) are rebuilt with only the
included distributions' entries. The entry points then run in ``python -S`` with that site
only (``site.addsitedir`` processes its ``.pth`` files: the editable install's finder adds
``src/hydra_plugins`` and ``src/reinforce_lab``, as in the real venv).
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from reinforce_lab import extras
from reinforce_lab.errors import ConfigError

SITE_PACKAGES = Path(metadata.distribution("reinforce-lab").locate_file(""))
SEEDED = ("pip", "setuptools")  # what `python -m venv` installs on CPython 3.11
TINY = ["train.max_env_steps=300", "env.num_envs=2", "algo.episodes_per_update=2", "logger=none",
        "train.progress=false"]
EXTRA_PLUGINS = ("hydra_plugins.hydra_joblib_launcher", "hydra_plugins.hydra_submitit_launcher",
                 "hydra_plugins.hydra_optuna_sweeper", "joblib", "submitit", "optuna",
                 "matplotlib", "pandas", "rliable", "mujoco", "Box2D", "moviepy", "pytest")


def dependency_closure(root: str = "reinforce-lab") -> set[str]:
    """Canonical names of ``root`` and everything it requires without its extras (its deps' extras included)."""
    dists = {canonicalize_name(d.metadata["Name"]): d for d in metadata.distributions()}
    extras_of: dict[str, set[str]] = {}
    todo = [(canonicalize_name(root), frozenset[str]())]
    while todo:
        name, extras = todo.pop()
        if name not in dists or (name in extras_of and extras <= extras_of[name]):
            continue
        extras_of.setdefault(name, set()).update(extras)
        for line in dists[name].requires or []:
            req = Requirement(line)
            envs = [{"extra": e} for e in (extras_of[name] or {""})]
            if req.marker is None or any(req.marker.evaluate(env) for env in envs):
                todo.append((canonicalize_name(req.name), frozenset(req.extras)))
    return set(extras_of)


def _site_files(names: set[str]) -> set[PurePosixPath]:
    """The site-packages paths (relative) of the files that distributions ``names`` installed there."""
    files: set[PurePosixPath] = set()
    for dist in metadata.distributions():
        if canonicalize_name(dist.metadata["Name"]) in names:
            files |= {PurePosixPath(f) for f in dist.files or [] if not str(f).startswith("..")}
    return files


def build_bare_site(dest: Path) -> Path:
    """``dest`` filled with symlinks to this venv's site-packages entries of a bare install; returns ``dest``."""
    all_names = {canonicalize_name(d.metadata["Name"]) for d in metadata.distributions()}
    kept = dependency_closure() | set(SEEDED)
    wanted, unwanted = _site_files(kept), _site_files(all_names - kept)
    blocked = {p for f in unwanted for p in (f, *f.parents)}  # paths with an excluded file at or below them
    children: dict[PurePosixPath, set[str]] = {}
    for f in wanted:
        for parent in f.parents:
            if parent in blocked:
                children.setdefault(parent, set()).add(f.parts[len(parent.parts)])

    def link(rel: PurePosixPath) -> None:
        """Link ``rel`` whole if no excluded file lies at or below it, else rebuild it as a folder."""
        if rel not in blocked:
            (dest / rel).symlink_to(SITE_PACKAGES / rel)
            return
        (dest / rel).mkdir(parents=True, exist_ok=True)
        for child in sorted(children.get(rel, ())):
            link(rel / child)

    dest.mkdir(parents=True)
    for top in sorted({PurePosixPath(f.parts[0]) for f in wanted}):
        link(top)
    return dest


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bare install's site folder (built once for the module)."""
    return build_bare_site(tmp_path_factory.mktemp("bare") / "site")


def run_in_bare(site: Path, cwd: Path, entry: str, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    """Run the console entry point ``entry`` (``train``, ``report``) with ``site`` as the only site folder."""
    code = (f"import site, sys; site.addsitedir({str(site)!r}); "
            f"from reinforce_lab.cli import {entry}; sys.argv = ['rlab-{entry}', *sys.argv[1:]]; {entry}()")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["WANDB_MODE"] = "disabled"
    return subprocess.run([sys.executable, "-S", "-c", code, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_bare_site_lacks_the_extras(bare: Path, tmp_path: Path) -> None:
    """The simulation is faithful: core packages import, the extras' packages do not."""
    probe = ("import importlib.util as u, site, sys; site.addsitedir(sys.argv[1]); "
             "print(*[m for m in sys.argv[2:] if u.find_spec(m) is not None])")
    out = subprocess.run([sys.executable, "-S", "-c", probe, str(bare), *EXTRA_PLUGINS, "torch", "hydra",
                          "hydra_plugins.rlab_launchers.fork_joblib", "reinforce_lab.conf"],
                         cwd=tmp_path, capture_output=True, text=True, check=True).stdout.split()
    assert out == ["torch", "hydra", "hydra_plugins.rlab_launchers.fork_joblib", "reinforce_lab.conf"]


def test_single_run_works(bare: Path, tmp_path: Path) -> None:
    res = run_in_bare(bare, tmp_path, "train", *TINY, "hydra.run.dir=run")
    assert res.returncode == 0, res.stderr[-3000:]
    assert (tmp_path / "run" / "summary.json").is_file()
    assert "Traceback" not in res.stderr and "Error importing" not in res.stderr


def test_basic_launcher_multirun_works(bare: Path, tmp_path: Path) -> None:
    res = run_in_bare(bare, tmp_path, "train", "-m", "seed=0,1", *TINY, "hydra.sweep.dir=sweep")
    assert res.returncode == 0, res.stderr[-3000:]
    assert sorted(p.parent.name for p in (tmp_path / "sweep").glob("*/summary.json")) == ["0", "1"]
    # Hydra's plugin scan imports every hydra_plugins module; ours must import without the extras.
    assert "Error importing" not in res.stderr and "Traceback" not in res.stderr


@pytest.mark.parametrize("args, key, plugin", [
    (["-m", "hydra/launcher=joblib", "seed=0,1"], "hydra/launcher=joblib", "hydra-joblib-launcher"),
    (["-m", "hydra/launcher=submitit_local", "seed=0,1"], "hydra/launcher=submitit_local", "hydra-submitit-launcher"),
    (["hparams_search=optuna"], "hparams_search=optuna", "hydra-optuna-sweeper"),
], ids=["joblib", "submitit_local", "optuna"])
def test_missing_plugin_is_one_line_naming_the_extra(bare: Path, tmp_path: Path, args: list[str], key: str,
                                                      plugin: str) -> None:
    res = run_in_bare(bare, tmp_path, "train", *args, *TINY)
    assert res.returncode == 2, res.stderr[-3000:]
    line = res.stderr.strip()
    assert "\n" not in line, line
    assert line.startswith(f"error: {key} is not allowed; allowed: "), line
    assert plugin in line and "pip install 'reinforce-lab[sweeps]'" in line
    assert list(tmp_path.iterdir()) == []  # no multirun/ or outputs/ folder


def test_report_without_report_extra_is_one_line(bare: Path, tmp_path: Path) -> None:
    """``rlab-report`` on a bare install: one line naming the ``report`` extra, exit 2, nothing written."""
    (tmp_path / "runs").mkdir()
    res = run_in_bare(bare, tmp_path, "report", "runs", "--out", "rep")
    assert res.returncode == 2, res.stderr[-3000:]
    line = res.stderr.strip()
    assert "\n" not in line and line.startswith("error: ") and "pip install 'reinforce-lab[report]'" in line, line
    assert not (tmp_path / "rep").exists()


# check_extras in this venv (which has the extras), with the plugins' modules hidden: the cases
# above and the rest of the rules, without a process each.

HIDDEN = ("hydra_plugins.hydra_joblib_launcher", "hydra_plugins.hydra_submitit_launcher",
          "hydra_plugins.hydra_optuna_sweeper", "joblib", "submitit", "optuna")


@pytest.fixture
def no_sweeps(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sweeps extra's modules look absent to :mod:`reinforce_lab.extras`."""
    real = extras._importable
    monkeypatch.setattr(extras, "_importable", lambda m: m not in HIDDEN and real(m))


@pytest.fixture
def fake_presets(monkeypatch: pytest.MonkeyPatch) -> None:
    """``experiment=picks_joblib`` and ``experiment=picks_optuna``: presets that select a plugin."""
    real = extras._read_config
    fake = {("experiment", "picks_joblib"): {"defaults": [{"override /hydra/launcher": "joblib"}]},
            ("experiment", "picks_optuna"): {"defaults": ["_self_", {"override /hparams_search": "optuna"}]}}
    monkeypatch.setattr(extras, "_read_config", lambda g, o: fake.get((g, o)) or real(g, o))


ARGV_CASES = [
    (["-m", "seed=0,1"], None),
    (["--cfg", "job", "env=pendulum"], None),
    (["-m", "experiment=gamma_t"], None),
    (["-m", "hydra/launcher=basic", "seed=0,1"], None),
    (["-m", "hydra/launcher=submitit_slurm"], "hydra/launcher=submitit_slurm"),
    (["-m", "hydra/sweeper=optuna"], "hydra/sweeper=optuna"),
    (["-m", "hparams_search=optuna", "hydra/launcher=basic"], "hparams_search=optuna"),
    (["-m", "hparams_search=optuna", "hydra/launcher=joblib"], "hydra/launcher=joblib"),
    (["-m", "experiment=picks_joblib"], "experiment=picks_joblib"),
    (["-m", "experiment=picks_joblib", "hydra/launcher=basic"], None),  # the command line wins
    (["-m", "+experiment=picks_optuna"], "experiment=picks_optuna"),  # a preset selecting a preset
]


@pytest.mark.parametrize("argv, key", ARGV_CASES)
def test_check_extras_without_sweeps(no_sweeps: None, fake_presets: None, argv: list[str], key: str | None) -> None:
    if key is None:
        extras.check_extras(argv)
        return
    with pytest.raises(ConfigError) as err:
        extras.check_extras(argv)
    assert str(err.value).startswith(f"{key} is not allowed; allowed: ")
    assert "pip install 'reinforce-lab[sweeps]'" in str(err.value)


@pytest.mark.parametrize("argv, key", ARGV_CASES)
def test_check_extras_with_sweeps_installed(fake_presets: None, argv: list[str], key: str | None) -> None:
    extras.check_extras(argv)  # this venv has the sweeps extra: nothing to say


def test_launcher_message_lists_the_installed_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    """With submitit but not joblib, the allowed launchers include submitit's."""
    real = extras._importable
    monkeypatch.setattr(extras, "_importable", lambda m: "joblib" not in m and real(m))
    with pytest.raises(ConfigError, match=r"allowed: basic \(built in\), submitit_local, submitit_slurm, or joblib "):
        extras.check_extras(["-m", "hydra/launcher=joblib"])


def test_report_extra_check(monkeypatch: pytest.MonkeyPatch) -> None:
    extras.check_report_extra()  # installed here
    real = extras._importable
    monkeypatch.setattr(extras, "_importable", lambda m: m != "pandas" and real(m))
    with pytest.raises(ConfigError) as err:  # a ConfigError: the entry points print it as one line
        extras.check_report_extra()
    assert str(err.value) == ("rlab-report needs the report extra (pandas not installed): "
                              "pip install 'reinforce-lab[report]'")


def test_primary_config_selecting_a_plugin(no_sweeps: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """A launcher chosen in train.yaml's own defaults list is checked too (and a command-line one wins)."""
    train_yaml = {"defaults": ["_self_", {"override hydra/launcher": "joblib"}]}
    monkeypatch.setattr(extras, "_read_config", lambda g, o: train_yaml if (g, o) == ("train", None) else None)
    with pytest.raises(ConfigError, match=r"^hydra/launcher=joblib is not allowed; allowed: basic \(built in\) "
                                          r"\(set in train.yaml\)"):
        extras.check_extras(["-m", "seed=0,1"])
    extras.check_extras(["-m", "seed=0,1", "hydra/launcher=basic"])
