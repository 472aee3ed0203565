"""Keep API keys and other secrets out of everything a run writes.

Secrets are (a) config values under keys that name a secret (``*api_key*``, ``*token*``,
``*secret*``, ``*password*``) and (b) the values of secret environment variables
(``WANDB_API_KEY`` and any ``*_API_KEY``/``*_TOKEN``/``*_SECRET``/``*_PASSWORD``). They are
replaced by ``***`` in the config given to W&B and to checkpoints, in ``summary.json``,
in the command line W&B records (:mod:`reinforce_lab.tricks.argv_redaction`), and in
Hydra's ``.hydra/*.yaml``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

MASK = "***"
_SECRET_KEY = re.compile(r"(api_?key|token|secret|password|passwd)", re.IGNORECASE)
_SECRET_ENV = re.compile(r"(API_?KEY|TOKEN|SECRET|PASSWORD)$")


def env_secrets() -> list[str]:
    """Values of secret-looking environment variables (never printed, only masked)."""
    return [v for k, v in os.environ.items() if _SECRET_ENV.search(k) and len(v) >= 6]


def secret_values(config: Any) -> list[str]:
    """Every secret in ``config`` (by key name) and in the environment."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if _SECRET_KEY.search(str(k)) and isinstance(v, str) and v:
                    found.append(v)
                walk(v)
        elif isinstance(node, (list, tuple)):
            for v in node:
                walk(v)

    walk(config)
    return sorted(set(found + env_secrets()), key=len, reverse=True)


def redact(obj: Any, secrets: list[str]) -> Any:
    """A copy of ``obj`` with secret keys' values and any secret substring masked."""
    if isinstance(obj, dict):
        return {k: (MASK if _SECRET_KEY.search(str(k)) and isinstance(v, str) and v else redact(v, secrets))
                for k, v in obj.items()}
    if isinstance(obj, list):
        return [redact(v, secrets) for v in obj]
    if isinstance(obj, tuple):
        return tuple(redact(v, secrets) for v in obj)
    if isinstance(obj, str):
        for s in secrets:
            obj = obj.replace(s, MASK)
    return obj


def scrub_files(folder: Path, secrets: list[str], pattern: str = "*.yaml") -> None:
    """Mask secrets inside text files (Hydra writes the raw overrides into ``.hydra/``)."""
    if not secrets or not folder.is_dir():
        return
    for path in folder.glob(pattern):
        text = path.read_text()
        clean = redact(text, secrets)
        if clean != text:
            path.write_text(clean)


def redacted_config(raw: dict[str, Any], hydra_dir: Path) -> tuple[dict[str, Any], list[str]]:
    """The resolved config with its secrets masked, and the secrets; masks them in ``hydra_dir`` too."""
    secrets = secret_values(raw)
    scrub_files(hydra_dir, secrets)
    return redact(raw, secrets), secrets
