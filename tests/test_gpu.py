"""device=gpu end to end; skipped cleanly on machines without CUDA (like CI)."""

import pytest
import torch

from conftest import train_in_process

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here")]


@pytest.mark.parametrize("overrides", [[], ["env=pendulum", "algo=reinforce_baseline"],
                                       ["loss=update_rule", "optimizer=sgd", "loss.sequential=true"]])
def test_tiny_run_on_gpu(tmp_path, overrides):
    _, summary = train_in_process(tmp_path, ["device=gpu", "train.max_env_steps=600", "env.num_envs=2",
                                             "algo.episodes_per_update=2", "logger=none", *overrides])
    assert summary["status"] == "finished" and summary["episodes"] >= 2
