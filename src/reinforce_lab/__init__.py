"""reinforce-lab: REINFORCE-family policy-gradient methods, compared honestly.

Pure tensor maths lives in :mod:`reinforce_lab.returns` and :mod:`reinforce_lab.losses`;
policies in :mod:`reinforce_lab.policies`; episode collection in
:mod:`reinforce_lab.rollout`; the Lightning module in :mod:`reinforce_lab.module`; the
Hydra entry points are :mod:`reinforce_lab.train`, :mod:`reinforce_lab.eval` and
:mod:`reinforce_lab.report`.
"""

__version__ = "0.1.0"
