"""sql.execute: the locked-down DuckDB query, as the mock preview and the jail both run it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from rds.errors import InvalidInput, LimitExceeded
from rds.sandbox import SQLError, execute_sql, read_arrow, write_table
from rds.sandbox.sql import check_table_names, connect, start_database
from tests.sandbox.conftest import SECRET


def patients() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "patient_id": [f"{SECRET}-{i}" for i in range(6)],
            "age": [34, 51, 67, 45, 72, 29],
            "ward": ["onco", "cardio", "onco", None, "cardio", "onco"],
            "admitted": pd.to_datetime([f"2024-03-0{d}" for d in range(1, 7)]),
            "discharged": [True, False, True, True, False, True],
            "visits": pd.array([1, None, 3, 2, 2, 1], dtype="Int64"),
            "level": pd.Categorical(["hi", "lo", "hi", "mid", "lo", "hi"], ["lo", "mid", "hi"]),
        }
    )


QUERIES = [
    "SELECT ward, count(*) AS n, avg(age) AS mean_age FROM t GROUP BY ward ORDER BY ward",
    "SELECT level, sum(visits) AS visits, min(admitted) AS first FROM t GROUP BY level "
    "ORDER BY level",
    "SELECT discharged, max(ward) AS ward FROM t GROUP BY ALL ORDER BY discharged",
    "SELECT * FROM t WHERE ward = 'onco' ORDER BY age",
]


def plain_duckdb(sql: str, frame: pd.DataFrame) -> pd.DataFrame:
    """The same query in an ordinary DuckDB connection, over the pandas frame itself."""
    with duckdb.connect() as connection:
        connection.register("t", frame)
        result: pd.DataFrame = connection.sql(sql).df()
        return result


def test_group_by_text_gives_object_strings_and_duckdbs_values() -> None:
    frame = patients()
    result = execute_sql(QUERIES[0], {"t": frame})
    assert result["ward"].dtype == object
    assert result["ward"].tolist() == ["cardio", "onco", None]
    assert all(isinstance(v, str) for v in result["ward"].dropna())
    expected = plain_duckdb(QUERIES[0], frame)
    pd.testing.assert_frame_equal(result, expected)
    assert result["n"].tolist() == [2, 3, 1]


@pytest.mark.parametrize("sql", QUERIES)
def test_the_private_arrow_table_and_the_mock_frame_give_the_same_frame(
    tmp_path: Path, sql: str
) -> None:
    frame = patients()
    write_table(frame, tmp_path / "data.arrow")
    stored = read_arrow(tmp_path / "data.arrow")
    assert str(stored.schema.field("ward").type).startswith("dictionary")  # not what pandas has
    private = execute_sql(sql, {"t": stored})
    mock = execute_sql(sql, {"t": frame})
    pd.testing.assert_frame_equal(private, mock)
    assert not any(isinstance(dtype, pd.CategoricalDtype) for dtype in private.dtypes)


def test_enum_and_categorical_results_come_back_as_plain_strings() -> None:
    result = execute_sql(
        "SELECT level, CAST(ward AS ENUM ('cardio', 'onco')) AS ward_enum FROM t",
        {"t": patients()},
    )
    assert result.dtypes.tolist() == [object, object]
    assert result["ward_enum"].tolist() == ["onco", "cardio", "onco", None, "cardio", "onco"]


def test_two_tables_join_and_a_named_index_is_a_column() -> None:
    visits = pd.DataFrame({"ward": ["onco", "cardio"], "beds": [10, 4]}).set_index("ward")
    result = execute_sql(
        "SELECT t.ward, count(*) AS n, any_value(v.beds) AS beds FROM t JOIN v USING (ward) "
        "GROUP BY t.ward ORDER BY t.ward",
        {"t": patients(), "v": visits},
    )
    assert result.to_dict("list") == {"ward": ["cardio", "onco"], "n": [2, 3], "beds": [4, 10]}


def fetch(connection: duckdb.DuckDBPyConnection, sql: str) -> object:
    """Run ``sql`` to the end: ``sql()`` alone only binds a query."""
    relation = connection.sql(sql)
    return None if relation is None else relation.fetchall()


def make_files(directory: Path) -> Path:
    """Real files a query must not reach, SECRET in each."""
    directory.mkdir()
    pd.DataFrame({"s": [SECRET]}).to_parquet(directory / "other.parquet")
    (directory / "other.csv").write_text(f"s\n{SECRET}\n")
    # DuckDB treats <cwd>/:memory: as its own file when external access is off at start.
    (directory / ":memory:").write_text(f"s\n{SECRET}\n")
    return directory


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """``make_files`` in the working directory; nothing may be added to it."""
    directory = make_files(tmp_path / "files")
    monkeypatch.chdir(directory)
    yield directory
    assert sorted(p.name for p in directory.iterdir()) == [":memory:", "other.csv", "other.parquet"]


READS = [
    "SELECT * FROM read_csv('{d}/other.csv')",
    "SELECT * FROM read_text('{d}/other.csv')",
    "SELECT * FROM read_blob('{d}/other.parquet')",
    "SELECT * FROM '{d}/other.parquet'",
    "SELECT * FROM read_parquet('{d}/other.parquet')",
    "SELECT * FROM parquet_metadata('{d}/other.parquet')",
    "SELECT * FROM glob('{d}/*')",
    "SELECT * FROM read_csv(':memory:')",
    "SELECT * FROM read_csv('/etc/passwd')",
]
WRITES = [
    "COPY (SELECT 1) TO '{d}/x.csv'",
    "EXPORT DATABASE '{d}/export'",
    "ATTACH '{d}/x.db' AS x",
    "INSTALL httpfs",
]
EXTENSIONS = ["LOAD httpfs", "LOAD '{d}/x.duckdb_extension'"]
SETTINGS = [
    "SET enable_external_access = true",
    "RESET enable_external_access",
    "SET lock_configuration = false",
    "RESET lock_configuration",
    "SET disabled_filesystems = ''",
    "SET allowed_directories = ['/']",
    "SET allowed_paths = ['/etc/passwd']",
    "SET temp_directory = '{d}/spill'",
    "SET log_query_path = '{d}/queries.log'",
    "PRAGMA enable_profiling",
    "SET python_enable_replacements = true",
    "SET autoload_known_extensions = true",
    "SET memory_limit = '100GB'",
    "SET threads = 64",
    "CALL enable_logging()",
]


@pytest.mark.parametrize("attack", READS + WRITES)
def test_the_lockdown_refuses_files(files: Path, tmp_path: Path, attack: str) -> None:
    if not attack.startswith("INSTALL"):  # that one needs the network, which may be absent
        with duckdb.connect() as plain:  # without the lockdown, the attack works
            fetch(plain, attack.format(d=make_files(tmp_path / "plain")))
    with (
        connect({"t": patients()}) as connection,
        pytest.raises(duckdb.PermissionException, match="disabled by configuration"),
    ):
        fetch(connection, attack.format(d=files))


@pytest.mark.parametrize(
    ("attack", "error", "message"),
    [(a, duckdb.PermissionException, "extensions is disabled") for a in EXTENSIONS]
    + [(a, duckdb.InvalidInputException, "configuration has been locked") for a in SETTINGS],
)
def test_the_lockdown_refuses_extensions_and_cannot_be_undone(
    files: Path, attack: str, error: type[Exception], message: str
) -> None:
    with connect({}) as connection, pytest.raises(error, match=message):
        fetch(connection, attack.format(d=files))


def test_the_settings_are_in_force() -> None:
    with connect({}, threads=1, memory_mb=100) as connection:
        rows = connection.sql("SELECT name, value FROM duckdb_settings()").fetchall()
    settings = dict(rows)
    assert settings["enable_external_access"] == "false"
    assert settings["lock_configuration"] == "true"
    assert settings["allowed_paths"] == settings["allowed_directories"] == "[]"
    assert settings["temp_directory"] == ""
    assert settings["autoload_known_extensions"] == settings["autoinstall_known_extensions"]
    assert settings["autoload_known_extensions"] == "false"
    assert settings["allow_community_extensions"] == "false"
    assert settings["allow_persistent_secrets"] == "false"
    assert settings["async_threads"] == "0"
    assert settings["threads"] == "1"
    assert settings["memory_limit"] == "100.0 MiB"


def test_python_variables_are_not_tables() -> None:
    secret_frame = pd.DataFrame({"s": [SECRET]})
    with duckdb.connect() as plain:  # an ordinary connection finds the caller's variable
        assert plain.sql("SELECT * FROM secret_frame").fetchall() == [(SECRET,)]
    assert secret_frame is not None
    for sql in ["SELECT * FROM secret_frame", "SELECT * FROM query_table('secret_frame')"]:
        with pytest.raises(SQLError, match="secret_frame does not exist"):
            execute_sql(sql, {"t": patients()})


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT 1; SELECT 2", "exactly one SQL query, not 2"),
        ("COPY (SELECT 1) TO 'x.csv'", "not a statement of type COPY"),
        ("CREATE TABLE x AS SELECT 1", "not a statement of type CREATE"),
        ("SET threads = 1", "not a statement of type SET"),
        ("SELECT nope FROM t", r"BinderException: .*nope"),
        ("SELEKT 1", "ParserException"),
        ("SELECT CAST(patient_id AS INTEGER) FROM t", "ConversionException"),
        ("", "not 0 statements"),
    ],
)
def test_a_failing_query_raises_sql_error_with_duckdbs_reason(sql: str, message: str) -> None:
    with pytest.raises(SQLError, match=message) as info:
        execute_sql(sql, {"t": patients()})
    assert isinstance(info.value, InvalidInput)


def test_running_out_of_memory_is_a_memory_limit() -> None:
    with pytest.raises(LimitExceeded, match="memory_limit=64 MiB") as info:
        execute_sql("SELECT list(range) FROM range(100000000)", {}, memory_mb=64)
    assert info.value.limit == "memory"


@pytest.mark.parametrize("name", ["1st", "a-b", "a b", "t; DROP", "", "é", "x" * 64, 3])
def test_table_names_must_be_plain_identifiers(name: object) -> None:
    with pytest.raises(InvalidInput):
        execute_sql("SELECT 1", {name: patients()})  # type: ignore[dict-item]


def test_table_names_may_not_differ_only_in_case() -> None:
    check_table_names(["patients", "visits", "_x1"])
    with pytest.raises(InvalidInput, match="ignore case"):
        check_table_names(["Patients", "patients"])


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        ({"t": [1, 2]}, "pyarrow.Table or a pandas.DataFrame"),
        ({"t": pd.DataFrame({"mixed": [1, "a"]})}, "one type"),
    ],
)
def test_tables_must_be_arrow_or_storable_frames(tables: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        execute_sql("SELECT 1", tables)


def test_a_started_database_is_the_callers_to_close() -> None:
    database = start_database(threads=1)
    result = execute_sql(
        "SELECT sum(x) AS s FROM t", {"t": pd.DataFrame({"x": [1, 2]})}, database=database
    )
    assert result["s"].tolist() == [3]
    with pytest.raises(duckdb.InvalidInputException, match="locked"):
        database.sql("SET enable_external_access = true")
    database.close()


def test_numbers_keep_their_dtypes() -> None:
    frame = pd.DataFrame({"i": np.arange(3, dtype=np.int64), "f": [0.5, np.nan, 2.0]})
    result = execute_sql("SELECT i, f, i * 2 AS j, i > 0 AS b FROM t ORDER BY i", {"t": frame})
    assert result.dtypes.astype(str).tolist() == ["int64", "float64", "int64", "bool"]
