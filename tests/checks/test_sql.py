"""SQL requests: one read-only query over published datasets; everything else refused."""

from __future__ import annotations

import pytest

from rds.checks.sql import check_query
from rds.errors import InvalidInput

DATASETS = {"patients", "visits"}


@pytest.mark.parametrize(
    ("query", "used"),
    [
        ("SELECT ward, count(*) AS n FROM patients GROUP BY ward", ("patients",)),
        ("select avg(age) from patients where age > 40", ("patients",)),
        (
            "WITH old AS (SELECT * FROM patients WHERE age > 70) "
            "SELECT o.ward, count(*) FROM old o JOIN visits v ON o.id = v.patient_id GROUP BY 1",
            ("patients", "visits"),
        ),
        ("SELECT ward FROM patients UNION SELECT ward FROM visits", ("patients", "visits")),
        ("SELECT date_trunc('month', day) AS m, sum(cost) FROM visits GROUP BY m", ("visits",)),
        ('SELECT "ward" FROM "patients"', ("patients",)),
    ],
)
def test_read_only_queries_pass(query: str, used: tuple[str, ...]) -> None:
    checked = check_query(query, datasets=DATASETS)
    assert checked.datasets == used
    assert check_query(checked.sql, datasets=DATASETS).sql == checked.sql  # stable text


@pytest.mark.parametrize(
    ("query", "match"),
    [
        ("CREATE TABLE t AS SELECT * FROM patients", "CREATE"),
        ("DROP TABLE patients", "DROP"),
        ("INSERT INTO patients VALUES (1)", "INSERT"),
        ("UPDATE patients SET age = 1", "UPDATE"),
        ("DELETE FROM patients", "DELETE"),
        ("ALTER TABLE patients ADD COLUMN x INT", "ALTER"),
        ("COPY patients TO '/tmp/out.csv'", "COPY"),
        ("COPY (SELECT * FROM patients) TO 'out.parquet'", "COPY"),
        ("ATTACH 'other.db' AS o", "ATTACH"),
        ("INSTALL httpfs", "INSTALL"),
        ("LOAD httpfs", "COMMAND"),
        ("PRAGMA database_list", "PRAGMA"),
        ("SET threads = 1", "SET"),
        ("DESCRIBE patients", "DESCRIBE"),
        ("SELECT * INTO copy_of FROM patients", "INTO"),
        ("SELECT * FROM read_csv('/etc/passwd')", "table functions"),
        ("SELECT * FROM read_parquet('/srv/private/*.parquet')", "table functions"),
        ("SELECT * FROM glob('/root/*')", "table functions"),
        ("SELECT * FROM duckdb_settings()", "table functions"),
        ("SELECT * FROM query('SELECT 42')", "table functions"),
        ("SELECT * FROM '/etc/passwd'", "reading the file"),
        ("SELECT * FROM 'private/other/data.parquet'", "reading the file"),
        ("SELECT * FROM information_schema.tables", "qualified table"),
        ("SELECT * FROM main.patients", "qualified table"),
        ("SELECT read_text('/etc/passwd')", "read_text"),
        ("SELECT getenv('HOME')", "getenv"),
        ("SELECT current_setting('home_directory')", "current_setting"),
        (
            "SELECT count(*) FROM patients WHERE age > (SELECT count(*) FROM read_blob('/x'))",
            "table functions",
        ),
        ("SELECT 1; DROP TABLE patients", "exactly one statement"),
        ("SELECT * FROM secrets", "Unknown table 'secrets'"),
        ("SELECT 1", "reads no published dataset"),
        ("SELEC * FROM patients", "does not parse|Refused"),
        ("", "empty"),
    ],
)
def test_everything_else_is_refused(query: str, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        check_query(query, datasets=DATASETS)


def test_unknown_table_lists_the_published_ones() -> None:
    with pytest.raises(InvalidInput, match="patients, visits"):
        check_query("SELECT * FROM patient", datasets=DATASETS)


@pytest.mark.parametrize(
    ("query", "used"),
    [
        # A CTE named like a dataset hides that dataset only where the CTE is visible.
        (
            "SELECT ward FROM visits UNION ALL (WITH patients AS (SELECT 'x' AS ward) "
            "SELECT ward FROM patients) UNION ALL SELECT ward FROM patients",
            ("patients", "visits"),
        ),
        ("WITH patients AS (SELECT * FROM visits) SELECT count(*) FROM patients", ("visits",)),
        ("WITH patients AS (SELECT * FROM patients) SELECT count(*) FROM patients", ("patients",)),
        (
            "SELECT * FROM (WITH visits AS (SELECT 1 AS a) SELECT * FROM visits) x, patients",
            ("patients",),
        ),
        ("WITH a AS (SELECT * FROM visits), b AS (SELECT * FROM a) SELECT * FROM b", ("visits",)),
        (
            "WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r WHERE n < 3) "
            "SELECT * FROM r, patients",
            ("patients",),
        ),
    ],
)
def test_ctes_are_resolved_by_scope(query: str, used: tuple[str, ...]) -> None:
    assert check_query(query, datasets=DATASETS).datasets == used


def test_a_cte_is_not_visible_before_it_is_defined() -> None:
    with pytest.raises(InvalidInput, match="Unknown table 'a'"):
        check_query(
            "WITH b AS (SELECT * FROM a), a AS (SELECT 1) SELECT * FROM b", datasets=DATASETS
        )
    # ...and a catalog view cannot hide behind a CTE of the same name defined elsewhere.
    with pytest.raises(InvalidInput, match="pg_settings"):
        check_query(
            "SELECT 1 FROM patients UNION ALL (WITH pg_settings AS (SELECT 1) "
            "SELECT * FROM pg_settings) UNION ALL SELECT 1 FROM pg_settings",
            datasets=DATASETS,
        )


@pytest.mark.parametrize(
    "query",
    [
        "SELECT 'unterminated FROM patients",
        'SELECT "unterminated FROM patients',
        "SELECT $$unterminated FROM patients",
        "SELECT " + "(" * 5000 + "1" + ")" * 5000 + " FROM patients",
        "SELECT 1 FROM patients WHERE " + " OR ".join(["age > 1"] * 30000),
    ],
)
def test_hostile_text_is_refused_never_a_crash(query: str) -> None:
    with pytest.raises(InvalidInput):
        check_query(query, datasets=DATASETS)
