"""Moderation analytics: how far auditors and moderators agree, section by section.

Each row of ``moderations`` pairs the auditor's grade (``original_grade``) with the
moderator's (``moderated_grade``) for one section (or 'overall') of one audit. For each
section and quarter (of the moderation date) we give:

- exact agreement: the share of pairs with the same grade;
- weighted kappa (Cohen): agreement beyond chance, with partial credit for near misses.
  Weights are **linear** by default: a disagreement of d grades on a k-point scale counts
  d / (k - 1) (so Good vs Requires Improvement is a third of Outstanding vs Inadequate);
  ``weights="quadratic"`` uses (d / (k - 1))^2.
  kappa = 1 - sum(w * observed) / sum(w * expected by chance); 1 is perfect agreement,
  0 what chance alone gives. None when chance cannot disagree (every grade the same).
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Sequence

import sqlite_utils

from . import dates
from . import template as templates
from .errors import EhkitError
from .periods import of_kind
from .template import OVERALL

WEIGHTS = ("linear", "quadratic")


class AgreementError(EhkitError):
    pass


# A wrong date asked of the agreement figures is their error.
_as_date = functools.partial(dates.as_date, error=AgreementError)


def weighted_kappa(pairs: Iterable[tuple[int, int]], categories: Sequence[int],
                   weights: str = "linear") -> float | None:
    """Cohen's weighted kappa for (rater A, rater B) pairs over ordered ``categories``."""
    if weights not in WEIGHTS:
        raise AgreementError(f"weights should be one of {', '.join(WEIGHTS)}, got {weights!r}")
    index = {c: i for i, c in enumerate(categories)}
    k = len(categories)
    pairs = list(pairs)
    n = len(pairs)
    if n == 0 or k < 2:
        return None
    observed = [[0.0] * k for _ in range(k)]
    for a, b in pairs:
        observed[index[a]][index[b]] += 1 / n
    rows = [sum(r) for r in observed]
    cols = [sum(observed[i][j] for i in range(k)) for j in range(k)]

    def w(i: int, j: int) -> float:
        d = abs(i - j) / (k - 1)
        return d if weights == "linear" else d * d

    seen = sum(w(i, j) * observed[i][j] for i in range(k) for j in range(k))
    chance = sum(w(i, j) * rows[i] * cols[j] for i in range(k) for j in range(k))
    if chance == 0:
        return None
    return 1 - seen / chance


def _pairs(db: sqlite_utils.Database, start, end) -> list[tuple]:
    """(section key, month as YYYY-MM, template, auditor's grade, moderator's grade, how many
    such pairs) of the moderations dated in the period: counted by the store (a year's
    moderations among a million episodes are 50,000 rows, a few hundred counts)."""
    return db.execute(
        """SELECT m.key, substr(m.moderated_on, 1, 7), a.template, m.original_grade,
                  m.moderated_grade, count(*)
           FROM moderations m JOIN audits a ON a.id = m.audit_id
           WHERE m.original_grade IS NOT NULL AND m.moderated_on BETWEEN :start AND :end
           GROUP BY 1, 2, 3, 4, 5""",
        {"start": _as_date(start).isoformat(), "end": _as_date(end).isoformat()}).fetchall()


def _labels(template_keys: Iterable[str]) -> tuple[list[int], dict[str, tuple[int, str]]]:
    """The grade categories and {section key: (order, label)} of the templates used."""
    categories: set[int] = set()
    labels: dict[str, tuple[int, str]] = {}
    for key in template_keys:
        tpl = templates.load(key)
        categories |= set(tpl.grade_values)
        for s in tpl.graded_sections:
            labels.setdefault(s.key, (s.number, f"{s.number}. {s.title}"))
        labels.setdefault(OVERALL, (10_000, tpl.overall_label))
    return sorted(categories), labels


def _figures(pairs: list[tuple[int, int]], categories, weights) -> dict:
    agreed = sum(a == b for a, b in pairs)
    return {
        "pairs": len(pairs),
        "agreed": agreed,
        "exact_agreement_pct": round(100 * agreed / len(pairs), 1) if pairs else None,
        "kappa": weighted_kappa(pairs, categories, weights),
        "moderated_better": sum(b < a for a, b in pairs),
        "moderated_worse": sum(b > a for a, b in pairs),
    }


def by_section(db: sqlite_utils.Database, start, end, *, weights: str = "linear",
               per_quarter: bool = True) -> list[dict]:
    """Agreement per section (and 'overall') per quarter of moderations dated in the period.

    Each row: quarter (e.g. 2026Q3, or the whole period as ``start..end`` when not
    ``per_quarter``), key, section label, pairs, agreed, exact_agreement_pct, kappa,
    moderated_better / moderated_worse (how often the moderator's grade was better or worse).
    """
    rows = _pairs(db, start, end)
    categories, labels = _labels({r[2] for r in rows} or {templates.DEFAULT_TEMPLATE})
    groups: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
    whole = f"{_as_date(start)}..{_as_date(end)}"
    for key, month, _template, original, moderated, n in rows:
        q = of_kind("quarter", _as_date(f"{month}-01")).label if per_quarter else whole
        groups[(q, key)] += [(original, moderated)] * n  # each pair counts (kappa's sums)
    out = []
    for (q, key), pairs in groups.items():
        order, label = labels.get(key, (9_999, key))
        out.append({"quarter": q, "key": key, "section": label, "_order": order,
                    **_figures(pairs, categories, weights)})
    out.sort(key=lambda r: (r["quarter"], r["_order"], r["key"]))
    for r in out:
        del r["_order"]
    return out


def most_disagreement(db: sqlite_utils.Database, start, end, *, top: int = 3,
                      weights: str = "linear", min_pairs: int = 1) -> list[dict]:
    """The sections where auditors and moderators disagree most over the whole period:
    lowest exact agreement first, then lowest kappa; only sections with ``min_pairs``
    pairs or more, and at least one disagreement."""
    rows = [r for r in by_section(db, start, end, weights=weights, per_quarter=False)
            if r["pairs"] >= min_pairs and r["agreed"] < r["pairs"]]
    rows.sort(key=lambda r: (r["exact_agreement_pct"],
                             r["kappa"] if r["kappa"] is not None else 2.0, r["key"]))
    return rows[:top]
