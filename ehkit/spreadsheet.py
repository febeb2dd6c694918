"""Every CSV and .xlsx file ehkit writes (figures, import rejects, audit lists) is written
here, so each is safe to open in Excel or LibreOffice and is never left half-written.

- **No formulas.** Text that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
  return is a formula to a spreadsheet (``=HYPERLINK(...)`` in a comment would run when the
  file is opened). Such a cell is written with an apostrophe in front, OWASP's rule against
  CSV injection. Numbers, and text that is only a number (``-3``, ``-1.5``, ``+2e3``), stay
  as they are, so a real negative number is still a number.
- **Whole or not at all.** A file is written beside its target under a temporary name and
  moved into place when complete.
"""

from __future__ import annotations

import csv
import os
import re
import secrets
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from pathlib import Path

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def safe_cell(value):
    """``value`` as a spreadsheet cannot run it: text a spreadsheet would read as a formula
    gets a leading apostrophe; anything else (numbers, ``-3`` as text) is unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_START) and not _NUMBER.fullmatch(
            value):
        return "'" + value
    return value


def safe_row(row: Iterable) -> list:
    return [safe_cell(v) for v in row]


@contextmanager
def _replacing(path: Path):
    """A temporary file beside ``path`` that becomes ``path`` only if the block completes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # not mkstemp: its file is private to its owner, and these files are shared
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.part")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_csv(path: str | Path, header: Sequence[str], rows: Iterable[Iterable], *,
              excel: bool = True) -> Path:
    """Write a CSV file, every cell made safe. ``excel``: UTF-8 with a byte-order mark, so
    Excel reads accented names right (the figures file, read by programs, has none)."""
    path = Path(path)
    with _replacing(path) as tmp:
        with tmp.open("w", newline="", encoding="utf-8-sig" if excel else "utf-8") as f:
            w = csv.writer(f)
            w.writerow(safe_row(header))
            w.writerows(safe_row(r) for r in rows)
    return path


def write_xlsx(path: str | Path, header: Sequence[str], rows: Iterable[Sequence], *,
               sheet: str) -> Path:
    """Write an .xlsx workbook of one sheet: a bold header row that stays in view, columns
    as wide as their text (up to 50), every cell made safe."""
    import openpyxl
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    def cell(v):  # control characters cannot be stored in .xlsx: shown as U+FFFD
        return safe_cell(ILLEGAL_CHARACTERS_RE.sub("\ufffd", v) if isinstance(v, str) else v)

    path = Path(path)
    rows = [[cell(v) for v in r] for r in rows]
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = sheet[:31]  # Excel's limit for a sheet's name
    ws.append([cell(h) for h in header])
    for c in ws[1]:
        c.font = Font(bold=True)
    for r in rows:
        ws.append(r)
    for i, h in enumerate(header, start=1):
        width = max([len(str(h))] + [len(str(r[i - 1])) for r in rows if len(r) >= i])
        ws.column_dimensions[get_column_letter(i)].width = min(width + 2, 50)
    ws.freeze_panes = "A2"
    with _replacing(path) as tmp:
        wb.save(tmp)
    return path
