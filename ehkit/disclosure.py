"""Audiences and disclosure control: who may see names, and small-number suppression.

An audience (settings.toml [audiences.*]) says whether workers' names may appear and whether
small counts are suppressed. Board and LSCB outputs never carry a child's name, date of birth
or EHM number, and counts from 1 to the threshold print as ``c``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import EhkitError
from .settings import get as setting

SUPPRESSED = "c"


class AudienceError(EhkitError):
    pass


@dataclass(frozen=True)
class Audience:
    key: str
    label: str
    names: bool  # may workers' names appear?
    suppress: bool  # are small counts suppressed?
    threshold: int

    def hides(self, n: int | None) -> bool:
        """Is this count too small to publish to this audience? (A true zero is shown.)"""
        return self.suppress and n is not None and 0 < n <= self.threshold


def audiences() -> dict[str, Audience]:
    threshold = int(setting("disclosure", "threshold"))
    return {
        key: Audience(key, a["label"], bool(a["names"]), bool(a["suppress"]),
                      int(a.get("threshold", threshold)))
        for key, a in setting("audiences").items()
    }


def audience(key: str) -> Audience:
    known = audiences()
    if key not in known:
        raise AudienceError(f"unknown audience {key!r}: use one of {', '.join(known)}")
    return known[key]
