"""Service settings: quotas, thresholds, categories and audiences, as data.

Defaults ship in ``settings.toml``; a council overrides keys in its working folder's
``ehkit.toml`` (``ehkit init``, :mod:`ehkit.home`), and any of those again in a TOML file named
by ``EHKIT_SETTINGS``. Everything that is "a setting" in the issues and the framework lives
here.
"""

from __future__ import annotations

import os
import tomllib
from functools import cache
from pathlib import Path

from . import home
from .errors import EhkitError

DEFAULTS = Path(__file__).with_name("settings.toml")


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


class SettingsError(EhkitError):
    pass


def _read(p: Path) -> dict:
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise SettingsError(f"{p}: not a readable settings file ({e}): correct it (ehkit's "
                            f"own is {DEFAULTS})") from None


@cache
def _load(*overrides: tuple[Path, int]) -> dict:
    data = _read(DEFAULTS)
    for p, _changed in overrides:
        data = _merge(data, _read(p))
    return data


def _overrides() -> list[Path]:
    """The files over ehkit's own, in order: the working folder's, ``EHKIT_SETTINGS``."""
    found = [home.settings_file()]
    named = os.environ.get("EHKIT_SETTINGS")
    if named:
        if not Path(named).is_file():
            raise SettingsError(f"EHKIT_SETTINGS names {named}, which does not exist: "
                                "correct it or unset it")
        found.append(Path(named).resolve())
    return [p for p in found if p]


def settings() -> dict:
    """The merged settings: ehkit's, the working folder's, ``EHKIT_SETTINGS`` (cached until
    a file changes)."""
    return _load(*((p, p.stat().st_mtime_ns) for p in _overrides()))


def source(section: str, key: str) -> Path:
    """The file a setting's value comes from (for a message about a wrong value)."""
    for p in reversed(_overrides()):
        if key in _read(p).get(section, {}):
            return p
    return DEFAULTS


def get(section: str, key: str | None = None):
    s = settings()[section]
    return s if key is None else s[key]
