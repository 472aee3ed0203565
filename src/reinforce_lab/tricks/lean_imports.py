"""Trick ``lean_imports``: ``import pytorch_lightning`` without what a training run never uses.

What: while PyTorch Lightning is first imported (a finder on ``sys.meta_path`` wraps the
execution of ``pytorch_lightning``/``lightning_fabric``),

- ``torch._dynamo`` is a *deferred* module: ``from torch._dynamo import OptimizedModule``
  (``lightning_fabric.wrappers``, ``pytorch_lightning.utilities.compile``) gets a stand-in
  class whose ``isinstance`` checks ask the real class once ``torch._dynamo`` is loaded, and
  are False before (no object can be an ``OptimizedModule`` while ``torch.compile`` has
  never run). Any other use of the module (``torch.compile``, an attribute, a submodule)
  loads the real one at that moment, in its place in ``sys.modules``;
- torchmetrics' package init skips ``import scipy.signal`` (kept only to alias
  ``scipy.signal.hamming`` for an optional audio metric), and ``torchmetrics.utilities.plot``
  is executed as if matplotlib were absent (torchmetrics' own ``Metric.plot`` then raises
  "matplotlib is required"; rlab's figures use matplotlib directly and are unaffected).

Why: those three pulled in 70–85% of Lightning's import time over torch's (``python -X
importtime``: ``torch._dynamo`` with sympy, scipy.signal with scipy.stats, matplotlib.pyplot),
paid by every job at start-up although a training run never compiles, never plots a
torchmetrics metric and never uses scipy.signal. Measured gain (benchmarks part (e), 2026-12-02,
with ``wandb_launch_inputs``): a one-batch job with W&B offline 6.69 s → 2.05 s over
``python -c "import torch"``; ``import reinforce_lab, pytorch_lightning`` 2.5 s against 5.4 s.

Checked against: torch 2.13.0, pytorch-lightning 2.6.6, lightning-fabric 2.6.6, torchmetrics
1.x (``torchmetrics/__init__.py``'s ``package_available("scipy")`` guard and
``torchmetrics.utilities.imports._MATPLOTLIB_AVAILABLE``), lightning-utilities 0.15.

Off (``RLAB_TRICKS=off`` or ``RLAB_TRICKS_OFF=lean_imports``): nothing is installed and
Lightning imports everything, as it does in any other program. The switch is read when the
finder is installed (at ``import reinforce_lab``) and again when Lightning is imported.
"""

from __future__ import annotations

import functools
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from typing import Any, Callable

from . import enabled

TRIGGERS = ("pytorch_lightning", "lightning_fabric")  # whichever is imported first
DYNAMO = "torch._dynamo"


class _DeferredClass(type):
    """A stand-in for a class of a deferred module: ``isinstance`` asks the real class once it exists."""

    def _real(cls) -> type | None:
        module = sys.modules.get(cls.__module__)
        real = None if module is None or isinstance(module, DeferredModule) else module.__dict__.get(cls.__name__)
        return real if isinstance(real, type) else None

    def __instancecheck__(cls, obj: Any) -> bool:
        real = cls._real()
        return real is not None and isinstance(obj, real)

    def __subclasscheck__(cls, sub: type) -> bool:
        real = cls._real()
        return real is not None and issubclass(sub, real)


class DeferredModule(types.ModuleType):
    """A module that serves a few names as stand-ins and loads the real module on any other use."""

    def __init__(self, name: str, spec: importlib.machinery.ModuleSpec, classes: tuple[str, ...],
                 functions: dict[str, Callable[..., Any]] | None = None) -> None:
        super().__init__(name)
        self.__spec__ = spec
        self.__file__ = spec.origin
        # ``from torch._dynamo import X`` asks whether this is a package (``__path__``): answer without
        # loading. A submodule import loads the real package first (LeanLightningFinder.find_spec).
        self.__path__ = list(spec.submodule_search_locations or [])
        for cls in classes:
            setattr(self, cls, _DeferredClass(cls, (), {"__module__": name}))
        for attr, stand_in in (functions or {}).items():
            setattr(self, attr, stand_in)

    def __getattr__(self, attr: str) -> Any:
        return getattr(load_real(self.__name__), attr)


def _deferred_disable(fn: Callable[..., Any] | None = None, recursive: bool = True, **kwargs: Any) -> Any:
    """``torch._dynamo.disable`` (``@torch.compiler.disable`` on Lightning's result collection).

    Without dynamo loaded nothing is being compiled, so the function runs as is; once the real
    module is loaded, calls go through the real ``disable(fn)``, made on first use.
    """
    if fn is None:
        return lambda f: _deferred_disable(f, recursive, **kwargs)
    disabled: list[Callable[..., Any]] = []

    @functools.wraps(fn)
    def call(*args: Any, **kw: Any) -> Any:
        module = sys.modules.get(DYNAMO)
        if module is None or isinstance(module, DeferredModule):
            return fn(*args, **kw)
        if not disabled:
            disabled.append(module.disable(fn, recursive, **kwargs))
        return disabled[0](*args, **kw)

    return call


def _deferred_graph_break(*args: Any, **kwargs: Any) -> None:
    """``torch._dynamo.graph_break``, called by every ``torch.optim`` step: a no-op outside compilation."""
    module = sys.modules.get(DYNAMO)
    if module is not None and not isinstance(module, DeferredModule):
        module.graph_break(*args, **kwargs)


def load_real(name: str) -> types.ModuleType:
    """The real module ``name``, imported now if a deferred stand-in holds its place."""
    module = sys.modules.get(name)
    if isinstance(module, DeferredModule):
        del sys.modules[name]
        parent, _, child = name.rpartition(".")
        if parent in sys.modules and sys.modules[parent].__dict__.get(child) is module:
            delattr(sys.modules[parent], child)
        module = importlib.import_module(name)
    return module


def defer(name: str, classes: tuple[str, ...], functions: dict[str, Callable[..., Any]] | None = None) -> None:
    """Put a :class:`DeferredModule` in ``sys.modules[name]`` unless the real module is loaded."""
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is not None:
        sys.modules[name] = DeferredModule(name, spec, classes, functions)


class _AfterExec(importlib.abc.Loader):
    """Runs a module's own loader, with ``before`` and ``after`` around its execution."""

    def __init__(self, loader: Any, before: Callable[[], None], after: Callable[[types.ModuleType], None]) -> None:
        self.loader, self.before, self.after = loader, before, after

    def __getattr__(self, attr: str) -> Any:  # get_source, is_package, resources…: the module's own loader
        return getattr(self.loader, attr)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        self.before()
        try:
            self.loader.exec_module(module)
        finally:
            self.after(module)


class LeanLightningFinder(importlib.abc.MetaPathFinder):
    """Wraps the first import of Lightning (and torchmetrics' import flags during it)."""

    def __init__(self) -> None:
        self.active = False
        self.done = False
        self._saved: dict[str, Any] = {}
        self.saved_flags: dict[str, Any] = {}
        self.flags_module: types.ModuleType | None = None

    def find_spec(self, name: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        parent = name.rpartition(".")[0]
        if parent and isinstance(sys.modules.get(parent), DeferredModule):
            load_real(parent)  # a submodule needs its package initialised: the real one, now
            return None
        if self.done or not (name in TRIGGERS or (self.active and name == "torchmetrics.utilities.imports")):
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return None
        if name in TRIGGERS:
            if self.active or not _on():
                return None
            spec.loader = _AfterExec(spec.loader, self._start, lambda _m: self._finish())
        else:
            spec.loader = _AfterExec(spec.loader, lambda: None, _optional_absent)
        return spec

    def _start(self) -> None:
        self.active = True
        defer(DYNAMO, ("OptimizedModule",), {"disable": _deferred_disable,
                                              "graph_break": _deferred_graph_break})
        imports = sys.modules.get("lightning_utilities.core.imports") or importlib.import_module(
            "lightning_utilities.core.imports")
        original = imports.package_available
        self._saved["package_available"] = (imports, original)
        imports.package_available = lambda pkg: False if pkg == "scipy" else original(pkg)

    def _finish(self) -> None:
        imports, original = self._saved.pop("package_available")
        imports.package_available = original
        for flag, value in self.saved_flags.items():  # modules imported from now on see the truth
            setattr(self.flags_module, flag, value)
        self.active, self.done = False, True


ABSENT_FOR_TORCHMETRICS = ("_MATPLOTLIB_AVAILABLE", "_SCIPI_AVAILABLE")  # torchmetrics' own flags (sic)


def _optional_absent(module: types.ModuleType) -> None:
    """After ``torchmetrics.utilities.imports`` ran: matplotlib and scipy count as absent for
    the torchmetrics modules imported with Lightning (plotting, ``functional.audio``)."""
    for flag in ABSENT_FOR_TORCHMETRICS:
        if hasattr(module, flag):
            FINDER.saved_flags[flag] = getattr(module, flag)
            setattr(module, flag, False)
    FINDER.flags_module = module


FINDER = LeanLightningFinder()


def install() -> None:
    """Put the finder first on ``sys.meta_path`` (once), unless Lightning is loaded or the trick is off."""
    if _on() and not any(t in sys.modules for t in TRIGGERS) and FINDER not in sys.meta_path:
        sys.meta_path.insert(0, FINDER)


def _on() -> bool:
    """The switch; a bad value leaves the plain path here (the console script reports it in one line)."""
    try:
        return enabled("lean_imports")
    except ValueError:
        return False
