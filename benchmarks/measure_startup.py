"""(e) Per-job fixed cost (whole process − training time of a one-batch ``rlab-train``, measured from
outside), the same over ``python -c "import torch"`` (the issue's target: ≤ 1.5 s with W&B offline),
with and without the start-up tricks, and the import time of the heavy dependencies.

Alone: ``.venv/bin/python benchmarks/measure_startup.py [--quick] [--no-wandb] [--out STEM]``
(merges part (e) into ``benchmarks/results.json`` and rewrites ``results.md``, as ``run.py --only e``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from common import BIN, Measurement, add_no_wandb, fmt, log, med, read_json, run_cmd, shown, table

IMPORTS = ["torch", "pytorch_lightning", "reinforce_lab, pytorch_lightning", "wandb", "hydra", "gymnasium",
           "torch, pytorch_lightning, wandb, hydra, gymnasium",
           "torch, torch._dynamo", "torch, torchmetrics"]  # what pytorch_lightning spends its time on
START_UP_TRICKS = ("lean_imports", "wandb_launch_inputs")  # src/reinforce_lab/tricks/: their measured gain
TARGET_S = 1.5  # the target for the fixed cost with W&B offline over `import torch`
_TIMED_IMPORT = "import time; t = time.perf_counter(); import {}; print(time.perf_counter() - t)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_no_wandb(parser)


def settings(args: argparse.Namespace) -> argparse.Namespace:
    return argparse.Namespace(repeats=1 if args.quick else 3, wandb=not args.no_wandb)


def _cases(cfg: argparse.Namespace) -> dict[str, list[str]]:
    train = [str(BIN / "rlab-train")]
    # `python -m reinforce_lab.train` is the same program with the interpreter's normal exit
    # (module teardown); rlab-train skips it (src/reinforce_lab/tricks/fast_exit.py).
    lean_off = ["env", f"RLAB_TRICKS_OFF={','.join(START_UP_TRICKS)}"]
    cases = {"logger=none": train + ["logger=none"], "logger=wandb (offline)": train,
             "logger=wandb (offline), start-up tricks off": lean_off + train,
             "logger=none, normal interpreter exit": [sys.executable, "-m", "reinforce_lab.train", "logger=none"]}
    if not cfg.wandb:
        cases = {k: v for k, v in cases.items() if "wandb" not in k}
    return cases


def _startup(cfg: argparse.Namespace, tmp: Path, out: dict[str, Any]) -> None:
    """One-batch runs of each case, by turns, next to the bare interpreter's start."""
    python_cmd = [sys.executable, "-c", "pass"]
    torch_cmd = [sys.executable, "-c", "import torch"]
    cases = _cases(cfg)
    rows: dict[str, list[dict[str, Any]]] = {k: [] for k in cases}
    bare, torch_only = [], []
    for rep in range(cfg.repeats):
        bare.append(run_cmd(python_cmd)["wall_s"])
        torch_only.append(run_cmd(torch_cmd)["wall_s"])
        for name, extra in cases.items():
            run_dir = tmp / "e" / f"{name.split()[0].replace('=', '-').rstrip(',')}-{len(name)}-{rep}"
            cmd = [*extra, "train.max_env_steps=1", "train.progress=false", f"hydra.run.dir={run_dir}"]
            out["commands"][name] = shown(cmd[:-1])
            res = run_cmd(cmd, timeout=300)
            s = read_json(run_dir / "summary.json") or {}
            train = s.get("wall_s")
            rows[name].append({"process_ext_s": res["wall_s"], "train_s": train,
                               "process_wall_s": s.get("process_wall_s"),
                               "startup_s": res["wall_s"] - train if train is not None else None,
                               "status": res["status"]})
            log(f"(e) {name}: process {res['wall_s']:.2f} s, training {fmt(train, 2)} s [{res['status']}]")
    out["python_bare_s"], out["import_torch_process_s"] = med(bare), med(torch_only)
    out["commands"]["python"] = shown(python_cmd)
    out["commands"]["import torch"] = shown(torch_cmd)
    for name, r in rows.items():
        startup = med(x["startup_s"] for x in r)
        out["startup"][name] = {"runs": r, "process_ext_s": med(x["process_ext_s"] for x in r),
                                "train_s": med(x["train_s"] for x in r), "startup_s": startup,
                                "over_torch_s": None if startup is None else startup - out["import_torch_process_s"]}


def _imports(cfg: argparse.Namespace, out: dict[str, Any]) -> None:
    for mod in IMPORTS:
        times = []
        for _ in range(cfg.repeats):
            res = run_cmd([sys.executable, "-c", _TIMED_IMPORT.format(mod)], timeout=120)
            try:
                times.append(float(res["stdout"].strip().splitlines()[-1]))
            except (ValueError, IndexError):
                log(f"(e) import {mod} failed: {res['stderr_tail'][-300:]}")
        out["imports"][mod] = {"runs": times, "median_s": med(times)}
        log(f"(e) import {mod}: {fmt(med(times), 2)} s")
    out["commands"]["imports"] = shown([sys.executable]) + " -c '" + _TIMED_IMPORT.format("X") + "'"


def measure(cfg: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"startup": {}, "imports": {}, "commands": {}}
    _startup(cfg, tmp, out)
    _imports(cfg, out)
    return out


# --------------------------------------------------------------------------- report
def summary_rows(e: dict[str, Any]) -> list[list[str]]:
    rows = []
    for name, s in e["startup"].items():
        over = s.get("over_torch_s")
        target = met = ""
        if name == "logger=wandb (offline)" and over is not None:
            target, met = f"≤ {TARGET_S} s", "met" if over <= TARGET_S else "not met"
        rows.append([f"(e) per-job fixed cost over `import torch`, {name}", fmt(over, 2, " s"), target, met])
    pl = e["imports"].get("pytorch_lightning", {}).get("median_s")
    return rows + [["(e) `import pytorch_lightning` (includes torch)", fmt(pl, 2, " s"), "", ""]]


def section(e: dict[str, Any], results: dict[str, Any]) -> list[str]:
    torch_s = e.get("import_torch_process_s")
    L = ["", "## (e) Per-job fixed cost and import times", "",
         "Fixed cost = whole process (measured from outside) − training time (`wall_s`) of a run with "
         "`train.max_env_steps=1` (one batch of 16 episodes): start-up, W&B and teardown. *Over `import torch`* "
         f"subtracts the whole process of `python -c \"import torch\"` ({fmt(torch_s, 2, ' s')}), measured by turns with "
         "the runs. `rlab-train` leaves without the interpreter's module teardown (trick `fast_exit`); the "
         "*normal interpreter exit* row is `python -m reinforce_lab.train`, which keeps it. *Start-up tricks off* "
         f"is the W&B run with `RLAB_TRICKS_OFF={','.join(START_UP_TRICKS)}`: Lightning imported whole "
         "(torch._dynamo, scipy.signal, pyplot) and W&B Launch imported by `wandb.init` "
         "(`src/reinforce_lab/tricks/lean_imports.py`, `wandb_launch_inputs.py`).", ""]
    rows = [[name, fmt(s["process_ext_s"], 2, " s"), fmt(s["train_s"], 2, " s"), fmt(s["startup_s"], 2, " s"),
             fmt(s.get("over_torch_s"), 2, " s")] for name, s in e["startup"].items()]
    rows.append(["`python -c \"import torch\"`", fmt(torch_s, 2, " s"), "", "", ""])
    rows.append(["`python -c pass` (interpreter alone)", fmt(e["python_bare_s"], 2, " s"), "", "", ""])
    L += table(["run", "whole process", "training", "fixed cost", "over `import torch`"], rows)
    L += ["", "Import time, each in a fresh interpreter (`import X` timed inside; a module's time includes "
          "what it imports, e.g. pytorch_lightning includes torch; `import reinforce_lab` first applies the "
          "`lean_imports` trick):", ""]
    L += table(["import", "time"], [[f"`{k}`", fmt(x["median_s"], 2, " s")] for k, x in e["imports"].items()])
    return L + ["", "```"] + [e["commands"][k] for k in e["commands"]] + ["```"]


MEASUREMENT = Measurement("e", add_arguments, settings, measure, summary_rows, section)

if __name__ == "__main__":
    import run  # the driver, with this part only

    run.main(parts="e", script=__file__)
