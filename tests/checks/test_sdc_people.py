"""Disclosure rules count people, not rows, and judge combinations that do not occur.

Each query runs for real on DuckDB: rewritten by ``plan_cell_stats`` with the dataset's
privacy unit and declared categories, judged by ``check_table``. The attacks are the ones a
red team used on rules that counted rows: one person's rows replicated or spread over a cell,
one person dominating through many small rows, and a crosstab whose missing rows say who has
which value.
"""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest

from rds.checks.report import CheckReport
from rds.checks.sdc import CellStatsPlan, SDCRules, check_table, plan_cell_stats


def run(
    sql: str,
    table: pd.DataFrame,
    *,
    unit: str | None = "customer_id",
    categories: dict[str, list[Any]] | None = None,
    on_fail: str = "block",
) -> tuple[CellStatsPlan, pd.DataFrame, CheckReport]:
    plan = plan_cell_stats(
        sql,
        columns={"tx": list(table.columns)},
        units={"tx": unit},
        categories={"tx": categories or {}},
    )
    with duckdb.connect() as con:
        con.register("tx", table)
        result = con.sql(plan.sql).df()
    released, report = check_table(plan, result, SDCRules(), on_fail=on_fail)
    return plan, released, report


def rule(report: CheckReport, name: str) -> Any:
    return {c.rule: c for c in report.checks}[name]


def transactions(customers: int = 60, per_customer: int = 20, seed: int = 1) -> pd.DataFrame:
    """``per_customer`` rows each; customer 0 is the target, with one big purchase."""
    rng = np.random.default_rng(seed)
    ids = np.repeat(np.arange(customers), per_customer)
    frame = pd.DataFrame(
        {
            "customer_id": ids,
            "row_id": np.arange(len(ids)),
            "region": np.where(ids % 2 == 0, "north", "south"),
            "amount": rng.uniform(1, 50, len(ids)).round(2),
        }
    )
    frame.loc[0, "amount"] = 4321.09
    return frame


def test_one_person_s_many_rows_are_one_person() -> None:
    tx = transactions()
    sql = "SELECT customer_id, count(*) AS n, sum(amount) AS total FROM tx GROUP BY customer_id"
    _, released, report = run(sql, tx)
    assert released["n"].min() == 20  # 20 rows a cell: a row-counting rule passes them all
    threshold = rule(report, "threshold")
    assert threshold.verdict == "fail" and "fewer than 10 people" in threshold.explanation
    assert threshold.numbers["failing"] == 2 * len(released)  # n and total, every row
    # Without a declared unit rows are units, and the same query passes the threshold.
    _, _, rows = run(sql, tx, unit=None)
    assert rule(rows, "threshold").verdict == "pass"


@pytest.mark.parametrize(
    "sql",
    [
        # the row number as the key: each cell is one row, however many copies
        "SELECT row_id, sum(amount) AS s FROM tx GROUP BY row_id ORDER BY s DESC LIMIT 25",
        # an expression isolating the target inside a big group
        "SELECT customer_id = 0 AS me, sum(amount) AS s FROM tx GROUP BY 1",
        # a FILTER column isolating the target
        "SELECT region, sum(amount) FILTER (WHERE customer_id = 0) AS s FROM tx GROUP BY region",
        # count(DISTINCT …) of a column the target alone has
        "SELECT region, count(DISTINCT amount) FILTER (WHERE amount > 4000) AS k "
        "FROM tx GROUP BY region",
    ],
)
def test_cells_of_one_person_fail_whatever_their_rows(sql: str) -> None:
    _, _, report = run(sql, transactions())
    assert rule(report, "threshold").verdict == "fail", rule(report, "threshold").explanation


def test_suppression_blanks_one_person_cells_and_keeps_the_rest() -> None:
    sql = (
        "SELECT region, sum(amount) FILTER (WHERE customer_id = 0) AS s, count(*) AS n "
        "FROM tx GROUP BY region ORDER BY region"
    )
    _, released, report = run(sql, transactions(), on_fail="suppress")
    assert released["s"].isna().all() and 4321.09 not in released["s"].tolist()
    assert released["n"].tolist() == [600, 600]
    assert rule(report, "threshold").verdict == "warn"


def test_dominance_is_judged_on_each_person_s_total() -> None:
    """The target has 40 rows of 100 (4,000); 19 others have 2 rows of 5. No single row
    dominates (the largest two rows are 200 of 4,190), but one person is 95% of the cell."""
    rows = [(0, 100.0)] * 40 + [(c, 5.0) for c in range(1, 20) for _ in range(2)]
    tx = pd.DataFrame(rows, columns=["customer_id", "amount"]).assign(region="north")
    sql = "SELECT region, sum(amount) AS total FROM tx GROUP BY region"
    _, _, people = run(sql, tx)
    assert rule(people, "threshold").verdict == "pass"  # 20 people
    dominance = rule(people, "dominance")
    assert dominance.verdict == "fail"
    assert dominance.numbers["cells"][0][2] == pytest.approx((4000 + 10) / 4190)
    _, _, by_row = run(sql, tx, unit=None)
    assert rule(by_row, "dominance").verdict == "pass"  # what a rule over rows would say


def test_p_ratio_uses_people_s_totals() -> None:
    rows = [(0, 50.0)] * 20 + [(1, 50.0)] * 20 + [(c, 1.0) for c in range(2, 14)]
    tx = pd.DataFrame(rows, columns=["customer_id", "amount"]).assign(region="n")
    _, _, report = run("SELECT sum(amount) AS total FROM tx", tx)
    p = rule(report, "p_ratio")
    assert p.verdict == "fail" and p.numbers["cells"][0][2] == pytest.approx(12 / 1000)


def test_missing_combinations_of_the_keys_are_zero_cells() -> None:
    """Every north customer is 'gold': the crosstab has no (north, basic) row, and the rows
    that are there say that everyone in the north is gold — ACRO's zeros rule catches it
    because it judges the full cross product; a rule that only sees rows would not."""
    tx = transactions()
    tx["tier"] = np.where(
        tx["region"] == "north",
        "gold",
        tx["customer_id"].map(lambda c: "gold" if c % 3 == 0 else "basic"),
    )
    sql = "SELECT region, tier, count(*) AS n FROM tx GROUP BY region, tier"
    for on_fail in ("block", "suppress"):
        _, released, report = run(sql, tx, on_fail=on_fail)
        assert len(released) == 3
        zeros = rule(report, "zeros")
        assert zeros.verdict == "fail", on_fail  # nothing to blank: the row is not there
        assert zeros.numbers["missing_combinations"] == [["north", "basic"]]
        assert "1 of 4 combinations of region, tier have no row" in zeros.explanation


def test_declared_categories_count_as_combinations_too() -> None:
    tx = transactions()
    declared = {"region": ["north", "south", "east"]}
    _, _, report = run(
        "SELECT region, count(*) AS n FROM tx GROUP BY region", tx, categories=declared
    )
    assert rule(report, "zeros").numbers["missing_combinations"] == [["east"]]
    # A WHERE on the key narrows its domain to what the query asked for: no false alarm.
    sql = "SELECT region, count(*) AS n FROM tx WHERE region = 'north' GROUP BY region"
    _, _, narrowed = run(sql, tx, categories=declared)
    assert rule(narrowed, "zeros").verdict == "pass"


def test_a_full_crosstab_passes() -> None:
    tx = transactions()
    tx["tier"] = np.where(tx["customer_id"] % 3 == 0, "gold", "basic")
    sql = "SELECT region, tier, count(*) AS n, avg(amount) AS a FROM tx GROUP BY region, tier"
    _, released, report = run(sql, tx)
    assert len(released) == 4 and report.verdict == "pass", report
    assert [c for c in released.columns if c.startswith("__rds")] == []
