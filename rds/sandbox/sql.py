"""Run one SQL query with DuckDB over named tables, locked down so it reaches nothing else.

The same function runs the query everywhere: in the jail on the private tables, and outside
it on the public mock frames (the scientist's preview) and in the owner's tests, so that
both give the same columns and dtypes.

Two layers refuse what is not a read of those tables. First, ``execute`` runs exactly one
statement, and only one DuckDB's own parser classes as a query (``SELECT``, ``WITH``,
``FROM``-first, ``VALUES``, ``DESCRIBE``): ``COPY``, ``ATTACH``, ``INSTALL``, ``SET``,
``CREATE`` and the like never start (nor a ``PIVOT`` without an ``IN`` list, which DuckDB
runs as several statements; ``PIVOT t ON k IN ('a', 'b')`` is a query). Second, the
database is in memory and locked down before the query is parsed, so that even a statement
that did run could reach nothing but the tables registered under their names.
``start_database`` applies all of the following but the last line; ``connect`` sets
threads and memory, registers the tables and locks the configuration:

- ``enable_external_access=false``: no file, URL, database or extension access (``read_*``,
  ``FROM 'file.parquet'``, ``COPY``, ``ATTACH``, ``EXPORT``, ``INSTALL``/``LOAD``), no
  replacement scans of Python variables, no changing the temporary directory. It is set on
  the running database: set at start, DuckDB lists ``<cwd>/:memory:`` and its ``.wal``
  files in ``allowed_paths``, files it considers its own, readable by the query.
- ``disabled_filesystems='LocalFileSystem'``: a second lock on the same door; a path that
  is allowed for any reason still cannot be opened.
- ``autoinstall_known_extensions``, ``autoload_known_extensions``,
  ``allow_community_extensions``, ``allow_unsigned_extensions`` off and
  ``allow_extension_repositories='forbidden'``: no extension code, from anywhere.
- ``allow_persistent_secrets=false``: no secret is read from or written to ``~/.duckdb``.
- ``python_enable_replacements=false``: ``FROM some_variable`` never finds a Python object
  in the caller's frames (external access off blocks it too; this does not depend on that).
- ``temp_directory=''``: nothing spills to disk. A query past ``memory_limit`` fails with an
  out-of-memory error instead of writing into the current directory (the scientist's
  notebook folder, or the jail's size-limited scratch). DuckDB refuses to change it once
  external access is off, so it is set at start.
- ``async_threads=0``: the eight I/O threads DuckDB starts by default would serve no I/O
  here, and in the jail every thread counts against ``max_processes``.
- ``enable_progress_bar=false``: nothing is printed to the run's stdout or the notebook.
- ``threads`` and ``memory_limit`` when given; then ``lock_configuration=true``, so no
  ``SET``, ``RESET`` or ``PRAGMA`` can undo any of this.

Left as they are: ``allowed_paths``/``allowed_directories`` (empty, and locked),
``enable_logging``/``log_query_path`` (off, locked), ``max_execution_time`` (the jail's
``wall_seconds`` and ``cpu_seconds`` bound a run already). Reading DuckDB's own catalog
(``duckdb_settings()``) stays possible: it shows nothing but this connection.

Results come back as pandas via DuckDB, with ENUM (categorical) columns turned into plain
``object`` strings. pandas inputs are converted to Arrow first, exactly as ``write_table``
stores private tables (a named index becomes a column), so a query over a mock frame and
over the private table sees the same column types: text is ``VARCHAR`` either way.

Errors: a failing query raises ``SQLError`` (DuckDB's message, for the data owner; the
scientist sees only the name ``"SQLError"``), and DuckDB running out of memory raises
``LimitExceeded("memory")``.

Examples
--------
>>> execute("SELECT ward, count(*) AS n FROM patients GROUP BY ward ORDER BY ward",
...         {"patients": pd.DataFrame({"ward": ["onco", "cardio", "onco"]})})
     ward  n
0  cardio  1
1    onco  2
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rds.errors import InvalidInput, LimitExceeded, SQLError

if TYPE_CHECKING:
    import duckdb
    import pandas as pd
    import pyarrow as pa

__all__ = ["SQLError", "check_table_names", "connect", "execute", "start_database"]

#: Settings given when the database starts (the thread pools are sized at start).
_START_CONFIG: dict[str, Any] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "allow_unsigned_extensions": False,
    "allow_extension_repositories": "forbidden",
    "allow_persistent_secrets": False,
    "python_enable_replacements": False,
    "temp_directory": "",
    "async_threads": 0,
}
#: Applied in this order once it runs: turning external access off first forbids what
#: follows from touching files, and some of these can only be set on a running database.
_LOCKDOWN = (
    "SET enable_external_access = false",
    "SET disabled_filesystems = 'LocalFileSystem'",
    "SET enable_progress_bar = false",
)
#: What a table (and so a dataset) may be called: a plain SQL identifier.
TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def check_table_names(names: Mapping[str, object] | list[str]) -> None:
    """Refuse table names a query could not use as plain identifiers.

    Names are ASCII letters, digits and underscores, not starting with a digit, at most 63
    characters, and distinct ignoring case (SQL identifiers are case-insensitive).

    Raises
    ------
    InvalidInput
        If a name is not such an identifier, or two names differ only in case.

    Examples
    --------
    >>> check_table_names(["patients", "visits"])
    """
    seen: set[str] = set()
    for name in names:
        if not isinstance(name, str) or not TABLE_NAME.fullmatch(name):
            raise InvalidInput(
                f"{name!r} cannot be a table name in SQL: use letters, digits and underscores, "
                "starting with a letter or underscore (at most 63 characters)."
            )
        if name.lower() in seen:
            raise InvalidInput(f"Two tables are named {name!r} (SQL names ignore case).")
        seen.add(name.lower())


def execute(
    sql: str,
    tables: Mapping[str, pa.Table | pd.DataFrame],
    *,
    threads: int | None = None,
    memory_mb: int | None = None,
    database: duckdb.DuckDBPyConnection | None = None,
) -> pd.DataFrame:
    """Run one SQL query over ``tables`` in a locked-down in-memory DuckDB.

    Parameters
    ----------
    sql
        One query (``SELECT``, ``WITH``, ``FROM``-first, ``VALUES``, ...); a trailing ``;``
        is fine.
    tables
        The tables the query may read, by the name it uses for them.
    threads
        DuckDB's worker threads (default: one per core).
    memory_mb
        DuckDB's ``memory_limit`` in MiB (default: DuckDB's, 80% of the machine's memory).
    database
        A database from ``start_database`` to run the query in; the caller closes it.
        By default a new one is started, and closed after the query.

    Returns
    -------
    pandas.DataFrame
        The query's result, text columns as ``object`` strings.

    Raises
    ------
    SQLError
        If ``sql`` is not exactly one query, or DuckDB cannot parse, bind or run it (which
        includes everything the lockdown refuses).
    LimitExceeded
        If the query needs more than ``memory_mb`` (``limit="memory"``).
    InvalidInput
        If a table name is not an SQL identifier, or a frame cannot be converted to Arrow.

    Examples
    --------
    >>> execute("SELECT avg(age) AS a FROM t", {"t": pd.DataFrame({"age": [30, 50]})}).a[0]
    40.0
    """
    import duckdb

    if not isinstance(sql, str):
        raise InvalidInput(f"The query must be a str, not {type(sql).__name__}.")
    try:
        connection = connect(tables, threads=threads, memory_mb=memory_mb, database=database)
        try:
            statements = connection.extract_statements(sql)
            if len(statements) != 1:
                raise SQLError(f"Send exactly one SQL query, not {len(statements)} statements.")
            kind = statements[0].type
            # Anything else is refused by the lockdown too; this refuses it before it runs.
            if kind != duckdb.StatementType.SELECT:
                raise SQLError(f"Only a query can run here, not a statement of type {kind.name}.")
            return _plain(connection.sql(sql).df())
        finally:
            if database is None:
                connection.close()
    except duckdb.Error as exc:
        raise _translate(exc, memory_mb) from None


def connect(
    tables: Mapping[str, pa.Table | pd.DataFrame],
    *,
    threads: int | None = None,
    memory_mb: int | None = None,
    database: duckdb.DuckDBPyConnection | None = None,
) -> duckdb.DuckDBPyConnection:
    """A locked-down in-memory DuckDB connection where ``tables`` are registered.

    ``execute`` runs one query on such a connection; use this to run several over the same
    tables (close it when done, e.g. with ``with``). ``database`` is one from
    ``start_database`` to use instead of starting one; the other parameters are those of
    ``execute``.

    Raises
    ------
    InvalidInput
        If a table name is not an SQL identifier, or a frame cannot be converted to Arrow.

    Examples
    --------
    >>> with connect({"t": frame}) as connection:
    ...     connection.sql("SET enable_external_access = true")
    Traceback (most recent call last):
    duckdb.InvalidInputException: ... the configuration has been locked
    """
    check_table_names(list(tables))
    arrow = {name: _as_arrow(name, table) for name, table in tables.items()}
    settings = []
    if threads is not None:
        settings.append(f"SET threads = {_positive('threads', threads)}")
    if memory_mb is not None:
        settings.append(f"SET memory_limit = '{_positive('memory_mb', memory_mb)}MiB'")
    connection = start_database(threads=threads) if database is None else database
    try:
        for statement in settings:
            connection.execute(statement)
        for name, table in arrow.items():
            connection.register(name, table)
        connection.execute("SET lock_configuration = true")
    except BaseException:
        connection.close()
        raise
    return connection


def start_database(*, threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """A new in-memory DuckDB, locked down, with no tables and its configuration not locked.

    ``connect`` (or ``execute``) given it as ``database`` sets its memory limit, registers
    the tables and locks it. Starting a database takes ~10 ms, so a warm jail starts its
    job's before the job arrives.

    Examples
    --------
    >>> execute("SELECT 1 AS one", {}, database=start_database(threads=1)).one[0]
    1
    """
    import duckdb

    config = dict(_START_CONFIG)
    if threads is not None:
        config["threads"] = _positive("threads", threads)
    connection = duckdb.connect(":memory:", config=config)
    try:
        for statement in _LOCKDOWN:
            connection.execute(statement)
    except BaseException:
        connection.close()
        raise
    return connection


def _positive(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidInput(f"{name} must be a positive integer, not {value!r}.")
    return value


def _as_arrow(name: str, table: object) -> pa.Table:
    """``table`` as Arrow, converted from pandas the way ``write_table`` converts it."""
    import pandas as pd
    import pyarrow as pa

    if isinstance(table, pa.Table):
        return table
    if isinstance(table, pd.DataFrame):
        try:
            return pa.Table.from_pandas(table, preserve_index=None)
        except (pa.ArrowException, TypeError, ValueError) as exc:
            raise InvalidInput(
                f"Table {name!r} cannot be queried: {exc}. Give every column one type."
            ) from None
    raise InvalidInput(
        f"Table {name!r} must be a pyarrow.Table or a pandas.DataFrame, not {type(table).__name__}."
    )


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """ENUM columns (categoricals) as ``object`` strings, as a VARCHAR column would be."""
    import numpy as np
    import pandas as pd

    for position in range(frame.shape[1]):
        column = frame.iloc[:, position]
        if isinstance(column.dtype, pd.CategoricalDtype):
            values = np.asarray(column.astype(object), dtype=object)
            values[column.isna().to_numpy()] = None
            frame.isetitem(position, values)
    return frame


def _translate(exc: Exception, memory_mb: int | None) -> Exception:
    """DuckDB's exception as ``SQLError``, or ``LimitExceeded`` when memory ran out."""
    import duckdb

    message = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, duckdb.OutOfMemoryException):
        limit = f"memory_limit={memory_mb} MiB" if memory_mb else "DuckDB's memory limit"
        return LimitExceeded("memory", f"The query needed more than {limit}. {message}")
    return SQLError(f"DuckDB could not run the query. {message}")
