"""The project's one-line error for bad input (its own module: everything below the entry points raises it)."""

from __future__ import annotations

from typing import Any


class ConfigError(ValueError):
    """A bad configuration value: ``key=value`` and what is allowed, on one line."""

    def __init__(self, key: str, value: Any, allowed: str) -> None:
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"{key}={value} is not allowed; allowed: {allowed}")
