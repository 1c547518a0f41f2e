"""Rewriting a query so its run also returns each cell's disclosure statistics (ACRO's rules).

``plan_cell_stats`` rewrites a checked query so that the same DuckDB run also returns, per
output row, the records behind each aggregate and the largest contributions to each sum or
average, as ``__rds_…`` columns after the query's own; ``rds.privacy.sdc.check_table`` splits
them off and judges them. The top-level ``SELECT`` decides how a query is judged:

- **aggregate** (an aggregate outside a window function, or ``GROUP BY``): each cell by the
  aggregates in its expression, keeping their ``FILTER`` and ``DISTINCT`` (``count(*) FILTER
  (WHERE name = 'Alice')`` is judged by its own count); a window's own function (the ``sum``
  of ``sum(count(*)) OVER ()``) is skipped, the aggregates inside it are the group's. Counts
  get a record count; sums and averages also the sum of absolute values and the largest
  contributions; other statistics (stddev, corr, …) a record count; MIN, MAX, MEDIAN, LIST,
  … return a record's value, so nothing is computed for them.
- **record** (no aggregate; also ``SELECT DISTINCT``): the plan lists every column the query
  mentions anywhere (``WHERE``, joins, ``ORDER BY``, ``*``) that is not marked non-sensitive.
- **unsupported** (top-level set operations, ``DISTINCT`` with aggregates, ``*`` or a
  subquery among an aggregate query's outputs, the reserved prefix): the owner reviews it.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rds.errors import InvalidInput

if TYPE_CHECKING:
    from sqlglot import exp

PREFIX = "__rds_"
_COUNTS = {"count", "count_star", "count_if", "countif", "approx_count_distinct", "regr_count"}
_ADDITIVE = {"sum", "avg", "mean", "fsum", "favg", "sumkahan", "kahan_sum", "sum_no_overflow"}
_ADDITIVE |= {"decimal_average"}
_STATISTICS = {"corr", "covar_pop", "covar_samp", "entropy", "kurtosis", "kurtosis_pop", "sem"}
_STATISTICS |= {"product", "skewness", "stddev", "stddev_pop", "stddev_samp", "variance"}
_STATISTICS |= {"var_pop", "var_samp", "regr_avgx", "regr_avgy", "regr_intercept", "regr_r2"}
_STATISTICS |= {"regr_slope", "regr_sxx", "regr_sxy", "regr_syy"}


@dataclass(frozen=True)
class AggregateStat:
    """One aggregate call in the output and the columns that carry its statistics.

    ``kind`` is ``"count"``, ``"additive"`` (sum, avg, …), ``"statistic"`` (stddev, corr, …:
    threshold only) or ``"extreme"`` (returns a record's value; nothing is computed).
    """

    function: str
    kind: str
    columns: tuple[int, ...]
    count: str | None = None
    total: str | None = None
    top: str | None = None


@dataclass(frozen=True)
class CellStatsPlan:
    """How a query's output is judged, and ``sql``: the query plus ``stat_columns`` to run.

    ``shape`` is ``"aggregate"``, ``"record"`` or ``"unsupported"`` (``reason`` says why, safely).
    Aggregate plans name the ``output_columns``, the ``aggregates`` and the ``group_count``
    column (records per row); ``grouped`` means rows are ``GROUP BY`` groups. Record plans list
    the ``sensitive_columns`` used (``"*"`` for a star that could not be resolved).
    """

    sql: str
    original_sql: str
    shape: str
    reason: str
    output_columns: tuple[str, ...] = ()
    aggregates: tuple[AggregateStat, ...] = ()
    group_count: str | None = None
    grouped: bool = False
    sensitive_columns: tuple[str, ...] = ()
    top_n: int = 5

    @property
    def stat_columns(self) -> tuple[str, ...]:
        names = [n for a in self.aggregates for n in (a.count, a.total, a.top) if n]
        return (*names, self.group_count) if self.group_count else tuple(names)


def plan_cell_stats(
    sql: str,
    *,
    non_sensitive: Collection[str] = (),
    columns: Mapping[str, Collection[str]] | None = None,
    top_n: int = 5,
) -> CellStatsPlan:
    """Classify ``sql`` and rewrite it to compute per-cell record counts and contributions.

    Parameters
    ----------
    sql
        A query that passed ``rds.privacy.sql.check_query`` (DuckDB dialect).
    non_sensitive
        Columns the owner allows at record level.
    columns
        Each dataset's columns, to resolve ``*`` in record queries (unresolved, it fails).
    top_n
        How many largest contributions to fetch; must be at least the dominance rule's N.

    Examples
    --------
    >>> plan = plan_cell_stats("SELECT ward, sum(cost) AS total FROM visits GROUP BY ward")
    >>> plan.shape, plan.stat_columns
    ('aggregate', ('__rds_0_n', '__rds_0_abs', '__rds_0_top', '__rds_rows'))
    """
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ParseError

    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except ParseError as exc:
        raise InvalidInput(f"The query does not parse as DuckDB SQL: {exc}") from None

    def unsupported(reason: str) -> CellStatsPlan:
        return CellStatsPlan(sql=sql, original_sql=sql, shape="unsupported", reason=reason)

    if any(i.name.lower().startswith(PREFIX) for i in tree.find_all(exp.Identifier)):
        return unsupported(f"uses a name starting with the reserved {PREFIX!r}")
    if not isinstance(tree, exp.Select):
        if isinstance(tree, (exp.Union, exp.Intersect, exp.Except)):
            return unsupported("combines queries with UNION, INTERSECT or EXCEPT")
        return unsupported("is not a plain SELECT")
    outputs = list(tree.expressions)
    clauses = [tree.args.get(k) for k in ("having", "order", "qualify")]
    calls = [_aggregate_calls(e) for e in outputs]
    in_clauses = any(_aggregate_calls(c) for c in clauses if c is not None)
    grouped = tree.args.get("group") is not None
    if not (grouped or in_clauses or any(calls)):
        sensitive = _sensitive(tree, {c.lower() for c in non_sensitive}, columns)
        reason = "returns individual records"
        return CellStatsPlan(sql, sql, "record", reason, sensitive_columns=sensitive)
    if tree.args.get("distinct") is not None:
        return unsupported("uses SELECT DISTINCT with aggregates")
    stars = [
        s for e in outputs for s in e.find_all(exp.Star) if not isinstance(s.parent, exp.Count)
    ]
    if stars or any(e.find(exp.Columns) for e in outputs):
        return unsupported("uses * or COLUMNS(…) in an aggregate query")
    if any(e.find(exp.Subquery) is not None for e in outputs):
        return unsupported("has a subquery in an output column")

    names = tuple(e.alias_or_name or e.sql(dialect="duckdb") for e in outputs)
    _inherit_lateral_aliases(outputs, names, calls)
    top_n = max(int(top_n), 2)
    units: dict[str, tuple[exp.Expression, exp.Func, list[int]]] = {}
    for position, found in enumerate(calls):
        for unit, call in found:  # the same aggregate in several columns is computed once
            seen = units.setdefault(unit.sql(dialect="duckdb"), (unit, call, []))[2]
            seen += [] if position in seen else [position]
    aggregates, extra = [], []
    for i, (unit, call, seen) in enumerate(units.values()):
        stat, selects = _stat(i, unit, call, tuple(seen), top_n)
        aggregates.append(stat)
        extra.extend(selects)
    extra.append(f"COUNT(*) AS {PREFIX}rows")
    rewritten = tree.copy()
    parsed = [sqlglot.parse_one(s, read="duckdb") for s in extra]
    rewritten.set("expressions", [*rewritten.expressions, *parsed])
    return CellStatsPlan(
        sql=rewritten.sql(dialect="duckdb"),
        original_sql=sql,
        shape="aggregate",
        reason="aggregates records",
        output_columns=names,
        aggregates=tuple(aggregates),
        group_count=f"{PREFIX}rows",
        grouped=grouped,
        top_n=top_n,
    )


@functools.cache
def _duckdb_aggregates() -> frozenset[str]:
    """Every aggregate DuckDB knows, so an unfamiliar one is never taken for a key column."""
    import duckdb

    with duckdb.connect() as con:
        query = "SELECT function_name FROM duckdb_functions() WHERE function_type = 'aggregate'"
        rows = con.sql(query).fetchall()
    return frozenset(r[0].lower() for r in rows) | _COUNTS | _ADDITIVE | _STATISTICS


def _name(node: exp.Func) -> str:
    from sqlglot import exp

    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    # sqlglot's class names are not DuckDB's (LogicalOr is bool_or); its DuckDB text is.
    return node.sql(dialect="duckdb").split("(", 1)[0].strip().lower()


def _aggregate_calls(node: exp.Expression) -> list[tuple[exp.Expression, exp.Func]]:
    """(whole call with FILTER etc., function) for each aggregate that is not a window's."""
    from sqlglot import exp

    wrappers = (exp.Filter, exp.IgnoreNulls, exp.RespectNulls, exp.WithinGroup)
    found: list[tuple[exp.Expression, exp.Func]] = []
    for n in node.walk(prune=lambda n: isinstance(n, exp.Subquery)):
        if not isinstance(n, exp.Func) or _name(n) not in _duckdb_aggregates():
            continue
        unit: Any = n  # grows to the FILTER / IGNORE NULLS around the call
        while isinstance(unit.parent, wrappers) and unit.parent.this is unit:
            unit = unit.parent
        if isinstance(unit.parent, exp.Window) and unit.parent.this is unit:
            continue
        found.append((unit, n))
    return found


def _inherit_lateral_aliases(
    outputs: list[exp.Expression], names: tuple[str, ...], calls: list[list[Any]]
) -> None:
    """DuckDB lets ``SELECT sum(x) AS s, s * 2`` reuse an alias: ``s * 2`` is a cell too."""
    from sqlglot import exp

    changed = True
    while changed:
        changed = False
        for i, e in enumerate(outputs):
            used = {c.name.lower() for c in e.find_all(exp.Column) if not c.table}
            for j, name in enumerate(names):
                if j != i and name.lower() in used and calls[j]:
                    new = [c for c in calls[j] if c not in calls[i]]
                    calls[i].extend(new)
                    changed |= bool(new)


def _stat(
    i: int, unit: exp.Expression, call: exp.Func, columns: tuple[int, ...], top_n: int
) -> tuple[AggregateStat, list[str]]:
    """The statistics of one aggregate and the SELECT items that compute them."""
    from sqlglot import exp

    name = _name(call)
    kinds = {"count": _COUNTS, "additive": _ADDITIVE, "statistic": _STATISTICS}
    kind = next((k for k, names in kinds.items() if name in names), "extreme")
    if kind == "extreme":
        return AggregateStat(function=name, kind=kind, columns=columns), []
    where = unit.expression.this.sql(dialect="duckdb") if isinstance(unit, exp.Filter) else None
    if isinstance(call, exp.Anonymous):
        args = list(call.expressions)
    else:
        args = [
            call.args[k] for k in call.arg_types if isinstance(call.args.get(k), exp.Expression)
        ]
    distinct = bool(args) and isinstance(args[0], exp.Distinct)
    args = [*args[0].expressions, *args[1:]] if distinct else args
    text = [(a.this if isinstance(a, exp.Order) else a).sql(dialect="duckdb") for a in args]
    d = "DISTINCT " if distinct else ""
    n, total, top = f"{PREFIX}{i}_n", f"{PREFIX}{i}_abs", f"{PREFIX}{i}_top"
    if name == "approx_count_distinct":
        counted = f"COUNT(DISTINCT {text[0]})"
    elif kind == "count":  # its value is its own record count
        counted = (unit.this if isinstance(unit, exp.Filter) else unit).sql(dialect="duckdb")
    elif len(text) == 1:
        counted = f"COUNT({d}{text[0]})"
    else:  # corr(x, y) and the like use the rows where every argument is present
        present = " AND ".join(f"({a}) IS NOT NULL" for a in text)
        counted = f"COUNT({d}CASE WHEN {present} THEN 1 END)"
    selects = [_filtered(counted, where, n)]
    if kind != "additive":
        return AggregateStat(function=name, kind=kind, columns=columns, count=n), selects
    value = f"ABS(CAST({text[0]} AS DOUBLE))"
    selects.append(_filtered(f"SUM({d}{value})", where, total))
    selects.append(_filtered(f"MAX({d}{value}, {top_n})", where, top))
    stat = AggregateStat(function=name, kind=kind, columns=columns, count=n, total=total, top=top)
    return stat, selects


def _filtered(aggregate: str, where: str | None, alias: str) -> str:
    return f"{aggregate}{f' FILTER (WHERE {where})' if where else ''} AS {alias}"


def _sensitive(
    tree: exp.Expression, allowed: set[str], columns: Mapping[str, Collection[str]] | None
) -> tuple[str, ...]:
    """Columns a record query uses that are not marked non-sensitive."""
    from sqlglot import exp

    known = {c.lower() for cols in (columns or {}).values() for c in cols}
    used: set[str] = set()
    star = False
    for node in tree.walk():
        if isinstance(node, exp.Column) and not isinstance(node.this, exp.Star):
            if node.arg_key not in ("except", "except_"):  # SELECT * EXCLUDE (…) removes them
                used.add(node.name.lower())
        elif isinstance(node, (exp.Star, exp.Columns)) and not isinstance(node.parent, exp.Count):
            star = True
        elif isinstance(node, exp.Join):
            used |= {i.name.lower() for i in node.args.get("using") or ()}
            star |= str(node.args.get("method") or "").upper() == "NATURAL"
    if star:
        if columns is None:
            used.add("*")
        excluded = {
            c.name.lower()
            for s in tree.find_all(exp.Star)
            for c in (s.args.get("except") or s.args.get("except_") or ())
        }
        used |= known - excluded
    # An alias the query defines is as sensitive as the columns it is made of, which are in
    # ``used`` already; only names that are no dataset's column can be told apart from one.
    if columns is not None:
        aliases = {a.alias.lower() for a in tree.find_all(exp.Alias)}
        aliases |= {i.name.lower() for t in tree.find_all(exp.TableAlias) for i in t.columns}
        used -= aliases - known
    return tuple(sorted(used - allowed))
