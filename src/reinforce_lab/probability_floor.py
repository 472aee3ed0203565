"""A floor on categorical action probabilities (``policy.min_prob``; not in the book).

The widely used reproduction code of S&B Fig. 13.1 clips π to [0.05, 0.95] on the short
corridor, which keeps a run from drifting to a deterministic policy that never reaches the goal.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def floor_probs(logits: Tensor, min_prob: float) -> Tensor:
    """Logits of the softmax policy with every probability floored at ``min_prob``.

    Probabilities below ``min_prob`` are raised to it and the others scaled down to keep
    the sum at 1; with two actions this is exactly the clip in the widely used
    reproduction code of S&B Fig. 13.1 (ShangtongZhang/reinforcement-learning-an-introduction,
    ``chapter13/short_corridor.py``: ``π = (ε, 1 − ε)`` whenever ``min π < ε``), which
    keeps the short-corridor policy from becoming deterministic (and its episodes endless).
    It is *not* part of the book's algorithm.

    The floor is applied as a constant shift of the logits, ``h + (ln π_ε − ln π)``, held
    out of the graph, so the softmax of the result is π_ε and the score function is
    ``∇ ln π_ε(a) = x(a) − Σ_b π_ε(b) x(b)`` — again exactly that code's gradient.
    """
    log_p = torch.log_softmax(logits, dim=-1)
    with torch.no_grad():
        p = log_p.exp()
        low = p < min_prob
        if not low.any():
            return logits
        n_low = low.sum(-1, keepdim=True).to(p.dtype)
        rest = (p * ~low).sum(-1, keepdim=True)
        floored = torch.where(low, torch.full_like(p, min_prob), p * (1 - n_low * min_prob) / rest)
        shift = floored.log() - log_p
    return logits + shift


def floor_probs_np(p: np.ndarray, min_prob: float) -> np.ndarray:
    """:func:`floor_probs` on probabilities ``[..., n]`` in numpy: the floored π_ε itself.

    The closed-form per-step rule (:mod:`reinforce_lab.softmax_score`) computes it once per
    step for all agents; rows with no probability below ``min_prob`` are returned unchanged.
    """
    floor = p.dtype.type(min_prob)  # in p's dtype, as the torch version computes
    low = p < floor
    n_low = low.sum(-1, keepdims=True).astype(p.dtype)
    rest = np.where(low, 0, p).sum(-1, keepdims=True)
    return np.where(low, floor, np.where(n_low > 0, p * (1 - n_low * floor) / rest, p))


def check_min_prob(min_prob: float, n_actions: int) -> float:
    min_prob = float(min_prob)
    if not 0.0 <= min_prob < 1.0 / n_actions:
        raise ValueError(f"policy.min_prob={min_prob}; allowed: a number in [0, 1/{n_actions}) for {n_actions} actions")
    return min_prob
