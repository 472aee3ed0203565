"""Trick ``module_call``: the policy's MLP calls its layers' ``forward`` without ``nn.Module.__call__``.

What: ``for layer in net: x = layer.forward(x)`` instead of ``net(x)``, which goes through
``nn.Module.__call__`` (hook dispatch, ``torch._C`` state checks) once for the ``Sequential``
and once for each layer.

Why: the policy runs once per env step on a small MLP, where that per-call machinery is a
sizeable share of the forward pass. The price: forward hooks and pre-hooks registered on the
policy's layers are silently skipped (the project registers none; Lightning's model summary
is off), so a tool that relies on hooks needs the trick off.

Measured gain: "about a fifth of the forward pass" when it was added (profiled on CartPole,
commit a9c1527). Re-measured on 2026-12-01 (shared 2-core machine, one torch thread,
``CategoricalPolicy.logits`` of the default 4-64-64-2 tanh MLP on a ``[1, 8, 4]`` batch, best of
3 × 2000 calls, median of 5 alternating rounds): 66 µs with the trick, 102 µs without.

The switch is read once, when this module is imported (so it must be set in the environment
before the process starts): reading it costs about 6 µs, a tenth of the forward pass it
guards, and the forward runs once per env step.

Checked against: torch 2.13.0 (``nn.Sequential.forward`` calls each layer in order, so both
paths do the same arithmetic in the same order: results are bit-identical).

Off (``RLAB_TRICKS=off`` or ``RLAB_TRICKS_OFF=module_call``): ``net(x)``, the normal module
call, hooks included.
"""

from __future__ import annotations

from torch import Tensor, nn

from . import enabled

ON: bool = enabled("module_call")  # read once, at import (see above); never written afterwards


def forward(net: nn.Sequential, x: Tensor) -> Tensor:
    """``net(x)``; with the trick on, layer by layer without the module-call machinery."""
    if not ON:
        return net(x)
    for layer in net:
        x = layer.forward(x)
    return x
