"""Audiences and disclosure control: who may see names, and small-number suppression.

An audience (settings.toml [audiences.*]) says whether workers' names may appear, whether
case references (EHM numbers) may appear, and whether small counts are suppressed. Board and
LSCB outputs never carry a child's name, date of birth or EHM number (no report shows a
child's name or date of birth to anyone).

Suppression, for an audience that suppresses:

- primary: a count from 1 to the threshold prints as ``c``; a true zero prints ``0``;
- a percentage (or an average over cases) whose numerator or denominator is suppressed is
  suppressed too, else the count could be worked back out of it;
- secondary: in a table with totals, more cells are suppressed until no suppressed cell can
  be worked out from the rows, columns and totals shown (:func:`protect`).

Suppression is decided once for everything an audience is shown about a period
(:func:`decide`), not table by table: a figure's key names what is counted (``grades.overall.3``,
``open_at_end``; ``key@2025Q1`` for another period than the report's), so a figure shown in two
tables or two reports is one cell with one decision, and figures equal by definition (a
section's total and the audits of the sector) are tied by an equation.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from .errors import EhkitError
from .metrics import COMPLEMENTARY, TOTAL, Figure, Grid
from .settings import get as setting

SUPPRESSED = "c"


class AudienceError(EhkitError):
    pass


class DisclosureError(EhkitError):
    pass


@dataclass(frozen=True)
class Audience:
    key: str
    label: str
    names: bool  # may workers' names appear?
    suppress: bool  # are small counts suppressed?
    threshold: int
    case_references: bool = False  # may EHM numbers appear (internal audiences only)?

    def hides(self, n: int | None) -> bool:
        """Is this count too small to publish to this audience? (A true zero is shown.)"""
        return self.suppress and n is not None and 0 < n <= self.threshold


def audiences() -> dict[str, Audience]:
    threshold = int(setting("disclosure", "threshold"))
    return {
        key: Audience(key, a["label"], bool(a["names"]), bool(a["suppress"]),
                      int(a.get("threshold", threshold)),
                      bool(a.get("case_references", False)) and bool(a["names"]))
        for key, a in setting("audiences").items()
    }


def audience(key: str) -> Audience:
    known = audiences()
    if key not in known:
        raise AudienceError(f"unknown audience {key!r}: use one of {', '.join(known)}")
    return known[key]


def primary(f: Figure, threshold: int, whole: bool = False) -> bool:
    """The primary rule: a count from 1 to the threshold; a percentage, median or ratio whose
    numerator or denominator is one; a share whose complement (acceptable / unacceptable, or
    the rest of the ``whole`` row a grid's share is of) is."""
    def small(n) -> bool:
        return n is not None and 0 < n <= threshold

    if f.kind == "count":
        return small(f.value)
    rest = (f.denominator - f.numerator if (whole or f.key.split("@")[0] in COMPLEMENTARY)
            and f.numerator is not None and f.denominator is not None else None)
    return small(f.numerator) or small(f.denominator) or small(rest)


# -- secondary suppression ---------------------------------------------------------------------
@dataclass(frozen=True)
class Line:
    """An additive relation shown in a table: the ``parts`` add up to ``total``."""
    parts: tuple[Hashable, ...]
    total: Hashable


def _determined(cell: Hashable, hidden: set, lines: Sequence[Line]) -> bool:
    """Can the hidden ``cell`` be worked out from the visible values and the lines?

    Unknowns are the hidden cells; each line touching one is a linear equation. The cell is
    determined exactly when its unit vector lies in the span of those equations.
    """
    import numpy as np

    unknowns = sorted(hidden, key=repr)
    index = {k: i for i, k in enumerate(unknowns)}
    rows = []
    for line in lines:
        row = [0.0] * len(unknowns)
        for p in line.parts:
            if p in index:
                row[index[p]] += 1
        if line.total in index:
            row[index[line.total]] -= 1
        if any(row):
            rows.append(row)
    if not rows:
        return False
    a = np.array(rows)
    e = np.zeros((1, len(unknowns)))
    e[0, index[cell]] = 1
    return np.linalg.matrix_rank(a) == np.linalg.matrix_rank(np.vstack([a, e]))


def protect(values: Mapping[Hashable, int], lines: Iterable[Line], threshold: int, *,
            fixed: Iterable[Hashable] = ()) -> set:
    """The cells to suppress: primary (1..threshold) and secondary, so that no suppressed
    cell can be worked out from the visible cells and the ``lines`` (parts adding up to a
    total). ``fixed`` cells are already published elsewhere: never chosen as complements.

    First every line left with a single suppressed member gets a complement; then any cell
    still determined by a chain of lines gets one more. Complements are chosen cheapest
    first: one that closes a chain (its other lines already have a suppressed member), then
    the smallest non-zero inner cell, then totals, then zeros (a zero is hidden only when
    nothing else protects the cell).
    """
    lines = [ln for ln in lines if ln.parts]
    fixed = set(fixed)
    totals = {ln.total for ln in lines}
    members = [set(ln.parts) | {ln.total} for ln in lines]
    hidden = {k for k, v in values.items() if 0 < (v or 0) <= threshold}

    def cost(k, line_index: int) -> tuple:
        v = values[k] or 0
        opens = any(k in m and not (m & hidden) for i, m in enumerate(members) if i != line_index)
        return (opens, v == 0, k in totals, v, repr(k))

    def complement(near: set, line_index: int = -1):
        candidates = [c for c in near if c not in hidden and c not in fixed]
        return min(candidates, key=lambda c: cost(c, line_index)) if candidates else None

    # A cell that the published (fixed) cells already give away cannot be protected here;
    # it is still shown as suppressed, and left alone.
    given_away: set = set()
    for _ in range(2 * len(values) + 2):
        # 1. no line may have exactly one suppressed member
        changed = True
        while changed:
            changed = False
            for i, m in enumerate(members):
                alone = m & hidden
                if len(alone) == 1 and not alone <= given_away:
                    c = complement(m, i)
                    if c is None:
                        given_away |= alone
                    else:
                        hidden.add(c)
                    changed = True
        # 2. nor may a chain of lines pin one down
        stuck = next((k for k in sorted(hidden - given_away, key=repr)
                      if _determined(k, hidden, lines)), None)
        if stuck is None:
            return hidden
        # Look beside it first, then further out along the lines (a cell can be pinned
        # down by lines it is not on, e.g. the complement of a published share).
        reach, candidates = {stuck}, []
        while not candidates:
            wider = set().union(*(m for m in members if m & reach))
            if wider <= reach:
                break
            reach |= wider
            candidates = sorted((c for c in reach if c not in hidden and c not in fixed),
                                key=lambda c: cost(c, -1))
        if not candidates:
            given_away.add(stuck)
            continue
        hidden.add(next((c for c in candidates if not _determined(stuck, hidden | {c}, lines)),
                        candidates[0]))
    raise DisclosureError("secondary suppression did not settle")  # pragma: no cover


def grid_lines(rows: Sequence[Hashable], cols: Sequence[Hashable], *, row_totals: bool,
               col_totals: bool, total: Hashable = "total") -> list[Line]:
    """The additive lines of a rows x cols table of (row, col) cells with its totals:
    each row adds up to its ``(row, total)``, each column to its ``(total, col)``, and the
    totals themselves add up to the grand total ``(total, total)`` when both are shown."""
    lines = []
    if row_totals:
        lines += [Line(tuple((r, c) for c in cols), (r, total)) for r in rows]
    if col_totals:
        lines += [Line(tuple((r, c) for r in rows), (total, c)) for c in cols]
    if row_totals and col_totals:
        lines.append(Line(tuple((r, total) for r in rows), (total, total)))
        lines.append(Line(tuple((total, c) for c in cols), (total, total)))
    return lines


def percent_hidden(numerator: Hashable, denominator: Hashable,
                   hidden: Callable[[Hashable], bool] | set) -> bool:
    """A percentage is suppressed when its numerator or denominator is."""
    check = hidden.__contains__ if isinstance(hidden, set) else hidden
    return check(numerator) or check(denominator)


def _apart(values: Mapping[Hashable, int], lines: Sequence[Line]
           ) -> list[tuple[set, list[Line]]]:
    """The cells and lines split into groups that share no cell (protect's cost grows faster
    than the number of cells, and a period's tables are mostly apart)."""
    group = {k: k for k in values}

    def root(k):
        while group[k] != k:
            group[k] = group[group[k]]
            k = group[k]
        return k

    for ln in lines:
        first = root(ln.total)
        for p in ln.parts:
            group[root(p)] = first
    cells: dict = {}
    for k in values:
        cells.setdefault(root(k), set()).add(k)
    parts: dict = {}
    for ln in lines:
        parts.setdefault(root(ln.total), []).append(ln)
    return [(c, parts.get(r, [])) for r, c in sorted(cells.items(), key=lambda x: repr(x[0]))]


def decide(grids: Iterable[Grid], figures: Iterable[Figure], threshold: int, *,
           published: Iterable[str] = (), suppressed: Iterable[str] = ()) -> dict[str, bool]:
    """One decision, ``{key: suppressed?}``, for every figure of ``grids`` and ``figures``
    shown together (all the tables of a period, in every report that shows them).

    Each key is one cell, wherever it is shown; the equations are the grids' totals, each
    percentage's numerator (the sum of its cells), two shares that split a row, a grid cell
    that is a headline share's numerator, and a cell equal by definition to another figure
    (``Grid.same_as``) when their values agree. ``published`` keys were decided shown and
    ``suppressed`` keys suppressed elsewhere (an earlier period's decisions): they are kept.
    """
    values: dict[str, int] = {}
    lines: list[Line] = []
    # (percentage, its numerator's cell, its denominator's, is it a share of its row's total?)
    shares: list[tuple[Figure, str, str | None, bool]] = []
    ties: list[tuple[str, str]] = []
    others: list[Figure] = []
    for g in grids:
        key = {(r, c): g.figure(r, c).key for r in g.row_keys for c in g.col_keys}
        for (r, c), k in key.items():
            values.setdefault(k, g.value(r, c))
        lines += [Line(tuple(key[p] for p in ln.parts), key[ln.total]) for ln in grid_lines(
            [r for r, _ in g.rows], [c for c, _ in g.cols], row_totals=g.row_totals,
            col_totals=g.col_totals)]
        for r in g.row_keys:
            splits = []
            for pc in g.percents:
                f = g.percent_figure(r, pc)
                num, den = f"{f.key}:numerator", g.figure(r, pc.denominator).key
                values.setdefault(num, f.numerator)
                values.setdefault(den, f.denominator)
                lines.append(Line(tuple(key[(r, c)] for c in pc.numerator), num))
                shares.append((f, num, den, pc.denominator == TOTAL))
                if pc.denominator == TOTAL and g.row_totals:
                    splits.append((num, set(pc.numerator)))
            # shares that split the whole row (acceptable + unacceptable) add up to its total
            if len(splits) == 2 and splits[0][1] | splits[1][1] == {c for c, _ in g.cols} \
                    and not splits[0][1] & splits[1][1]:
                lines.append(Line((splits[0][0], splits[1][0]), key[(r, TOTAL)]))
        lines += [Line((key[cell],), f"{pct}:numerator") for cell, pct in g.numerator_of.items()
                  if cell in key]
        ties += [(key[cell], other) for cell, other in g.same_as.items() if cell in key]
    for f in figures:
        if f.kind == "count":
            values.setdefault(f.key, f.value)
        elif f.kind == "percent":
            values.setdefault(f"{f.key}:numerator", f.numerator)
            shares.append((f, f"{f.key}:numerator", None, False))
        else:
            others.append(f)
    lines += [Line((a,), b) for a, b in ties if b in values and values[a] == values[b]]

    suppressed, published = set(suppressed), set(published)
    # A share suppressed whatever the cells (small, or decided elsewhere) tells nothing of its
    # numerator: leave that unknown out, or its cells would look pinned down.
    unshown = {n for f, n, _, whole in shares if f.key not in published
               and (f.key in suppressed or primary(f, threshold, whole))}
    values = {k: v for k, v in values.items() if k not in unshown}
    lines = [ln for ln in lines if ln.total in values and values.keys() >= set(ln.parts)]
    known = {k for k in values if k in published}
    known |= {n for f, n, _, _ in shares if f.key in published}
    known |= {d for f, _, d, _ in shares if d and f.key in published}
    forced = {k for k in values if k in suppressed}
    marked = {k: 1 if k in forced else values[k] for k in values}  # as if primary
    hidden: set = set()
    for cells, part in _apart(marked, lines):  # tables that share no cell are protected apart
        hidden |= protect({k: marked[k] for k in cells}, part, threshold,
                          fixed=(known - forced) & cells)

    out = {k: k in hidden for k in values if not k.endswith(":numerator")}
    for f, num, den, whole in shares:
        out[f.key] = f.key not in published and (
            f.key in suppressed or num in hidden or den in hidden or primary(f, threshold, whole))
    for f in others:
        out[f.key] = f.key in suppressed or primary(f, threshold)
    return out
