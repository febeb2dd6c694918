"""Moderation agreement: exact agreement and weighted kappa, checked against worked examples
computed by hand (linear weights are ehkit's default; quadratic is offered too)."""

from __future__ import annotations

import pytest
from builders import add_audit, add_moderator, add_rows, base_rows

from ehkit import agreement

GRADES = [1, 2, 3, 4]


def test_perfect_agreement_gives_kappa_one():
    pairs = [(1, 1), (2, 2), (2, 2), (3, 3), (4, 4)]
    assert agreement.weighted_kappa(pairs, GRADES) == pytest.approx(1.0)
    assert agreement.weighted_kappa(pairs, GRADES, "quadratic") == pytest.approx(1.0)


def test_agreement_no_better_than_chance_gives_kappa_zero():
    # Each rater gives Outstanding and Good half the time, independently of the other: every
    # cell of the 2x2 table holds a quarter, exactly what the marginals predict by chance.
    pairs = [(1, 1), (1, 2), (2, 1), (2, 2)]
    assert agreement.weighted_kappa(pairs, GRADES) == pytest.approx(0.0)
    assert agreement.weighted_kappa(pairs, GRADES, "quadratic") == pytest.approx(0.0)


# The worked table: ten (auditor, moderator) pairs on the 4-point scale.
KNOWN = [(1, 1)] * 2 + [(2, 2)] * 3 + [(2, 3)] + [(3, 3)] * 2 + [(3, 2)] + [(4, 3)]


def test_linear_weighted_kappa_of_a_known_table():
    # Linear weight of a disagreement of d grades: d/3.
    # Observed: three one-grade disagreements of ten pairs: 3 * (1/3) / 10 = 0.1.
    # Marginals: auditor .2 .4 .3 .1; moderator .2 .4 .4 0.
    # Expected by chance: sum w_ij r_i c_j
    #   row 1: .2 * (.4*1/3 + .4*2/3)            = .2 * .4 = .08
    #   row 2: .4 * (.2*1/3 + .4*1/3)            = .4 * .2 = .08
    #   row 3: .3 * (.2*2/3 + .4*1/3)            = .3 * (.8/3) = .08
    #   row 4: .1 * (.2*1 + .4*2/3 + .4*1/3)     = .1 * .6 = .06     total .30
    # kappa = 1 - .1/.3 = 2/3.
    assert agreement.weighted_kappa(KNOWN, GRADES) == pytest.approx(2 / 3)


def test_quadratic_weighted_kappa_of_a_known_table():
    # Quadratic weight (d/3)^2. Observed: 3 * 1/9 / 10 = 1/30.
    # Expected: row 1 .2*(.4/9 + .4*4/9) = .4/9; row 2 .4*(.2/9 + .4/9) = .24/9;
    #   row 3 .3*(.2*4/9 + .4/9) = .36/9; row 4 .1*(.2 + .4*4/9 + .4/9) = .38/9; total 1.38/9.
    # kappa = 1 - (1/30) / (1.38/9) = 1 - 9/41.4 = 1 - 5/23 = 18/23.
    assert agreement.weighted_kappa(KNOWN, GRADES, "quadratic") == pytest.approx(18 / 23)


def test_kappa_undefined_when_every_grade_is_the_same():
    assert agreement.weighted_kappa([(2, 2), (2, 2)], GRADES) is None
    assert agreement.weighted_kappa([], GRADES) is None


def test_unknown_weights_refused():
    with pytest.raises(agreement.AgreementError, match="linear"):
        agreement.weighted_kappa(KNOWN, GRADES, "cubic")


@pytest.fixture
def db(db_both):
    """Agreement is worked out from the store on SQLite and on PostgreSQL (issue 18)."""
    return db_both


def moderated_store(db) -> None:
    """Ten audits moderated in 2026Q1 (the KNOWN table on 'planning', all agreeing on 'impact')
    and two in 2026Q2 disagreeing on 'planning'; one moderation outside both quarters."""
    base_rows(db)
    moderator = add_moderator(db)
    audits, mods = [], []

    def moderation(audit, key, day, a, b):
        return {"audit_id": audit, "key": key, "moderator_id": moderator, "moderated_on": day,
                "original_grade": a, "moderated_grade": b,
                "reason": None if a == b else "evidence"}
    for n, (a, b) in enumerate(KNOWN, start=1):
        day = f"2026-0{1 + n % 3}-15"  # January to March
        audits.append(n)
        mods.append(moderation(n, "planning", day, a, b))
        mods.append(moderation(n, "impact", day, b, b))
    for n, (a, b) in ((11, (2, 4)), (12, (3, 1))):
        audits.append(n)
        mods.append(moderation(n, "planning", "2026-04-01", a, b))
    audits.append(13)
    mods.append(moderation(13, "planning", "2025-12-31", 1, 4))
    for n in audits:
        add_audit(db, n, 1, "2025-12-01", 2, status="moderated", auditor=1)
    add_rows(db, moderations=mods)


def test_agreement_by_section_per_quarter(db):
    moderated_store(db)
    rows = agreement.by_section(db, "2026-01-01", "2026-06-30")
    got = {(r["quarter"], r["key"]): r for r in rows}
    assert set(got) == {("2026Q1", "planning"), ("2026Q1", "impact"), ("2026Q2", "planning")}
    q1 = got[("2026Q1", "planning")]
    assert (q1["pairs"], q1["agreed"], q1["exact_agreement_pct"]) == (10, 7, 70.0)
    assert q1["kappa"] == pytest.approx(2 / 3)
    # (3,2) and (4,3): the moderator's grade is better (lower); (2,3): worse.
    assert (q1["moderated_better"], q1["moderated_worse"]) == (2, 1)
    assert q1["section"] == "3. PLANNING"
    assert got[("2026Q1", "impact")]["exact_agreement_pct"] == 100.0
    q2 = got[("2026Q2", "planning")]
    assert (q2["pairs"], q2["agreed"], q2["exact_agreement_pct"]) == (2, 0, 0.0)
    # Sections in the template's order within a quarter.
    assert [r["key"] for r in rows] == ["planning", "impact", "planning"]


def test_sections_with_most_disagreement(db):
    moderated_store(db)
    top = agreement.most_disagreement(db, "2026-01-01", "2026-06-30")
    # Over the half year planning agrees 7 of 12; impact always agrees, so is not listed.
    assert [(r["key"], r["pairs"], r["agreed"]) for r in top] == [("planning", 12, 7)]
    assert agreement.most_disagreement(db, "2026-01-01", "2026-06-30", min_pairs=13) == []
