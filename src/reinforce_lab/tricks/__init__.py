"""Process tricks: speed-ups and work-arounds that lean on private hooks of CPython or of plugins.

Each trick lives in one small module of this package, says what it does, why, what it gained
when measured, which upstream versions it was checked against, and what runs instead when it
is switched off (the plain, public-API behaviour). Nothing outside this package may import a
private name of another package; in here it is allowed, because the price is written down and
each trick can be turned off.

========================  =========================================================================
trick                     what it does (module)
========================  =========================================================================
``fast_exit``             console scripts leave with ``os._exit`` after doing what shutdown does
                          first, skipping the interpreter's module teardown (:mod:`.fast_exit`)
``forked_workers``        ``hydra/launcher=joblib`` runs each job in a process forked from a parent
                          that has imported torch and Lightning (:mod:`.forked_workers`)
``wandb_orphans``         a resumed run stops ``wandb-core`` helpers whose parent was killed, found
                          in ``/proc`` (:mod:`.wandb_orphans`)
``argv_redaction``        secrets are masked in ``sys.argv`` while W&B starts and records it
                          (:mod:`.argv_redaction`)
``module_call``           the policy's MLP runs its layers' ``forward`` without
                          ``nn.Module.__call__`` (:mod:`.module_call`)
``wandb_anonymous``       the ``anonymous`` argument Lightning always passes to ``wandb.init`` (a
                          deprecation warning per run) is dropped (:mod:`.wandb_anonymous`)
``lean_imports``          Lightning is imported without ``torch._dynamo`` (deferred until used),
                          scipy.signal and torchmetrics' matplotlib plotting (:mod:`.lean_imports`)
``wandb_launch_inputs``   ``wandb.init`` skips importing W&B Launch to look for staged job inputs
                          when none can have been staged (:mod:`.wandb_launch_inputs`)
========================  =========================================================================

Switches (environment variables, inherited by every job and worker process):

- ``RLAB_TRICKS=off`` turns every trick off (``on``, the default, keeps them);
- ``RLAB_TRICKS_OFF=fast_exit,forked_workers`` turns off the tricks named (comma-separated).

Any other value is an error that names the variable and the allowed values. CI runs the
default test suite twice, the second time with ``RLAB_TRICKS=off`` (``make test-no-tricks``),
so that both paths stay true. Switching a trick off never changes results, only speed (and,
for ``argv_redaction``, which W&B metadata is kept).

The switches are read each time a trick is about to act (about 6 µs), not cached, so a test
can flip them in-process; the one exception is ``module_call``, on the policy's per-step hot
path, which reads its switch once, when it is imported.
"""

from __future__ import annotations

import os

TRICKS: tuple[str, ...] = ("fast_exit", "forked_workers", "wandb_orphans", "argv_redaction", "module_call",
                           "wandb_anonymous", "lean_imports", "wandb_launch_inputs")
ALL_SWITCH = "RLAB_TRICKS"
SOME_SWITCH = "RLAB_TRICKS_OFF"


def switched_off() -> frozenset[str]:
    """The tricks the environment turns off; a bad value raises ``ValueError`` naming the allowed ones."""
    everything = os.environ.get(ALL_SWITCH, "on").strip().lower() or "on"
    if everything not in ("on", "off"):
        raise ValueError(f"{ALL_SWITCH}={everything!r}: allowed values are 'on' and 'off'")
    if everything == "off":
        return frozenset(TRICKS)
    names = {n.strip() for n in os.environ.get(SOME_SWITCH, "").split(",") if n.strip()}
    unknown = sorted(names - set(TRICKS))
    if unknown:
        raise ValueError(f"{SOME_SWITCH}: unknown trick {', '.join(map(repr, unknown))}; "
                         f"allowed: {', '.join(TRICKS)}")
    return frozenset(names)


def enabled(name: str) -> bool:
    """Whether trick ``name`` (one of :data:`TRICKS`) is on in this process."""
    if name not in TRICKS:
        raise ValueError(f"unknown trick {name!r}; allowed: {', '.join(TRICKS)}")
    return name not in switched_off()
