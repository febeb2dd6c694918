"""Reporting periods: months (2026-11), quarters (2026Q3), years (2026), financial years (2026-27).

Every period is a closed range of dates, ``start`` to ``end`` inclusive.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from .dates import short_date
from .errors import EhkitError


class PeriodError(EhkitError):
    pass


@dataclass(frozen=True, order=True)
class Period:
    start: dt.date
    end: dt.date
    kind: str  # month | quarter | year | financial_year
    label: str

    def __str__(self) -> str:
        return self.label

    @property
    def title(self) -> str:
        if self.kind == "month":
            return self.start.strftime("%B %Y")
        if self.kind == "quarter":
            return f"Q{(self.start.month - 1) // 3 + 1} {self.start.year} " \
                   f"({short_date(self.start)} to {short_date(self.end)})"
        if self.kind == "financial_year":
            return (f"Financial year {self.label} ({short_date(self.start)} to "
                    f"{short_date(self.end)})")
        return f"Year {self.label}"

    def previous(self, n: int = 1) -> Period:
        """The period of the same kind ``n`` steps earlier."""
        p = self
        for _ in range(n):
            p = of_kind(self.kind, p.start - dt.timedelta(days=1))
        return p

    def trend(self, count: int = 5) -> list[Period]:
        """This period and the ``count - 1`` before it, oldest first."""
        return [self.previous(n) for n in range(count - 1, -1, -1)]

    def months(self) -> list[Period]:
        out, d = [], self.start
        while d <= self.end:
            out.append(of_kind("month", d))
            d = out[-1].end + dt.timedelta(days=1)
        return out

    def quarters(self) -> list[Period]:
        out, d = [], self.start
        while d <= self.end:
            out.append(of_kind("quarter", d))
            d = out[-1].end + dt.timedelta(days=1)
        return out


def _month_end(year: int, month: int) -> dt.date:
    nxt = dt.date(year + month // 12, month % 12 + 1, 1)
    return nxt - dt.timedelta(days=1)


def of_kind(kind: str, day: dt.date) -> Period:
    """The period of ``kind`` that contains ``day``."""
    y, m = day.year, day.month
    if kind == "month":
        return Period(dt.date(y, m, 1), _month_end(y, m), "month", f"{y}-{m:02d}")
    if kind == "quarter":
        q = (m - 1) // 3
        return Period(dt.date(y, 3 * q + 1, 1), _month_end(y, 3 * q + 3), "quarter", f"{y}Q{q + 1}")
    if kind == "year":
        return Period(dt.date(y, 1, 1), dt.date(y, 12, 31), "year", str(y))
    if kind == "financial_year":
        fy = y if m >= 4 else y - 1
        return Period(dt.date(fy, 4, 1), dt.date(fy + 1, 3, 31), "financial_year",
                      f"{fy}-{(fy + 1) % 100:02d}")
    raise PeriodError(f"unknown kind of period {kind!r}")


def parse(text: str) -> Period:
    """Read a period: ``2026-11`` (month), ``2026Q3`` (quarter), ``2026`` (year),
    ``2026-27`` (financial year April to March)."""
    t = str(text).strip()
    m = re.match(r"^(\d{4})-(\d{2})$", t)
    if m:
        year, two = int(m[1]), int(m[2])
        if 1 <= two <= 12 and two != (year + 1) % 100:
            return of_kind("month", dt.date(year, two, 1))
        if two == (year + 1) % 100:
            return of_kind("financial_year", dt.date(year, 4, 1))
    m = re.match(r"^(\d{4})\s*-?\s*Q([1-4])$", t, re.I)
    if m:
        return of_kind("quarter", dt.date(int(m[1]), 3 * int(m[2]) - 2, 1))
    if re.match(r"^\d{4}$", t):
        return of_kind("year", dt.date(int(t), 1, 1))
    raise PeriodError(
        f"{text!r} is not a period: use a month like 2026-11, a quarter like 2026Q3, "
        "a year like 2026 or a financial year like 2026-27"
    )


def last_full(kind: str, latest: dt.date) -> Period:
    """The last period of ``kind`` that ended on or before ``latest``."""
    p = of_kind(kind, latest)
    return p if p.end <= latest else p.previous()
