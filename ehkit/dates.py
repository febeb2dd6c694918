"""Days as ehkit reads, steps and shows them: one reader of a date a person or the store
gives, one step back by whole months, and dates as people here read them: 16/09/2015 (the
store keeps ISO dates, 2015-09-16).

A spreadsheet cell's date (Excel serials, 31-Jan-2026 ...) is read by the import
(:func:`ehkit.importing.parse_date`); this reader takes a date or ISO text only.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from zoneinfo import ZoneInfo

from .errors import EhkitError

ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
# The store stamps changes in UTC; people here read the clock on their wall.
UK_CLOCK = ZoneInfo("Europe/London")


def as_date(value, what: str = "date", error: type[EhkitError] = EhkitError) -> dt.date:
    """``value`` (a date or ISO text) as a date, or ``error`` saying what was given: the
    caller's own error, so a date refused by the feedback code is a feedback error. A date
    and time is refused: the days ehkit keeps (audit, due, held on) have no time."""
    if isinstance(value, dt.datetime):
        raise error(f"{what} should be a date, not a date and time: {value!r}")
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise error(f"{what} {value!r} is not a date like 2026-11-24") from None


def months_before(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` months earlier (the month's last day where it is shorter)."""
    y, m = divmod(day.year * 12 + day.month - 1 - months, 12)
    m += 1
    return dt.date(y, m, min(day.day, calendar.monthrange(y, m)[1]))


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


def uk_time(at: str, seconds: bool = False) -> str:
    """A time the store stamped (ISO in UTC, 2026-07-01T09:05:00Z) as the clock here read
    it: 01/07/2026 10:05 (British Summer Time in summer); 01/07/2026 10:05:00 with seconds."""
    when = dt.datetime.fromisoformat(at.replace("Z", "+00:00"))
    when = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
    return f"{when.astimezone(UK_CLOCK):%d/%m/%Y %H:%M{':%S' if seconds else ''}}"


# In running text the day is written out. strftime has no portable code for a day without its
# leading zero (glibc's raises on Windows): the day is put in by hand.
def long_date(d: dt.date) -> str:
    """24 November 2026."""
    return f"{d.day} {d:%B %Y}"


def short_date(d: dt.date) -> str:
    """24 Nov 2026."""
    return f"{d.day} {d:%b %Y}"
