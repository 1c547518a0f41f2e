"""What counting people costs an exact SQL check, against the query on its own.

The owner's run of an exact aggregate executes ``plan_cell_stats``'s rewrite: the query plus,
per cell, the distinct privacy units behind it and each person's total (windows over the
query's rows, partitioned by the GROUP BY keys and the unit). The baseline is the plain
query on the same Parquet file, in the same DuckDB process; both in memory, no sandbox, so
the ratio is the rewrite's own cost (with a unit: one more aggregation, by cell and person,
joined on; without one: extra aggregates in the same pass)::

    SELECT region, category, COUNT(*), SUM(amount), AVG(amount) FROM transactions
    GROUP BY region, category
"""

from __future__ import annotations

from pathlib import Path

import duckdb
from dp_sql import best  # best of N after a warm-up run

from rds.checks.sdc import SDCRules, check_table, plan_cell_stats
from rds.demo import transactions

QUERY = (
    "SELECT region, category, COUNT(*) AS n, SUM(amount) AS total, AVG(amount) AS mean "
    "FROM transactions GROUP BY region, category"
)


def checks_path(workdir: Path, sizes: list[int], repeat: int) -> None:
    print("\n== Exact SQL checks: people counted per cell vs the plain query ==")
    for rows in sizes:
        path = workdir / f"checks{rows}.parquet"
        transactions(rows).to_parquet(path)
        with duckdb.connect() as con:
            print(f"  {rows:>11,} rows: {_compare(con, path, repeat)}")


def _compare(con: duckdb.DuckDBPyConnection, path: Path, repeat: int) -> str:
    con.sql("SET enable_progress_bar = false")
    con.sql(f"CREATE VIEW transactions AS SELECT * FROM read_parquet('{path}')")
    columns = [r[0] for r in con.sql("DESCRIBE transactions").fetchall()]
    raw = best(lambda: con.sql(QUERY).df(), repeat)
    figures = [f"plain query {raw:.3f}s"]
    for unit in ("customer_id", None):
        plan = plan_cell_stats(
            QUERY, columns={"transactions": columns}, units={"transactions": unit}
        )
        cost = best(lambda plan=plan: check_table(plan, con.sql(plan.sql).df(), SDCRules()), repeat)
        figures.append(f"checked, unit={unit or 'row'} {cost:.3f}s = {cost / raw:.2f}x")
    return " | ".join(figures)
