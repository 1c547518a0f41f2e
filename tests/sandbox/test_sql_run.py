"""run_sql: a DuckDB query on private tables, in the jail, against its limits and attacks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow
import pytest

from rds.errors import InvalidInput, LimitExceeded, SandboxError, SandboxUnavailable
from rds.sandbox import RunResult, SandboxLimits, _warm, execute_sql, run_sql, runner
from rds.sandbox._spawn import JailConfig
from tests.sandbox.conftest import SECRET, TIGHT, ready, run
from tests.sandbox.test_attacks import leaked


def sql(query: str, tables: dict[str, Path], **kwargs: object) -> RunResult:
    """``run_sql`` with ``TIGHT`` limits."""
    kwargs.setdefault("limits", TIGHT)
    return run_sql(query, tables=tables, **kwargs)  # type: ignore[arg-type]


def visits() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    wards = np.array(["onco", "cardio", "neuro", "derma", "ortho"], dtype=object)
    return pd.DataFrame(
        {
            "visit_id": np.arange(5000, dtype=np.int64),
            "ward": wards[rng.integers(0, 5, 5000)],
            "cost": rng.gamma(2.0, 150.0, 5000),
            "day": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 90, 5000), "D"),
        }
    )


GROUP_BY = (
    "SELECT ward, count(*) AS n, avg(cost) AS mean_cost, max(day) AS last_day "
    "FROM visits GROUP BY ward ORDER BY ward"
)


def test_group_by_equals_duckdb_on_the_same_frame(make_dataset: Callable[..., Path]) -> None:
    frame = visits()
    result = sql(GROUP_BY, {"visits": make_dataset(frame, name="visits")})
    assert result.ok and result.sandboxed, result.error
    value = result.value()
    assert isinstance(value, pd.DataFrame)
    with duckdb.connect() as plain:
        plain.register("visits", frame)
        expected = plain.sql(GROUP_BY).df()
    pd.testing.assert_frame_equal(value, expected)
    assert value["ward"].dtype == object and value["ward"].map(type).eq(str).all()
    assert value["n"].sum() == 5000


def test_the_private_run_and_the_mock_preview_agree_on_values_and_dtypes(
    make_dataset: Callable[..., Path],
) -> None:
    frame = visits()
    frame["flag"] = frame["cost"] > 300
    frame["grade"] = pd.Categorical(np.where(frame["flag"], "high", "low"))
    frame.loc[::7, "ward"] = None
    query = (
        "SELECT ward, grade, flag, count(*) AS n, sum(cost) AS total, min(day) AS first "
        "FROM visits GROUP BY ALL ORDER BY ALL"
    )
    private = sql(query, {"visits": make_dataset(frame, name="visits")}).value()
    preview = execute_sql(query, {"visits": frame})
    assert isinstance(private, pd.DataFrame)
    pd.testing.assert_frame_equal(private, preview)
    assert private.dtypes.astype(str).tolist() == [
        "object",
        "object",
        "bool",
        "int64",
        "float64",
        "datetime64[ns]",
    ]


def test_two_tables_join_under_their_own_names(make_dataset: Callable[..., Path]) -> None:
    frame = visits()
    beds = pd.DataFrame({"ward": ["onco", "cardio", "neuro", "derma"], "beds": [12, 8, 6, 2]})
    query = (
        "SELECT v.ward, b.beds, count(*) / b.beds AS per_bed FROM visits v "
        "JOIN wards b USING (ward) GROUP BY v.ward, b.beds ORDER BY v.ward"
    )
    tables = {"visits": make_dataset(frame, name="v"), "wards": make_dataset(beds, name="w")}
    value = sql(query, tables).value()
    assert isinstance(value, pd.DataFrame)
    expected = execute_sql(query, {"visits": frame, "wards": beds})
    pd.testing.assert_frame_equal(value, expected)
    assert value["ward"].tolist() == ["cardio", "derma", "neuro", "onco"]  # ortho has no beds


def test_a_failing_query_is_an_sql_error_the_scientist_sees_by_name_only(dataset: Path) -> None:
    result = sql("SELECT CAST(patient_id AS INTEGER) FROM patients", {"patients": dataset})
    assert not result.ok and result.error_type == "SQLError"
    assert result.error is not None and "ConversionException" in result.error
    assert SECRET in result.error  # DuckDB quotes the value: the owner's eyes only
    with pytest.raises(SandboxError, match=r"\(SQLError\)") as info:
        result.value()
    assert SECRET not in str(info.value)


@pytest.mark.parametrize(
    ("attack", "refusal"),
    [
        ("SELECT * FROM read_csv('/opt/rds/rds/errors.py')", "disabled by configuration"),
        ("SELECT * FROM read_text('/opt/rds/rds/errors.py')", "disabled by configuration"),
        ("SELECT * FROM read_text('/proc/self/environ')", "disabled by configuration"),
        ("SELECT * FROM '{other}'", "disabled by configuration"),
        ("SELECT * FROM read_blob('{other}')", "disabled by configuration"),
        ("SELECT * FROM '{mounted}'", "disabled by configuration"),
        ("SELECT * FROM glob('/scratch/*')", "disabled by configuration"),
        ("SELECT getenv('HOME')", "getenv does not exist"),
        ("SELECT * FROM duckdb_secrets()", None),
        ("COPY (SELECT * FROM patients) TO '/scratch/x.csv'", "type COPY"),
        ("ATTACH '/scratch/x.db'", "type ATTACH"),
        ("INSTALL httpfs", "type LOAD"),
        ("LOAD httpfs", "type LOAD"),
        ("SET enable_external_access = true", "type SET"),
        ("RESET enable_external_access", "type SET"),
        ("SET lock_configuration = false", "type SET"),
        ("SELECT 1; SET lock_configuration = false", "exactly one"),
    ],
)
def test_the_query_cannot_reach_outside_its_tables(
    make_dataset: Callable[..., Path], attack: str, refusal: str | None
) -> None:
    mine = make_dataset(pd.DataFrame({"age": [40, 50]}), name="mine")
    other = make_dataset(name="other") / "data.parquet"
    pd.DataFrame({"patient_id": [SECRET]}).to_parquet(other)
    # A Parquet file the jail does see (the virtualenv is mounted): only DuckDB refuses it.
    mounted = Path(pyarrow.__file__).parent / "tests" / "data" / "parquet" / "v0.7.1.parquet"
    assert mounted.is_file()
    result = sql(attack.format(other=other, mounted=mounted), {"patients": mine})
    if refusal is None:  # runs, and shows nothing
        value = result.value()
        assert isinstance(value, pd.DataFrame) and value.empty
        return
    assert not result.ok and result.error_type == "SQLError", result.error
    assert refusal in (result.error or "")
    assert not leaked(result)


def test_refused_statements_are_refused_by_the_lockdown_too(dataset: Path) -> None:
    # Only a query gets to DuckDB; were that gate gone, the lockdown would still hold.
    source = """
    def f(df):
        from rds.sandbox.sql import connect
        refusals = []
        with connect({"patients": df}) as connection:
            for statement in [
                "COPY (SELECT * FROM patients) TO '/scratch/x.csv'",
                "ATTACH '/scratch/x.db'",
                "INSTALL httpfs",
                "LOAD httpfs",
                "SET enable_external_access = true",
                "RESET enable_external_access",
                "SET lock_configuration = false",
            ]:
                try:
                    connection.execute(statement)
                    refusals.append("RAN " + statement)
                except Exception as exc:
                    refusals.append(type(exc).__name__)
        import os
        return refusals + os.listdir("/scratch")
    """
    value = run(source, [dataset]).value()
    assert value == ["PermissionException"] * 4 + ["InvalidInputException"] * 3


@pytest.mark.parametrize(
    ("query", "limits", "limit"),
    [
        (
            "SELECT sum(range % 7) FROM range(10000000000)",
            SandboxLimits(cpu_seconds=2, wall_seconds=60, memory_mb=1024),
            "cpu",
        ),
        (
            "SELECT sum(range % 7) FROM range(10000000000)",
            SandboxLimits(cpu_seconds=600, wall_seconds=2, memory_mb=1024),
            "wall",
        ),
        (
            "SELECT list(range) FROM range(1000000000)",
            SandboxLimits(cpu_seconds=60, wall_seconds=60, memory_mb=1024),
            "memory",
        ),
        (
            "SELECT range, repeat('x', 100) AS padding FROM range(100000)",
            SandboxLimits(cpu_seconds=60, wall_seconds=60, memory_mb=1024, output_mb=4),
            "output",
        ),
    ],
)
def test_limits_stop_a_query(dataset: Path, query: str, limits: SandboxLimits, limit: str) -> None:
    result = sql(query, {"patients": dataset}, limits=limits)
    assert not result.ok
    assert result.error_type == f"LimitExceeded:{limit}", result.error
    with pytest.raises(LimitExceeded) as info:
        result.value()
    assert info.value.limit == limit


def test_memory_is_duckdbs_own_limit_below_the_jails(dataset: Path) -> None:
    result = sql("SELECT list(range) FROM range(1000000000)", {"patients": dataset})
    assert result.error_type == "LimitExceeded:memory"
    assert "OutOfMemoryException" in (result.error or "")  # DuckDB stopped, not RLIMIT_AS
    memory_limit = int((result.error or "").split("memory_limit=")[1].split()[0])
    assert 64 <= memory_limit < TIGHT.memory_mb


@pytest.mark.parametrize("max_processes", [1, 2, 16, 64])
def test_a_query_runs_within_any_max_processes(dataset: Path, max_processes: int) -> None:
    limits = SandboxLimits(cpu_seconds=30, memory_mb=1024, max_processes=max_processes)
    result = sql("SELECT count(*) AS n FROM range(100000000)", {"patients": dataset}, limits=limits)
    value = result.value()
    assert isinstance(value, pd.DataFrame) and value["n"].tolist() == [100_000_000]


def test_duckdb_works_with_fewer_threads_than_asked_for(dataset: Path) -> None:
    # Threads it cannot start (RLIMIT_NPROC) are not an error: DuckDB runs on those it has.
    source = """
    def f(df):
        from rds.sandbox.sql import execute
        return execute("SELECT count(*) AS n FROM range(100000000)", {}, threads=16)
    """
    result = run(source, [dataset], limits=SandboxLimits(cpu_seconds=30, max_processes=3))
    value = result.value()
    assert isinstance(value, pd.DataFrame) and value["n"].tolist() == [100_000_000]


@pytest.mark.parametrize(
    "tables",
    [
        {"1st": "ds"},
        {"a-b": "ds"},
        {"a b": "ds"},
        {"t; DROP TABLE x": "ds"},
        {"patients": "missing"},
        {"Patients": "ds", "patients": "ds"},
    ],
)
def test_bad_arguments_are_invalid_input(dataset: Path, tables: dict[str, str]) -> None:
    paths = {name: dataset if d == "ds" else dataset.parent / d for name, d in tables.items()}
    with pytest.raises(InvalidInput):
        run_sql("SELECT 1", tables=paths)


def test_the_query_and_tables_must_have_their_types(dataset: Path) -> None:
    with pytest.raises(InvalidInput, match="query as a str"):
        run_sql(b"SELECT 1", tables={"t": dataset})  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="mapping"):
        run_sql("SELECT 1", tables=[dataset])  # type: ignore[arg-type]


def test_without_bubblewrap(dataset: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "BWRAP", None)
    with pytest.raises(SandboxUnavailable):
        sql("SELECT count(*) AS n FROM patients", {"patients": dataset})
    result = sql(
        "SELECT count(*) AS n FROM patients", {"patients": dataset}, allow_unsandboxed=True
    )
    assert not result.sandboxed
    assert result.value()["n"].tolist() == [6]  # type: ignore[index]


def test_a_warm_jail_serves_sql_after_python_and_python_after_sql(
    pool: _warm.WarmPool, cold_starts: list[JailConfig], dataset: Path
) -> None:
    python = "def f(df):\n    return int(df.age.sum())\n"
    query = "SELECT sum(age) AS total FROM patients"
    outcomes = []
    for kind in ["python", "sql", "sql", "python"]:
        ready(pool)
        if kind == "python":
            outcomes.append(run(python, [dataset]).value())
        else:
            value = sql(query, {"patients": dataset}).value()
            assert isinstance(value, pd.DataFrame)
            outcomes.append(int(value["total"].iloc[0]))
    assert outcomes == [298] * 4
    assert cold_starts == []  # every run, of either kind, took the waiting jail
