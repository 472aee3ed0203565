"""Block-buffered per-agent random streams: an agent's numbers depend on nothing but its own generator."""

import numpy as np
import torch

from reinforce_lab.streams import AgentStreams


def _streams(seeds, block=4):
    return AgentStreams([torch.Generator().manual_seed(s) for s in seeds], block=block)


def test_an_agent_draws_the_same_numbers_alone_or_in_a_batch_and_idle_agents_draw_nothing():
    batch, alone = _streams([7, 8, 9]), _streams([8])
    like, like1 = torch.zeros(3, 2, 5), torch.zeros(1, 2, 5)
    got, ref = [], []
    for step in range(11):  # crosses block boundaries (4 steps per block)
        batch.busy = np.array([True, step % 3 != 0, step < 6])  # agent 1 idles every third step
        out = batch.draw(torch.rand, like, fill=0.5)
        assert out.shape == like.shape
        if step % 3 == 0:
            assert torch.all(out[1] == 0.5)  # idle: the fill value, nothing consumed
        else:
            got.append(out[1])
            ref.append(alone.draw(torch.rand, like1, fill=0.5)[0])
    assert all(torch.equal(a, b) for a, b in zip(got, ref))
    assert not torch.equal(got[0], batch.draw(torch.rand, like, fill=0.5)[0])  # agents differ


def test_new_round_restarts_from_the_generator_state():
    s = _streams([3], block=8)
    g_state = s.generators[0].get_state()
    first = s.draw(torch.randn, torch.zeros(1, 3), fill=0.0)
    s.draw(torch.randn, torch.zeros(1, 3), fill=0.0)
    # a checkpoint keeps only the generator state: a new round after restoring it replays the draws
    s.generators[0].set_state(g_state)
    s.new_round()
    assert torch.equal(s.draw(torch.randn, torch.zeros(1, 3), fill=0.0), first)
