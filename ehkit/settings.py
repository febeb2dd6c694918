"""Service settings: quotas, thresholds, categories and audiences, as data.

Defaults ship in ``settings.toml``; a council overrides keys in its own TOML file named by
``EHKIT_SETTINGS``. Everything that is "a setting" in the issues and the framework lives here.
"""

from __future__ import annotations

import os
import tomllib
from functools import cache
from pathlib import Path

DEFAULTS = Path(__file__).with_name("settings.toml")


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


@cache
def _load(override: str | None) -> dict:
    data = tomllib.loads(DEFAULTS.read_text(encoding="utf-8"))
    if override:
        p = Path(override)
        if not p.exists():
            raise FileNotFoundError(f"EHKIT_SETTINGS names {p}, which does not exist")
        data = _merge(data, tomllib.loads(p.read_text(encoding="utf-8")))
    return data


def settings() -> dict:
    """The merged settings (cached per override file)."""
    return _load(os.environ.get("EHKIT_SETTINGS") or None)


def get(section: str, key: str | None = None):
    s = settings()[section]
    return s if key is None else s[key]
