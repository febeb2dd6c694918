"""ipywidgets forms for Voila: thin builders that read and write only through the domain.

Import a form from its own module (``from ehkit.forms.audit import audit_app``) or from here;
names are loaded on first use so one form's page never imports another's.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "audit_app": ".audit",
    "AuditForm": ".audit",
    "refresh_when_opened": ".common",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
