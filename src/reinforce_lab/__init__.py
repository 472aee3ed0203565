"""reinforce-lab: REINFORCE-family policy-gradient methods, compared honestly.

Pure tensor maths lives in :mod:`reinforce_lab.returns` and :mod:`reinforce_lab.losses`;
policies in :mod:`reinforce_lab.policies`; episode collection in
:mod:`reinforce_lab.rollout`; the Lightning module in :mod:`reinforce_lab.module`; the
Hydra entry points are :mod:`reinforce_lab.train`, :mod:`reinforce_lab.eval` and
:mod:`reinforce_lab.report`; sweep support (W&B group, failed jobs) in :mod:`reinforce_lab.sweeps`.
"""

from .tricks.lean_imports import install as _lean_lightning_import

_lean_lightning_import()  # before anything imports Lightning (trick lean_imports, off switch in tricks/)

from .sweeps import quiet_launcher_schema_warning as _quiet_launcher_schema_warning
from .resolvers import register_resolvers as _register_resolvers

__version__ = "0.1.0"

_register_resolvers()  # ${rlab.*:} (run folders, env names, W&B group) must resolve wherever the config is composed
_quiet_launcher_schema_warning()  # also in joblib workers, which import this package before composing
