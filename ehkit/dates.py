"""Dates as people here read them: 16/09/2015. The store keeps ISO dates (2015-09-16)."""

from __future__ import annotations

import datetime as dt
import re

ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def uk(day, blank: str = "") -> str:
    """``day`` (a date, or ISO text such as a stored date) as 16/09/2015; ``blank`` when
    there is none. Anything else (text, a number) is shown as it is, never dropped."""
    if day in (None, ""):
        return blank
    if isinstance(day, str) and ISO_DAY.fullmatch(day.strip()):
        try:
            day = dt.date.fromisoformat(day.strip())
        except ValueError:
            return day
    return f"{day:%d/%m/%Y}" if isinstance(day, dt.date) else str(day)
