"""The start-up tricks (``lean_imports``, ``wandb_launch_inputs``): what they leave out, that
what they leave out still works when asked for, and that the off switch brings it all back.

Each check runs in a fresh interpreter (the tricks act on the first import of Lightning and
on ``wandb.init``) with the switches set there, so the file means the same in CI's default
pass and in its ``RLAB_TRICKS=off`` pass.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

PROBE = """
import json, sys
import reinforce_lab, pytorch_lightning
state = {
    "dynamo": type(sys.modules.get("torch._dynamo")).__name__,
    "scipy.signal": "scipy.signal" in sys.modules,
    "matplotlib.pyplot": "matplotlib.pyplot" in sys.modules,
}
"""


def run_probe(body: str, off: str | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("RLAB_TRICKS", "RLAB_TRICKS_OFF")}
    if off:
        env["RLAB_TRICKS_OFF"] = off
    code = PROBE + textwrap.dedent(body) + "\nprint(json.dumps(state))\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("on", [True, False])
def test_lightning_is_imported_without_dynamo_scipy_signal_and_pyplot_only_when_on(on):
    state = run_probe("", off=None if on else "lean_imports")
    if on:
        assert state == {"dynamo": "DeferredModule", "scipy.signal": False, "matplotlib.pyplot": False}
    else:
        assert state["dynamo"] == "module" and state["scipy.signal"] and state["matplotlib.pyplot"]


def test_deferred_dynamo_loads_when_used_and_lightnings_checks_follow_it():
    state = run_probe("""
        import torch
        from lightning_fabric.wrappers import OptimizedModule as FabricOptimized
        from pytorch_lightning.utilities.compile import OptimizedModule as LightningOptimized
        from pytorch_lightning.trainer.connectors.logger_connector.result import _ResultCollection
        net = torch.nn.Linear(2, 2)
        state["plain_is_optimized"] = isinstance(net, FabricOptimized)
        opt = torch.optim.SGD(net.parameters(), lr=0.1)  # its step calls torch._dynamo.graph_break
        net(torch.ones(1, 2)).sum().backward()
        opt.step()
        results = _ResultCollection(training=True)  # methods under @torch.compiler.disable
        results.reset()
        state["after_step"] = type(sys.modules["torch._dynamo"]).__name__
        compiled = torch.compile(net)  # torch.compile: the real torch._dynamo, in its place
        state["after_compile"] = type(sys.modules["torch._dynamo"]).__name__
        state["compiled_is_optimized"] = isinstance(compiled, FabricOptimized)
        state["unwrapped"] = isinstance(compiled, LightningOptimized) and compiled._orig_mod is net
        import torch._dynamo.config
        state["config"] = hasattr(torch._dynamo.config, "cache_size_limit")
        results.reset()
    """)
    assert state["after_step"] == "DeferredModule" and state["plain_is_optimized"] is False
    assert state["after_compile"] == "module" and state["compiled_is_optimized"] and state["unwrapped"]
    assert state["config"]


def test_lightning_logging_works_with_torchmetrics_loaded_lean():
    state = run_probe("""
        import torch, torchmetrics
        from pytorch_lightning.trainer.connectors.logger_connector.result import _ResultCollection
        results = _ResultCollection(training=True)
        results.log("fx", "loss", torch.tensor(2.0), on_step=True, on_epoch=True, batch_size=1)
        results.log("fx", "loss", torch.tensor(4.0), on_step=True, on_epoch=True, batch_size=1)
        state["epoch_mean"] = float(results["fx.loss"].compute())
        state["metric"] = isinstance(results["fx.loss"], torchmetrics.Metric)
    """)
    assert state["epoch_mean"] == 3.0 and state["metric"]


@pytest.mark.parametrize("on", [True, False])
def test_wandb_init_skips_the_launch_import_only_when_on_and_staged_inputs_still_apply(on):
    state = run_probe("""
        from wandb.sdk import wandb_run
        from reinforce_lab.tricks.wandb_launch_inputs import STAGING_MODULE, skip_unstaged_launch_inputs
        skip_unstaged_launch_inputs()
        skip_unstaged_launch_inputs()  # once only
        wandb_run.Run._detect_and_apply_job_inputs(object())
        state["launch_imported"] = STAGING_MODULE in sys.modules
        from wandb.sdk.launch.inputs import internal
        applied = []
        internal.StagedLaunchInputs.apply = lambda self, run: applied.append(run)
        wandb_run.Run._detect_and_apply_job_inputs("run")  # once imported, the original runs
        state["applied"] = applied
    """, off=None if on else "wandb_launch_inputs")
    assert state["launch_imported"] is (not on)
    assert state["applied"] == ["run"]
