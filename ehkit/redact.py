"""Taking identifiers out of free text a board or LSCB report shows.

Learning and recommended actions reach a board or LSCB report only as themes (the same words
recorded many times), but being repeated does not make a sentence anonymous: the same note
about one child, pasted into sixty audits, is still about that child. So every theme is
redacted first, whatever its count (and so is a referral reason or concern theme found in the
data, ehkit.metrics.as_shown):

- the names held in the store (children's and workers') and its EHM numbers;
- anything shaped like an identifier: email addresses, dates (so every date of birth), phone
  numbers, UK postcodes and case numbers (a word mixing letters with four or more digits
  in a row, or six or more digits).

Each is replaced by what it was, in square brackets: ``[name]``, ``[EHM number]``,
``[email]``, ``[date]``, ``[phone]``, ``[postcode]``, ``[case number]``. Every word of a
name held in the store (a first name or a surname on its own, too) is taken out in any case,
so a name that is also an ordinary word (Will, Hope) is taken out wherever that word appears:
a board may lose a word from a theme, never a name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import sqlite_utils

from . import db as store

_MONTH = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
          r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?")
_DAY = r"\d{1,2}(?:st|nd|rd|th)?"

# (placeholder, pattern), applied in this order: an email address holds a name, a date looks
# like the start of a phone number.
PATTERNS: tuple[tuple[str, re.Pattern], ...] = tuple(
    (label, re.compile(pattern, re.IGNORECASE)) for label, pattern in (
        ("[email]", r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"),
        ("[date]", r"\b(?:\d{1,2}[./-]\d{1,2}[./-](?:\d{4}|\d{2})|\d{4}[./-]\d{1,2}[./-]\d{1,2}"
                   rf"|{_DAY}(?:\s+of)?[\s./-]+{_MONTH},?[\s./-]+\d{{2,4}}"
                   rf"|{_MONTH}\s+{_DAY},?\s+\d{{4}})\b"),
        # 0 or +44 (any +country code), then ten or more digits, spaces, dots, dashes, brackets
        ("[phone]", r"(?<![\w+])(?:\+\d{1,3}[\s.-]?(?:\(0\)[\s.-]?)?|\(?0)\d[\d\s().-]{7,}\d(?!\w)"),
        ("[postcode]", r"\b(?:[a-z]{1,2}\d[a-z\d]?\s*\d[a-z]{2})\b"),
    ))
CASE_NUMBER = ("[case number]", re.compile(
    r"\b(?:(?=[a-z0-9/-]*\d{4})(?=[a-z0-9/-]*[a-z])[a-z0-9]+(?:[/-][a-z0-9]+)*|\d{6,})\b",
    re.IGNORECASE))
NAME, EHM = "[name]", "[EHM number]"

# A word of letters (O'Neil's; Smith-Jones is two), not the word in a [placeholder].
_WORD = re.compile(r"(?<![\[\w])[^\W\d_]+(?:['’][^\W\d_]+)*")
_REFERENCE = re.compile(r"[a-z0-9]+(?:[/-][a-z0-9]+)*", re.IGNORECASE)
_RUN_OF_NAMES = re.compile(rf"{re.escape(NAME)}(?:[\s-]+{re.escape(NAME)})+")


def _key(word: str) -> str:
    """A word as names are looked up: case and a possessive 's ignored."""
    word = word.replace("’", "'").casefold()
    return word[:-2] if word.endswith("'s") else word


@dataclass(frozen=True)
class Redactor:
    """Redacts text with the identifiers of one store (see the module's docstring)."""
    name_parts: frozenset[str]  # every word of every name, as _key gives it
    references: frozenset[str]  # EHM numbers, casefolded

    def __call__(self, text: str) -> str:
        for label, pattern in PATTERNS:
            text = pattern.sub(label, text)
        text = self._names(text)
        text = _REFERENCE.sub(lambda m: EHM if m[0].casefold() in self.references else m[0],
                              text)
        return CASE_NUMBER[1].sub(CASE_NUMBER[0], text)

    def _names(self, text: str) -> str:
        def name(w: re.Match) -> str:  # a possessive stays: "[name]'s plan"
            key = _key(w[0])
            if key not in self.name_parts:
                return w[0]
            return NAME + (w[0][-2:] if len(key) < len(w[0]) else "")

        return _RUN_OF_NAMES.sub(NAME, _WORD.sub(name, text))  # "Jo Smith-Jones": one [name]


def names(values: Iterable[str | None]) -> frozenset[str]:
    """Every word (two letters or more) of every name, as names are looked up."""
    return _parts("\n".join(v for v in values if v))


def _parts(text: str) -> frozenset[str]:
    # one regex pass over all the names at once: a region's store holds millions
    words = set(_WORD.findall(text.replace("’", "'").casefold()))
    return frozenset(w[:-2] if w.endswith("'s") else w for w in words if len(w) > 1)


def from_store(db: sqlite_utils.Database) -> Redactor:
    """A redactor for the names and EHM numbers held in ``db``."""
    # group_concat is SQLite's (string_agg only since 3.44), string_agg PostgreSQL's
    together = "string_agg(v, chr(10))" if store.is_postgres(db) else "group_concat(v, char(10))"

    def joined(sql: str) -> str:  # a column as one string, built inside the database
        return db.execute(f"SELECT {together} FROM ({sql}) AS t").fetchone()[0] or ""

    parts = _parts(joined("SELECT name AS v FROM children UNION ALL "
                          "SELECT name FROM practitioners"))
    references = frozenset(
        r.strip() for r in joined("SELECT ehm_number AS v FROM episodes").casefold().split("\n"))
    return Redactor(parts, references)
