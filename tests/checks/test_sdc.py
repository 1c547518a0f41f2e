"""SQL disclosure control: each rule on hand-built tables whose right verdict is known.

Every query runs for real: rewritten by ``plan_cell_stats``, executed by DuckDB over pandas
frames, judged by ``check_table``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection

import duckdb
import numpy as np
import pandas as pd
import pytest

from rds.checks.report import CheckReport
from rds.checks.sdc import CellStatsPlan, SDCRules, check_table, plan_cell_stats
from rds.errors import InvalidInput


def people(**wards: list[float]) -> pd.DataFrame:
    """One row per person: ``ward=[salaries]``; the first person of ward b is Alice."""
    rows = [(w, s) for w, salaries in wards.items() for s in salaries]
    frame = pd.DataFrame(rows, columns=["ward", "salary"])
    frame.insert(0, "id", range(len(frame)))
    frame.insert(1, "name", [f"person{i}" for i in range(len(frame))])
    frame["age"] = 30 + frame["id"] % 40
    frame["flag"] = 0
    if "b" in wards:
        frame.loc[frame.index[frame.ward == "b"][0], "name"] = "Alice"
    return frame


def run(
    sql: str,
    tables: dict[str, pd.DataFrame],
    *,
    rules: SDCRules | None = None,
    on_fail: str = "block",
    non_sensitive: Collection[str] = (),
    columns: dict[str, list[str]] | None = None,
) -> tuple[CellStatsPlan, pd.DataFrame, CheckReport]:
    plan = plan_cell_stats(sql, non_sensitive=non_sensitive, columns=columns)
    with duckdb.connect() as con:
        for name, frame in tables.items():
            con.register(name, frame)
        result = con.sql(plan.sql).df()
    table, report = check_table(plan, result, rules or SDCRules(), on_fail=on_fail)
    return plan, table, report


def verdicts(report: CheckReport) -> dict[str, str]:
    return {c.rule: c.verdict for c in report.checks}


def check(report: CheckReport, rule: str) -> tuple[str, str, dict]:
    found = {c.rule: c for c in report.checks}[rule]
    return found.verdict, found.explanation, found.numbers


BY_WARD = "SELECT ward, count(*) AS n FROM t GROUP BY ward ORDER BY ward"


def test_threshold_edge_ten_records_pass_nine_fail() -> None:
    t = people(a=[1.0] * 10, b=[1.0] * 9)
    plan, _, report = run(BY_WARD, {"t": t})
    assert plan.shape == "aggregate"
    verdict, text, numbers = check(report, "threshold")
    assert verdict == "fail"
    assert numbers["cells"] == [[1, "n", 9.0]]
    assert numbers["small_groups"] == [1]
    assert "1 of 2 cells has fewer than 10 records" in text
    _, _, ok = run(BY_WARD, {"t": people(a=[1.0] * 10, b=[1.0] * 10)})
    assert verdicts(ok)["threshold"] == "pass"
    _, _, lower = run(BY_WARD, {"t": t}, rules=SDCRules(min_cell_count=9))
    assert verdicts(lower)["threshold"] == "pass"


def test_block_returns_exactly_what_the_query_returns() -> None:
    t = people(a=[1.0, 2.0] * 6, b=[5.0] * 3)
    sql = "SELECT ward, count(*) AS n, avg(salary) AS mean, n * 2 AS twice FROM t GROUP BY ALL"
    _, table, _ = run(sql + " ORDER BY ALL", {"t": t})
    with duckdb.connect() as con:
        con.register("t", t)
        direct = con.sql(sql + " ORDER BY ALL").df()
    pd.testing.assert_frame_equal(table, direct)


def test_a_cell_counts_the_records_of_its_own_argument() -> None:
    t = people(a=[1.0] * 10)
    t.loc[0, "salary"] = np.nan  # avg(salary) rests on 9 records, count(*) on 10
    _, _, report = run("SELECT count(*) AS n, avg(salary) AS mean FROM t", {"t": t})
    assert check(report, "threshold")[2]["cells"] == [[0, "mean", 9.0]]


def test_dominance_one_record_with_95_percent_fails_a_spread_cell_passes() -> None:
    t = people(a=[100.0] * 20, b=[1900.0] + [5.0] * 19)  # b: 1900 / 1995 = 95%
    _, _, report = run(
        "SELECT ward, sum(salary) AS total FROM t GROUP BY ward ORDER BY 1", {"t": t}
    )
    verdict, text, numbers = check(report, "dominance")
    assert verdict == "fail"
    assert [c[:2] for c in numbers["cells"]] == [[1, "total"]]
    assert numbers["cells"][0][2] == pytest.approx((1900 + 5) / 1995)
    assert "90% or more" in text
    assert verdicts(report)["threshold"] == "pass"
    spread = people(a=[100.0] * 20, b=[50.0 + i for i in range(20)])
    _, _, fine = run("SELECT ward, avg(salary) AS m FROM t GROUP BY ward", {"t": spread})
    assert verdicts(fine)["dominance"] == "pass"


def test_negative_contributions_count_by_size() -> None:
    t = people(a=[-5000.0] + [10.0] * 19)  # the sum is negative, but one record dominates it
    _, _, report = run("SELECT sum(salary) AS s FROM t", {"t": t})
    assert verdicts(report)["dominance"] == "fail"


def test_p_ratio_fails_when_the_rest_cannot_hide_the_largest() -> None:
    rules = SDCRules(dominance=(1, 0.9))  # so that only the p-ratio can fail
    close = people(a=[60.0, 35.0] + [0.3] * 10)  # the rest: 3 < 10% of 60
    _, _, report = run("SELECT sum(salary) AS s FROM t", {"t": close}, rules=rules)
    assert verdicts(report)["dominance"] == "pass"
    verdict, text, numbers = check(report, "p_ratio")
    assert verdict == "fail"
    assert numbers["cells"][0][2] == pytest.approx(3 / 60)
    assert "less than 10% of the largest" in text
    wide = people(a=[60.0, 35.0] + [2.0] * 10)  # the rest: 20 ≥ 6
    _, _, fine = run("SELECT sum(salary) AS s FROM t", {"t": wide}, rules=rules)
    assert verdicts(fine)["p_ratio"] == "pass"


def test_zeros_are_disclosive_unless_the_rules_allow_them() -> None:
    t = people(a=[1.0] * 12, b=[1.0] * 12)
    t.loc[t.ward == "a", "flag"] = 1
    sql = "SELECT ward, sum(flag) AS flagged FROM t GROUP BY ward ORDER BY ward"
    _, _, report = run(sql, {"t": t})
    verdict, _, numbers = check(report, "zeros")
    assert verdict == "fail"
    assert numbers["cells"] == [[1, "flagged"]]
    assert verdicts(report)["dominance"] == "pass"  # an all-zero cell has nothing dominating it
    assert verdicts(report)["threshold"] == "pass"
    _, _, allowed = run(sql, {"t": t}, rules=SDCRules(zeros_fail=False))
    assert verdicts(allowed)["zeros"] == "pass"
    counted = "SELECT ward, count(*) FILTER (WHERE flag = 1) AS n FROM t GROUP BY ward ORDER BY 1"
    _, _, counts = run(counted, {"t": t})
    assert check(counts, "zeros")[2]["cells"] == [[1, "n"]]


def test_a_sum_that_cancels_out_is_not_a_zero() -> None:
    t = people(a=[5.0, -5.0] * 6)
    _, _, report = run("SELECT sum(salary) AS s FROM t", {"t": t})
    assert verdicts(report)["zeros"] == "pass"


@pytest.mark.parametrize(
    "aggregate",
    [
        "max(age)",
        "min(age)",
        "median(age)",
        "any_value(name)",
        "list(name)",
        "string_agg(name, ',')",
        "arg_max(name, age)",
        "quantile_cont(age, 0.9)",
        "mode(age)",
        "first(name)",
        "histogram(age)",
    ],
)
def test_extreme_values_fail_in_both_modes(aggregate: str) -> None:
    t = people(a=[1.0] * 30)
    sql = f"SELECT ward, count(*) AS n, {aggregate} AS x FROM t GROUP BY ward"
    for mode in ("block", "suppress"):
        _, table, report = run(sql, {"t": t}, on_fail=mode)
        verdict, text, _ = check(report, "extreme_values")
        assert verdict == "fail" and report.verdict == "fail"
        assert text.endswith("in x shows individual records' values.")
        assert table["x"].notna().all()  # not suppressible: the owner decides


def test_record_level_queries_need_non_sensitive_columns() -> None:
    t = people(a=[1.0] * 12)
    tables = {"t": t}
    plan, table, report = run("SELECT ward, age FROM t", tables, non_sensitive=["ward"])
    assert plan.shape == "record" and plan.sql == "SELECT ward, age FROM t"
    verdict, text, numbers = check(report, "record_level")
    assert verdict == "fail" and "age" in text and numbers["rows"] == 12
    assert len(table) == 12
    ok = run("SELECT ward, age FROM t ORDER BY age", tables, non_sensitive=["ward", "age"])[2]
    assert ok.verdict == "pass"
    where = "SELECT ward FROM t WHERE name = 'Alice'"
    assert check(run(where, tables, non_sensitive=["ward"])[2], "record_level")[2][
        "sensitive_columns"
    ] == ["name"]
    joined = "SELECT a.ward FROM t a JOIN t b USING (id) ORDER BY b.salary"
    assert run(joined, tables, non_sensitive=["ward"])[0].sensitive_columns == ("id", "salary")
    distinct = run("SELECT DISTINCT ward FROM t", tables, non_sensitive=["ward"])
    assert distinct[0].shape == "record" and distinct[2].verdict == "pass"


def test_select_star_counts_as_every_column() -> None:
    t = people(a=[1.0] * 12)
    tables, cols = {"t": t}, {"t": list(t.columns)}
    everything = list(t.columns)
    star = run("SELECT * FROM t", tables, non_sensitive=["ward"], columns=cols)
    assert star[0].sensitive_columns == ("age", "flag", "id", "name", "salary")
    assert (
        run("SELECT * FROM t", tables, non_sensitive=everything, columns=cols)[2].verdict == "pass"
    )
    unknown = run("SELECT * FROM t", tables, non_sensitive=everything)
    assert unknown[0].sensitive_columns == ("*",) and unknown[2].verdict == "fail"
    exclude = "SELECT * EXCLUDE (name, salary) FROM t"
    safe = ["id", "ward", "age", "flag"]
    assert run(exclude, tables, non_sensitive=safe, columns=cols)[2].verdict == "pass"
    cte = "WITH x AS (SELECT ward AS w FROM t) SELECT w FROM x"
    assert run(cte, tables, non_sensitive=["ward"], columns=cols)[2].verdict == "pass"
    assert run(cte, tables, non_sensitive=["ward"])[2].verdict == "fail"  # w is unknown


def test_filter_clauses_are_judged_by_their_own_count() -> None:
    t = people(a=[1.0] * 30, b=[1.0] * 30)
    sql = (
        "SELECT ward, count(*) AS n, count(*) FILTER (WHERE name = 'Alice') AS alice, "
        "sum(salary) FILTER (WHERE name = 'Alice') AS pay FROM t GROUP BY ward ORDER BY ward"
    )
    _, _, report = run(sql, {"t": t})
    numbers = check(report, "threshold")[2]
    assert [c[:2] for c in numbers["cells"]] == [[0, "alice"], [0, "pay"], [1, "alice"], [1, "pay"]]
    assert [c[2] for c in numbers["cells"]] == [0.0, 0.0, 1.0, 1.0]
    _, suppressed, _ = run(sql, {"t": t}, on_fail="suppress")
    assert suppressed["n"].tolist() == [30, 30]  # the group's own count stays
    assert suppressed[["alice", "pay"]].isna().all().all()


def test_a_case_expression_singling_out_one_person_is_dominated() -> None:
    t = people(a=[1.0] * 40, b=[1.0] * 40)
    sql = "SELECT ward, SUM(CASE WHEN name = 'Alice' THEN 1 ELSE 0 END) AS alice FROM t GROUP BY 1"
    _, _, report = run(sql + " ORDER BY 1", {"t": t})
    assert verdicts(report)["threshold"] == "pass"  # 40 records each
    assert check(report, "dominance")[2]["cells"] == [[1, "alice", 1.0]]
    assert check(report, "zeros")[2]["cells"] == [[0, "alice"]]


def test_window_percentages_are_judged_by_the_group_count() -> None:
    t = people(a=[1.0] * 20, b=[1.0] * 4, c=[1.0] * 16)
    sql = (
        "SELECT ward, count(*) * 100.0 / sum(count(*)) OVER () AS pct FROM t "
        "GROUP BY ward ORDER BY ward"
    )
    plan, table, report = run(sql, {"t": t})
    assert [(a.function, a.columns) for a in plan.aggregates] == [("count", (1,))]
    assert table["pct"].tolist() == pytest.approx([50.0, 10.0, 40.0])
    assert check(report, "threshold")[2]["cells"] == [[1, "pct", 4.0]]


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        (
            "WITH adults AS (SELECT * FROM t WHERE age >= 30) SELECT p.ward, count(*) AS n "
            "FROM adults p GROUP BY p.ward",
            "CTEs",
        ),
        (
            "SELECT p.ward, count(*) AS visits, sum(v.cost) AS cost FROM t p "
            "JOIN visits v ON p.id = v.patient_id GROUP BY p.ward",
            "join",
        ),
        ("SELECT t.ward, count(*) AS n FROM t CROSS JOIN visits GROUP BY t.ward", "join"),
        (
            "SELECT a.ward, count(*) AS n FROM t a JOIN t b ON a.ward = b.ward GROUP BY a.ward",
            "join",
        ),
        ("SELECT ward, count(*) AS n FROM t, unnest(range(20)) GROUP BY ward", "join"),
        (
            "WITH x AS (SELECT * FROM t) SELECT x.ward, count(*) AS n FROM x, x AS y "
            "GROUP BY x.ward",
            "CTEs",
        ),
        ("SELECT ward, count(*) AS n FROM (SELECT * FROM t) AS x GROUP BY ward", "derived"),
        ("SELECT ward, count(*) AS n FROM t GROUP BY ROLLUP (ward)", "ROLLUP"),
        ("SELECT ward, count(*) AS n FROM t GROUP BY ALL", "GROUP BY ALL"),
    ],
)
def test_aggregates_over_joins_and_derived_tables_are_left_to_the_owner(
    sql: str, reason: str
) -> None:
    """Over a join a row can stand for several people (a CROSS JOIN makes one record twenty):
    rds does not pretend to count people there, and the shape check fails."""
    t = people(a=[1.0] * 15, b=[1.0] * 15)
    visits = pd.DataFrame({"patient_id": [*range(12), *range(15, 24)], "cost": 10.0})
    plan, _, report = run(sql, {"t": t, "visits": visits})
    assert plan.shape == "unsupported" and reason in plan.reason
    assert report.verdict == "fail" and report.failed[0].rule == "shape"


def test_count_distinct_counts_distinct_contributors() -> None:
    visits = pd.DataFrame({"patient_id": [1, 2, 3] * 20, "ward": "a"})
    sql = (
        "SELECT ward, count(*) AS visits, count(DISTINCT patient_id) AS patients FROM v GROUP BY 1"
    )
    _, _, report = run(sql, {"v": visits})
    assert check(report, "threshold")[2]["cells"] == [[0, "patients", 3.0]]


def test_having_filters_groups_and_the_survivors_are_judged() -> None:
    t = people(a=[1.0] * 30, b=[1.0] * 4)
    small = run("SELECT ward, count(*) AS n FROM t GROUP BY ward HAVING count(*) < 10", {"t": t})
    assert small[1]["ward"].tolist() == ["b"] and verdicts(small[2])["threshold"] == "fail"
    big = run("SELECT ward, count(*) AS n FROM t GROUP BY ward HAVING count(*) >= 10", {"t": t})
    assert big[2].verdict == "pass"


def test_a_listing_of_groups_is_judged_by_group_size() -> None:
    t = people(a=[1.0] * 30, b=[1.0] * 4)
    plan, _, report = run("SELECT ward FROM t GROUP BY ward ORDER BY ward", {"t": t})
    assert plan.shape == "aggregate" and plan.aggregates == ()
    assert check(report, "threshold")[2]["small_groups"] == [1]
    _, removed, _ = run(
        "SELECT ward FROM t GROUP BY ward ORDER BY ward", {"t": t}, on_fail="suppress"
    )
    assert removed["ward"].tolist() == ["a"]


def test_a_group_of_one_made_by_an_expression_is_caught() -> None:
    t = people(a=[50_000.0] * 30, b=[60_000.0] * 30)
    t.loc[t.name == "Alice", "salary"] = 123_456.0
    sql = "SELECT name = 'Alice' AS is_alice, avg(salary) AS pay FROM t GROUP BY 1 ORDER BY 1"
    _, table, report = run(sql, {"t": t})
    assert table["pay"].tolist()[1] == 123_456.0  # block: the owner sees it, and it fails
    assert check(report, "threshold")[2]["small_groups"] == [1]
    _, released, warned = run(sql, {"t": t}, on_fail="suppress")
    assert released["is_alice"].tolist() == [False]
    assert "123456" not in json.dumps(warned.for_scientist().to_dict())


def test_suppress_blanks_only_failing_cells_and_keeps_keys() -> None:
    t = people(a=[1000.0 + i for i in range(30)], b=[987_654.0] + [10.0] * 29, c=[5.0] * 7)
    sql = "SELECT ward, count(*) AS n, sum(salary) AS total FROM t GROUP BY ward ORDER BY ward"
    _, blocked, failed = run(sql, {"t": t})
    assert blocked["total"].notna().all() and len(blocked) == 3
    assert verdicts(failed) | {"shape": "pass"} == {
        "shape": "pass",
        "threshold": "fail",
        "dominance": "fail",
        "p_ratio": "fail",
        "zeros": "pass",
        "extreme_values": "pass",
    }
    _, table, report = run(sql, {"t": t}, on_fail="suppress")
    assert table["ward"].tolist() == ["a", "b"]  # c: 7 records, removed keys and all
    assert table.index.tolist() == [0, 1]
    assert table["n"].tolist() == [30, 30]
    assert table["total"].iloc[0] == blocked["total"].iloc[0]
    assert np.isnan(table["total"].iloc[1])
    assert {c.rule: c.verdict for c in report.checks if c.verdict != "pass"} == {
        "threshold": "warn",
        "dominance": "warn",
        "p_ratio": "warn",
    }
    assert report.verdict == "warn"
    assert "(suppressed)" in check(report, "dominance")[1]
    assert "(removed)" in check(report, "threshold")[1]
    seen = report.for_scientist()
    assert all(c.numbers == {} for c in seen.checks)
    figures = {float(x) for c in seen.checks for x in re.findall(r"\d+(?:\.\d+)?", c.explanation)}
    assert figures.isdisjoint({987_944.0, 987_654.0, 7.0, 35.0})  # b's total, c's n and sum
    assert check(report, "threshold")[2]["smallest_group"] == 7  # the owner still sees it


def test_suppressed_integer_cells_become_nulls_not_floats() -> None:
    t = people(a=[1.0] * 30, b=[1.0] * 30)
    sql = (
        "SELECT ward, count(*) AS n, count(*) FILTER (WHERE name = 'Alice') AS x FROM t GROUP BY 1"
    )
    _, table, _ = run(sql + " ORDER BY 1", {"t": t}, on_fail="suppress")
    assert str(table["x"].dtype) == "Int64" and table["x"].isna().all()
    assert str(table["n"].dtype) == "int64"


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("SELECT ward FROM t UNION SELECT name FROM t", "UNION"),
        ("SELECT DISTINCT count(*) FROM t GROUP BY ward", "DISTINCT"),
        ("SELECT ward, count(*), (SELECT max(age) FROM t) FROM t GROUP BY ward", "subquery"),
        ("SELECT *, count(*) OVER () FROM t GROUP BY ALL", "\\*"),
        ("SELECT max(COLUMNS(*)) FROM t", "COLUMNS"),
        ("SELECT ward, count(*) AS __rds_rows FROM t GROUP BY ward", "reserved"),
    ],
)
def test_unsupported_shapes_fail_in_both_modes(sql: str, reason: str) -> None:
    t = people(a=[1.0] * 30)
    for mode in ("block", "suppress"):
        plan, table, report = run(sql, {"t": t}, on_fail=mode)
        assert plan.shape == "unsupported" and plan.sql == sql
        assert [(c.rule, c.verdict) for c in report.checks] == [("shape", "fail")]
        assert "owner must review" in report.checks[0].explanation
        assert re.search(reason, plan.reason)
        assert len(table) >= 1  # returned as it ran, for the owner to review


def test_a_lateral_alias_of_an_aggregate_is_a_cell() -> None:
    t = people(a=[1.0] * 5)
    plan, _, report = run("SELECT sum(salary) AS s, s / 2 AS half FROM t", {"t": t})
    assert plan.aggregates[0].columns == (0, 1)
    assert [c[1] for c in check(report, "threshold")[2]["cells"]] == ["s", "half"]


def test_bad_rules_and_mismatched_results_are_refused() -> None:
    for bad in (
        {"min_cell_count": 0},
        {"min_cell_count": 2.5},
        {"dominance": (0, 0.9)},
        {"dominance": (2, 1.5)},
        {"dominance": (2,)},
        {"p_ratio": 1.0},
        {"zeros_fail": "yes"},
    ):
        with pytest.raises(InvalidInput):
            SDCRules(**bad)
    plan = plan_cell_stats(BY_WARD)
    with pytest.raises(InvalidInput, match=r"plan\.sql"):
        check_table(plan, pd.DataFrame({"ward": ["a"], "n": [3]}), SDCRules())
    with pytest.raises(InvalidInput, match="on_fail"):
        check_table(plan, pd.DataFrame(), SDCRules(), on_fail="hide")
    with pytest.raises(InvalidInput, match="top_n"):
        check_table(plan, pd.DataFrame(), SDCRules(dominance=(9, 0.9)))
