"""rds's disclosure rules against real ACRO 1.0.2, cell by cell and rule by rule.

Each table (columns ``a``, ``b``, ``v``; seeded random ones and hand-made edge cases) goes
through ACRO's ``crosstab`` with its default rules — counts, and ``aggfunc="sum"`` /
``"mean"`` of ``values=v`` — and through rds: ``SELECT a, b, count(*)|sum(v)|avg(v) FROM t
GROUP BY a, b`` rewritten by ``plan_cell_stats`` with no privacy unit (each row a unit, as
ACRO assumes), run on DuckDB and judged by ``check_table``. Both say, for every cell of the
cross product of ``a`` and ``b``, which of threshold, dominance (N, k), p-ratio and zeros
it fails. ACRO's verdicts come from its per-cell ``outcome`` table.

``test_agreement_figure`` reports how many cells get the same rules from both (the figure
in README's *Privacy checks*; update both together). Every other cell must be one of the
deliberate differences below, where rds is stricter or ACRO 1.0.2 is wrong, and must
differ exactly as described — so the test fails as soon as rds's rules drift from ACRO's:

1. **A combination that does not occur** fails zeros in rds and nothing else: it has no
   row, so no value for a threshold to protect. ACRO also counts the empty cell under
   threshold (0 < 10) and, in sum/mean tables, only there (they have no zeros check).
2. **A sum or mean whose every value is 0** fails zeros in rds: everyone in the cell has 0
   (class disclosure). ACRO's sum/mean tables have no zeros check; it fails such a cell
   under p-ratio instead, because where the largest value is 0 it keeps the remainder (0)
   as the ratio, although its code comment says such a cell is meant to pass.
3. **Missing values (NaN)**: rds's threshold counts the values a sum or mean rests on; ACRO
   counts the cell's rows. A mean of 9 values among 10 rows fails in rds only, and a cell
   whose values are all missing fails threshold and zeros in rds (nobody's value is in it,
   and it says that nobody in the cell has one) while ACRO passes it.
4. **Negative values**: ACRO marks every cell holding one for review under dominance and
   p-ratio, and judges no other cell of that table by those rules. rds fails (for review)
   the cells that mix negative and positive values, as ACRO does — the others can cancel
   out, so the largest can be worked out from the total whatever its share — and judges
   every other cell by the sizes of its values: a cell whose values are all ≤ 0 exactly as
   ACRO judges the same cell with the signs dropped, and the table's non-negative cells as
   ACRO would without the negatives.
5. **People, not rows** (a dataset that declares a privacy unit): rds judges each person's
   total in the cell as one contribution; its verdicts are ACRO's on the table with one
   row per person per cell. ACRO, with no notion of a unit, counts rows.

rds also removes the rows of too-small groups under ``on_fail="suppress"`` (ACRO blanks the
cell); that concerns suppression, not which cells fail, and is tested in ``test_sdc.py``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from typing import Any

import acro as acro_module  # a dev dependency: a missing ACRO fails here, it is not skipped
import duckdb
import numpy as np
import pandas as pd
import pytest

from rds.checks.sdc import SDCRules, check_table, plan_cell_stats

# ACRO's import and about 100 crosstabs take half a minute; pandas warns inside ACRO.
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::FutureWarning")]

RULES = ("threshold", "dominance", "p_ratio", "zeros")
ACRO_RULES = {
    "MinimumThresholdCheck": "threshold",
    "NKCheck": "dominance",
    "PPercentCheck": "p_ratio",
    "PresenceOfZeroCheck": "zeros",
}
AGGREGATES = {"count": "count(*)", "sum": "sum(v)", "mean": "avg(v)"}
Cell = tuple[str, str]
Verdicts = dict[Cell, frozenset[str]]


@pytest.fixture(scope="module")
def acro() -> Any:
    logging.getLogger("acro").setLevel(logging.WARNING)
    session = acro_module.ACRO(suppress=False)
    # rds's defaults are ACRO's: the comparison is of the rules, not of their settings.
    config, rules = session.config, SDCRules()
    assert config["safe_threshold"] == rules.min_cell_count
    assert (config["safe_nk_n"], config["safe_nk_k"]) == rules.dominance
    assert config["safe_pratio_p"] == rules.p_ratio
    assert config["zeros_are_disclosive"] is rules.zeros_fail
    return session


def acro_verdicts(acro: Any, t: pd.DataFrame, aggregate: str) -> Verdicts:
    """ACRO's failing rules per cell of ``crosstab(t.a, t.b)`` (sum/mean of ``t.v``)."""
    if aggregate == "count":
        acro.crosstab(t.a, t.b)
    else:
        acro.crosstab(t.a, t.b, values=t.v, aggfunc=aggregate)
    records = acro.results.results
    outcome = records[list(records)[-1]].outcome
    found: Verdicts = {}
    for row in outcome.index:
        for column in outcome.columns:
            key = column[-1] if isinstance(column, tuple) else column
            names = str(outcome.loc[row, column]).replace(" ", "").split(";")
            found[(str(row), str(key))] = frozenset(ACRO_RULES[n] for n in names if n in ACRO_RULES)
    return found


def rds_verdicts(
    t: pd.DataFrame, aggregate: str, unit: str | None = None
) -> tuple[Verdicts, pd.DataFrame]:
    """rds's failing rules per cell of the same table as SQL, and the released table."""
    sql = f"SELECT a, b, {AGGREGATES[aggregate]} AS x FROM t GROUP BY a, b"
    plan = plan_cell_stats(sql, units={"t": unit})
    with duckdb.connect() as con:
        con.register("t", t)
        result = con.sql(plan.sql).df()
    table, report = check_table(plan, result, SDCRules())
    keys = [(str(a), str(b)) for a, b in zip(table.a, table.b, strict=True)]
    found: dict[Cell, set[str]] = {k: set() for k in keys}
    for check in report.checks:
        for cell in check.numbers.get("cells", []):
            found[keys[cell[0]]].add(check.rule)
        for missing in check.numbers.get("missing_combinations", []):
            found.setdefault((str(missing[0]), str(missing[1])), set()).add(check.rule)
    return {k: frozenset(v) for k, v in found.items()}, table


def expected(
    t: pd.DataFrame, aggregate: str, cell: Cell, acro_says: frozenset[str], unsigned: Verdicts
) -> frozenset[str]:
    """What rds must say of a cell: ACRO's verdict, but for the documented differences.

    ``unsigned`` is ACRO's verdicts on the same table with every value's sign dropped.
    """
    rows = t.v[(t.a == cell[0]) & (t.b == cell[1])]
    if rows.empty:  # 1. a combination that does not occur
        return frozenset({"zeros"})
    if aggregate == "count":
        return acro_says
    values = rows.dropna()
    out = set(acro_says) - {"threshold"}
    if len(values) < SDCRules().min_cell_count:  # 3. the values, not the rows
        out.add("threshold")
    if (values == 0).all():  # 2. (and 3.: no value at all)
        return frozenset((out - {"dominance", "p_ratio"}) | {"zeros"})
    if (values < 0).any() and (values > 0).any():  # 4. mixed signs: for review in both
        return frozenset(out | {"dominance", "p_ratio"})
    if (t.v < 0).any():  # 4. the rest: judged by the sizes of the values
        out -= {"dominance", "p_ratio"}
        out |= unsigned[cell] & {"dominance", "p_ratio"}
    return frozenset(out)


def random_table(seed: int, n: int = 400) -> pd.DataFrame:
    """Skewed categories (some cells tiny or empty), long-tailed values, a few outliers."""
    rng = np.random.default_rng(seed)
    t = pd.DataFrame(
        {
            "a": rng.choice(list("klmno"), n, p=[0.45, 0.3, 0.15, 0.07, 0.03]),
            "b": rng.choice(list("pqrs"), n, p=[0.5, 0.3, 0.15, 0.05]),
            "v": rng.lognormal(3, 1.2, n).round(2),
        }
    )
    outliers = rng.choice(n, 4, replace=False)
    t.loc[outliers, "v"] = rng.uniform(5_000, 50_000, 4).round(2)
    if seed % 2:
        t.loc[rng.choice(n, n // 20, replace=False), "v"] = np.nan
    if seed % 3 == 0:
        t.loc[rng.choice(n, n // 10, replace=False), "v"] = 0.0
    return t


def cells(*groups: tuple[str, str, list[float]]) -> pd.DataFrame:
    """A table from ``(a, b, values)`` groups: one row per value."""
    rows = [(a, b, v) for a, b, values in groups for v in values]
    return pd.DataFrame(rows, columns=["a", "b", "v"])


NAN = float("nan")
SPREAD = [10.0 + i for i in range(12)]  # passes every rule

EDGE_CASES: dict[str, pd.DataFrame] = {
    "tiny cells": cells(
        ("x", "p", SPREAD),
        ("x", "q", [5.0] * 9),
        ("y", "p", [3.0]),
        ("y", "q", [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]),
    ),
    "one dominant contributor": cells(
        ("x", "p", [1900.0] + [5.0] * 19),
        ("x", "q", [1000.0 + i for i in range(20)]),
        ("y", "p", [10_000.0] + [1.0] * 30),
        ("y", "q", SPREAD),
    ),
    "two large, a small rest (p-ratio)": cells(
        ("x", "p", [60.0, 35.0] + [0.3] * 10),  # rest 3 < 10% of 60
        ("x", "q", [50.0, 45.0] + [1.0] * 10),  # top two 95/105: dominance only
        ("y", "p", [50.0, 40.0] + [0.5] * 10),  # rest exactly 10% of 50: passes
        ("y", "q", [45.0, 45.0] + [1.0] * 10),  # top two exactly 90%: fails (k or more)
    ),
    "missing combinations in a two-way table": cells(
        ("x", "p", SPREAD),
        ("x", "q", SPREAD),
        ("y", "p", SPREAD),
        ("z", "r", SPREAD),
    ),
    "zero cells": cells(
        ("x", "p", [0.0] * 12),
        ("x", "q", [0.0] * 11 + [7.0]),
        ("y", "p", SPREAD),
        ("y", "q", [0.0] * 3),
    ),
    "all-zero column": cells(
        ("x", "p", [0.0] * 12),
        ("x", "q", [0.0] * 15),
        ("y", "p", [0.0] * 4),
        ("y", "q", [0.0] * 20),
    ),
    "negative values": cells(
        ("x", "p", [5.0, -5.0] * 6),  # mixed signs, cancelling out
        ("x", "q", [-3.0] * 12),  # all negative, spread
        ("y", "p", [-5000.0] + [-10.0] * 19),  # all negative, dominated
        ("y", "q", SPREAD),  # non-negative, in a table with negatives
        ("z", "p", [1900.0] + [5.0] * 19),  # non-negative and dominated
        ("z", "q", [100.0, 90.0, 50.0, -50.0, 30.0, -30.0, 20.0, -20.0, 10.0, -10.0, 5.0, -5.0]),
    ),
    "NaNs": cells(
        ("x", "p", [*SPREAD, NAN]),
        ("x", "q", [NAN] + [10.0 + i for i in range(9)]),  # 10 rows, 9 values
        ("y", "p", [NAN] * 12),
        ("y", "q", [NAN, 0.0, *SPREAD]),
    ),
}
TABLES: dict[str, pd.DataFrame] = {f"random seed {s}": random_table(s) for s in range(6)}
TABLES |= EDGE_CASES


def compared(acro: Any) -> Iterator[tuple[str, str, Cell, frozenset[str], frozenset[str]]]:
    """(table, aggregate, cell, ACRO's rules, rds's rules) for every cell compared, checking
    on the way that both computed the same cells and rds every cell as documented."""
    for name, t in TABLES.items():
        unsigned = t.assign(v=t.v.abs())
        for aggregate in AGGREGATES:
            theirs = acro_verdicts(acro, t, aggregate)
            ours, table = rds_verdicts(t, aggregate)
            assert set(ours) == set(theirs), (name, aggregate)
            plain = acro_verdicts(acro, unsigned, aggregate) if (t.v < 0).any() else theirs
            reference = pd.crosstab(
                t.a, t.b, **({} if aggregate == "count" else {"values": t.v, "aggfunc": aggregate})
            )
            for a, b, x in zip(table.a, table.b, table.x, strict=True):
                if not pd.isna(x):  # the same statistic as the crosstab's
                    assert x == pytest.approx(reference.loc[a, b]), (name, aggregate, a, b)
            for cell in sorted(theirs):
                want = expected(t, aggregate, cell, theirs[cell], plain)
                assert ours[cell] == want, (name, aggregate, cell, theirs[cell], ours[cell])
                yield name, aggregate, cell, theirs[cell], ours[cell]


def test_agreement_figure(acro: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """Every cell is judged as documented; report how many agree with ACRO rule for rule."""
    seen = list(compared(acro))
    same = [s for s in seen if s[3] == s[4]]
    per_rule = {r: sum((r in s[3]) == (r in s[4]) for s in seen) for r in RULES}
    both_fail = sum(bool(s[3]) == bool(s[4]) for s in seen)
    with capsys.disabled():
        print(f"\nACRO 1.0.2 agreement: {len(same)} of {len(seen)} cells on every rule;")
        print(f"  failing or not: {both_fail} of {len(seen)}")
        print("  per rule: " + ", ".join(f"{r} {per_rule[r]}" for r in RULES))
        reasons = Counter(
            (s[1], tuple(sorted(s[3])), tuple(sorted(s[4]))) for s in seen if s[3] != s[4]
        )
        for (aggregate, theirs, ours), n in sorted(reasons.items()):
            print(f"  {n:3d} {aggregate} cells: ACRO {list(theirs)}, rds {list(ours)}")
    # The figures README quotes; the rest are the documented differences, checked above.
    assert (len(same), len(seen)) == (425, 477)
    assert both_fail == 469


def test_seeded_tables_agree_on_every_rule_but_the_documented_ones(acro: Any) -> None:
    """Without missing values, negatives or all-zero cells, rds is ACRO cell for cell, except
    that it reports a combination that does not occur under zeros only."""
    for seed in (2, 4):  # neither NaNs nor zeros put in
        t = random_table(seed)
        for aggregate in AGGREGATES:
            theirs = acro_verdicts(acro, t, aggregate)
            ours, _ = rds_verdicts(t, aggregate)
            for cell, rules in theirs.items():
                empty = not ((t.a == cell[0]) & (t.b == cell[1])).any()
                assert ours[cell] == ({"zeros"} if empty else rules), (seed, aggregate, cell)


def test_dominance_fails_at_exactly_k_and_p_ratio_passes_at_exactly_p(acro: Any) -> None:
    t = EDGE_CASES["two large, a small rest (p-ratio)"]
    for aggregate in ("sum", "mean"):
        theirs, (ours, _) = acro_verdicts(acro, t, aggregate), rds_verdicts(t, aggregate)
        for verdicts in (theirs, ours):
            assert verdicts[("x", "p")] == {"dominance", "p_ratio"}
            assert verdicts[("x", "q")] == {"dominance"}
            assert verdicts[("y", "p")] == {"dominance"}  # 90 of 95: dominance, not p-ratio
            assert verdicts[("y", "q")] == {"dominance"}  # 90 of 100: k or more


def test_difference_1_a_missing_combination_is_a_zero_cell(acro: Any) -> None:
    t = EDGE_CASES["missing combinations in a two-way table"]
    empty = [("x", "r"), ("y", "q"), ("y", "r"), ("z", "p"), ("z", "q")]
    for aggregate, acro_rules in (
        ("count", {"threshold", "zeros"}),
        ("sum", {"threshold"}),
        ("mean", {"threshold"}),
    ):
        theirs, (ours, table) = acro_verdicts(acro, t, aggregate), rds_verdicts(t, aggregate)
        assert len(table) == 4  # the SQL result has no row for them
        assert [c for c in sorted(theirs) if theirs[c]] == empty
        assert all(theirs[c] == acro_rules and ours[c] == {"zeros"} for c in empty)


def test_difference_2_an_all_zero_sum_is_a_zero_not_a_p_ratio(acro: Any) -> None:
    t = EDGE_CASES["zero cells"]
    for aggregate in ("sum", "mean"):
        theirs, (ours, _) = acro_verdicts(acro, t, aggregate), rds_verdicts(t, aggregate)
        assert theirs[("x", "p")] == {"p_ratio"} and ours[("x", "p")] == {"zeros"}
        # one 7 among zeros: both see it dominate the cell
        assert theirs[("x", "q")] == ours[("x", "q")] == {"dominance", "p_ratio"}
        assert theirs[("y", "q")] == {"threshold", "p_ratio"}
        assert ours[("y", "q")] == {"threshold", "zeros"}
    counts = acro_verdicts(acro, t, "count")
    assert counts[("x", "p")] == frozenset() == rds_verdicts(t, "count")[0][("x", "p")]


def test_difference_3_threshold_counts_the_values_not_the_rows(acro: Any) -> None:
    t = EDGE_CASES["NaNs"]
    for aggregate in ("sum", "mean"):
        theirs, (ours, _) = acro_verdicts(acro, t, aggregate), rds_verdicts(t, aggregate)
        assert theirs[("x", "p")] == ours[("x", "p")] == frozenset()  # NaN ignored by both
        assert theirs[("x", "q")] == frozenset() and ours[("x", "q")] == {"threshold"}
        assert theirs[("y", "p")] == frozenset() and ours[("y", "p")] == {"threshold", "zeros"}
        assert theirs[("y", "q")] == ours[("y", "q")] == frozenset()
    assert rds_verdicts(t, "count")[0][("x", "q")] == frozenset()  # count(*) counts rows


def test_difference_4_negative_values(acro: Any) -> None:
    t = EDGE_CASES["negative values"]
    unsigned = t.assign(v=t.v.abs())
    for aggregate in ("sum", "mean"):
        theirs, (ours, _) = acro_verdicts(acro, t, aggregate), rds_verdicts(t, aggregate)
        plain = acro_verdicts(acro, unsigned, aggregate)
        records = acro.results.results
        assert "negative" in records[list(records)[-2]].summary  # ACRO: "for review"
        negative = {("x", "p"), ("x", "q"), ("y", "p"), ("z", "q")}
        assert {c for c, r in theirs.items() if r} == negative  # and nothing else
        assert all(theirs[c] == {"dominance", "p_ratio"} for c in negative)
        # mixed signs: for review in rds too. 100, 90 and a rest that adds up to 0: the
        # second largest learns the largest exactly, though its share looks small.
        assert ours[("x", "p")] == ours[("z", "q")] == {"dominance", "p_ratio"}
        assert plain[("z", "q")] == frozenset()  # what judging the sizes alone would say
        # all ≤ 0: by their sizes, as ACRO judges the unsigned cell
        assert ours[("x", "q")] == plain[("x", "q")] == frozenset()
        assert ours[("y", "p")] == plain[("y", "p")] == {"dominance", "p_ratio"}
        # non-negative cells, which ACRO leaves unjudged once the table has a negative
        assert ours[("z", "p")] == plain[("z", "p")] == {"dominance", "p_ratio"}
        assert ours[("y", "q")] == frozenset()


def test_difference_5_with_a_unit_rds_is_acro_on_one_row_per_person(acro: Any) -> None:
    """A person's many rows are one contribution: rds with the unit declared judges the
    rows as ACRO judges the table of per-person totals."""
    rng = np.random.default_rng(7)
    people = pd.DataFrame(
        {
            "person": np.arange(160),
            "a": rng.choice(list("xyz"), 160, p=[0.6, 0.3, 0.1]),
            "b": rng.choice(list("pq"), 160, p=[0.7, 0.3]),
        }
    )
    rows = people.loc[people.index.repeat(rng.integers(1, 6, 160))].reset_index(drop=True)
    rows["v"] = rng.lognormal(2, 1, len(rows)).round(2)
    rows.loc[rows.person == 3, "v"] *= 40  # one person with a large share of their cell
    totals = rows.groupby(["a", "b", "person"], as_index=False)["v"].sum()
    for aggregate in ("count", "sum"):
        per_person = acro_verdicts(acro, totals, aggregate)
        ours, _ = rds_verdicts(rows, aggregate, unit="person")
        by_row = acro_verdicts(acro, rows, aggregate)
        for cell, rules in per_person.items():
            empty = not ((totals.a == cell[0]) & (totals.b == cell[1])).any()
            assert ours[cell] == ({"zeros"} if empty else rules), (aggregate, cell)
        assert per_person != by_row  # counting rows would have judged other cells
