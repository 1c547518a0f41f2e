"""Which SQL a scientist may send: one read-only query over published datasets.

The check is structural, on sqlglot's parse tree (DuckDB dialect), and errs towards refusal:

- exactly one statement, and it is a query (``SELECT``, ``WITH … SELECT``, set operations);
- no statement or clause that writes, configures or reaches outside (DDL/DML, ``COPY``,
  ``ATTACH``, ``INSTALL``/``LOAD``, ``PRAGMA``, ``SET``, …) anywhere in the tree;
- every table is a plain, unqualified name of a published dataset or of a CTE defined in the
  query — so file paths (``FROM 'x.parquet'``), table functions (``read_csv(…)``,
  ``glob(…)``, ``duckdb_settings()``) and catalog tables (``information_schema.tables``)
  are all refused;
- no scalar function that reads files, the environment or settings (``read_text``,
  ``getenv``, ``current_setting``, anything ``read_*``, ``*_scan``, ``duckdb_*``, …).

When the query runs, DuckDB is also locked down (no external access); this check is what
gives the scientist a clear error before anything is submitted.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from rds.errors import InvalidInput

_FORBIDDEN_NODES = (
    "Alter",
    "Attach",
    "Cache",
    "Command",
    "Commit",
    "Copy",
    "Create",
    "Delete",
    "Describe",
    "Detach",
    "Drop",
    "Export",
    "Insert",
    "Install",
    "Into",
    "Kill",
    "LoadData",
    "Merge",
    "Pragma",
    "Rollback",
    "Set",
    "Transaction",
    "TruncateTable",
    "Uncache",
    "Update",
    "Use",
)
_FORBIDDEN_FUNCTIONS = {
    "current_setting",
    "getenv",
    "getvariable",
    "glob",
    "load_extension",
    "query",
    "query_table",
    "sniff_csv",
    "sql_auto_complete",
    "which_secret",
}
_FORBIDDEN_PREFIXES = ("read_", "duckdb_", "pragma_", "parquet_", "iceberg_", "delta_", "http")
_FORBIDDEN_SUFFIXES = ("_scan", "_attach", "_query")


#: Longest query text checked at all (a longer one is refused before parsing).
MAX_QUERY = 100_000


@dataclass(frozen=True)
class CheckedQuery:
    """A query that passed the check: its DuckDB text and the datasets it reads."""

    sql: str
    datasets: tuple[str, ...]


def check_query(query: str, *, datasets: Collection[str]) -> CheckedQuery:
    """Parse ``query`` and refuse anything but one read-only query over ``datasets``.

    Raises
    ------
    InvalidInput
        With a message naming what was refused and what is allowed.

    Examples
    --------
    >>> check_query("SELECT ward, count(*) FROM patients GROUP BY ward", datasets={"patients"})
    CheckedQuery(sql='SELECT ward, COUNT(*) FROM patients GROUP BY ward', datasets=('patients',))
    """
    if not isinstance(query, str) or not query.strip():
        raise InvalidInput("The query is empty.")
    if len(query) > MAX_QUERY:
        raise InvalidInput(f"The query is longer than {MAX_QUERY:,} characters.")
    try:
        return _check(query, datasets)
    except RecursionError:
        raise InvalidInput("The query is nested too deeply to be checked.") from None


def _check(query: str, datasets: Collection[str]) -> CheckedQuery:
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    try:
        statements = [s for s in sqlglot.parse(query, read="duckdb") if s is not None]
    except SqlglotError as exc:  # parse and tokenizer errors alike
        raise InvalidInput(f"The query does not parse as DuckDB SQL: {exc}") from None
    if len(statements) != 1:
        raise InvalidInput(f"Send exactly one statement; this has {len(statements)}.")
    tree = statements[0]
    for name in _FORBIDDEN_NODES:
        kind = getattr(exp, name, None)
        if kind is not None and (isinstance(tree, kind) or tree.find(kind) is not None):
            raise InvalidInput(_refusal(f"{name.upper()} statements or clauses"))
    if not isinstance(tree, exp.Query):
        raise InvalidInput(_refusal(f"a {type(tree).__name__.upper()} statement"))

    used: set[str] = set()
    for table in tree.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            raise InvalidInput(_refusal("table functions (read_csv, glob, …) in FROM"))
        if table.args.get("db") or table.args.get("catalog"):
            raise InvalidInput(_refusal(f"the qualified table {table.sql(dialect='duckdb')}"))
        name = table.name
        if _names_a_cte(table):
            continue
        if table.this.quoted and name not in datasets:
            raise InvalidInput(_refusal(f"reading the file or table {name!r}"))
        if name not in datasets:
            shown = ", ".join(sorted(datasets)) or "none"
            raise InvalidInput(f"Unknown table {name!r}: the published datasets are {shown}.")
        used.add(name)

    for fn in tree.find_all(exp.Func):
        name = (fn.name if isinstance(fn, exp.Anonymous) else fn.sql_name()).lower()
        if (
            name in _FORBIDDEN_FUNCTIONS
            or name.startswith(_FORBIDDEN_PREFIXES)
            or name.endswith(_FORBIDDEN_SUFFIXES)
        ):
            raise InvalidInput(_refusal(f"the function {name}()"))
    if not used:
        raise InvalidInput("The query reads no published dataset.")
    return CheckedQuery(sql=tree.sql(dialect="duckdb"), datasets=tuple(sorted(used)))


def _names_a_cte(table: Any) -> bool:
    """Whether ``table`` refers to a CTE visible where it stands (SQL's scoping rules).

    A CTE is visible in the body of the query whose WITH defines it and in the CTEs defined
    after it in the same WITH (and in its own body only under WITH RECURSIVE); a name that
    no visible CTE defines is a real table, however many CTEs elsewhere share its name.
    """
    from sqlglot import exp

    child, node = table, table.parent
    while node is not None:
        # sqlglot names the clause "with_" (30.x) or "with" (older releases).
        args = node.args if isinstance(node, exp.Expression) else {}
        with_ = args.get("with_") or args.get("with")
        if isinstance(with_, exp.With):
            ctes = list(with_.expressions)
            if child is with_:  # inside one of this WITH's own CTE definitions
                inner = next((c for c in ctes if _contains(c, table)), None)
                position = ctes.index(inner) if inner is not None else len(ctes)
                visible = ctes[: position + 1] if with_.args.get("recursive") else ctes[:position]
            else:
                visible = ctes
            if any(c.alias_or_name == table.name for c in visible):
                return True
        child, node = node, node.parent
    return False


def _contains(ancestor: Any, node: Any) -> bool:
    while node is not None:
        if node is ancestor:
            return True
        node = node.parent
    return False


def _refusal(what: str) -> str:
    return (
        f"Refused: {what}. A request may be one read-only SELECT (CTEs, joins, set operations "
        "allowed) over the domain's published datasets, addressed by name."
    )
