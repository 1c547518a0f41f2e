"""Rewriting a query so its run also returns each cell's disclosure statistics (ACRO's rules).

``plan_cell_stats`` rewrites a checked query so that the same DuckDB run also returns, per
output row, the records behind each aggregate and the largest contributions to each sum or
average, as ``__rds_…`` columns after the query's own; ``rds.privacy.sdc.check_table`` splits
them off and judges them. The top-level ``SELECT`` decides how a query is judged:

- **aggregate** (an aggregate outside a window function, or ``GROUP BY``) over **one
  dataset** (one table in ``FROM``: no joins, CTEs or derived tables; ``WHERE`` and
  ``HAVING`` may hold anything): each cell by the aggregates in its expression, keeping
  their ``FILTER`` and ``DISTINCT`` (``count(*) FILTER (WHERE name = 'Alice')`` is judged by
  its own people); a window's own function (the ``sum`` of ``sum(count(*)) OVER ()``) is
  skipped, the aggregates inside it are the group's. Every aggregate gets the number of
  distinct **privacy units** (people) behind it — the dataset's declared ``privacy_unit``,
  else each row is a unit; sums and averages also the sum of absolute values and the
  largest **per-person totals** (a person's rows in the cell added up), so one person with
  many rows dominates as one person, and whether the values have both signs; other
  statistics (stddev, corr, …) a unit count; MIN, MAX, MEDIAN, LIST, … return a record's
  value, so nothing is computed for them. The query's ``GROUP BY`` keys come back too, so
  the checker can see which combinations of them do not occur (class disclosure).
- **record** (no aggregate; also ``SELECT DISTINCT``): the plan lists every column the query
  mentions anywhere (``WHERE``, joins, ``ORDER BY``, ``*``) that is not marked non-sensitive.
- **unsupported** (top-level set operations, ``DISTINCT`` with aggregates, ``*`` or a
  subquery among an aggregate query's outputs, aggregates over joins, CTEs or derived
  tables, ``GROUPING SETS``/``ROLLUP``/``CUBE``/``GROUP BY ALL``, the reserved prefix): the
  owner reviews it. Over a join a row can stand for several people and one person can be in
  many rows in ways a count cannot see (``CROSS JOIN`` with a 20-row table makes every
  record "20 records"), so rds does not pretend to count people there.

The rewritten query computes the people counts with windows over the query's own rows::

    SELECT <outputs>, <stats> FROM (
        SELECT *, <per-person totals> OVER (PARTITION BY <keys>, unit), <first row of
               each person in each group> FROM (SELECT *, <unit> FROM t WHERE <where>) AS t
    ) AS t GROUP BY <keys> HAVING …
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
    ``count`` holds the distinct privacy units behind the cell, ``total`` the sum of absolute
    values, ``top`` the largest per-unit totals, ``mixed`` whether the cell has both negative
    and positive values.
    """

    function: str
    kind: str
    columns: tuple[int, ...]
    count: str | None = None
    total: str | None = None
    top: str | None = None
    mixed: str | None = None


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
    #: ``"people"`` when the dataset declares a privacy unit, else ``"records"``
    counted: str = "records"
    #: The GROUP BY keys' hidden output columns, and per key the declared category domain
    #: to judge missing combinations over (``None``: the values the result shows).
    key_columns: tuple[str, ...] = ()
    key_domains: tuple[tuple[Any, ...] | None, ...] = ()
    key_names: tuple[str, ...] = ()

    @property
    def stat_columns(self) -> tuple[str, ...]:
        names = [n for a in self.aggregates for n in (a.count, a.total, a.top, a.mixed) if n]
        names += self.key_columns
        return (*names, self.group_count) if self.group_count else tuple(names)


def plan_cell_stats(
    sql: str,
    *,
    non_sensitive: Collection[str] = (),
    columns: Mapping[str, Collection[str]] | None = None,
    top_n: int = 5,
    units: Mapping[str, str | None] | None = None,
    categories: Mapping[str, Mapping[str, Collection[Any]]] | None = None,
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
    units
        Each dataset's privacy-unit column (``None`` or absent: a row is a unit).
    categories
        Each dataset's declared category domains, column to values: a ``GROUP BY`` on such a
        column is judged over all its values (missing ones are zero cells).

    Examples
    --------
    >>> plan = plan_cell_stats("SELECT ward, sum(cost) AS total FROM visits GROUP BY ward")
    >>> plan.shape, plan.stat_columns[:4]
    ('aggregate', ('__rds_0_n', '__rds_0_abs', '__rds_0_top', '__rds_0_mixed'))
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

    source = _single_source(tree)
    if isinstance(source, str):
        return unsupported(source)
    names = tuple(e.alias_or_name or e.sql(dialect="duckdb") for e in outputs)
    keys = _group_keys(tree, outputs, {c.lower() for c in (columns or {}).get(source.name, ())})
    if isinstance(keys, str):
        return unsupported(keys)
    _inherit_lateral_aliases(outputs, names, calls)
    top_n = max(int(top_n), 2)
    found: dict[str, tuple[exp.Expression, exp.Func, list[int]]] = {}
    for position, called in enumerate(calls):
        for whole, call in called:  # the same aggregate in several columns is computed once
            seen = found.setdefault(whole.sql(dialect="duckdb"), (whole, call, []))[2]
            seen += [] if position in seen else [position]
    by = ", ".join([*(k.sql(dialect="duckdb") for k in keys), _UNIT])
    aggregates, extra, windows = [], [], []
    for i, (whole, call, seen) in enumerate(found.values()):
        stat, selects, window = _stat(i, whole, call, tuple(seen), top_n, by)
        aggregates.append(stat)
        extra.extend(selects)
        windows.extend(window)
    key_columns = tuple(f"{PREFIX}k{j}" for j in range(len(keys)))
    extra += [f"{k.sql(dialect='duckdb')} AS {c}" for k, c in zip(keys, key_columns, strict=True)]
    extra.append(f"COUNT(DISTINCT {_UNIT}) AS {PREFIX}rows")
    unit = (units or {}).get(source.name)
    rewritten = tree.copy()
    rewritten.set("from_", _people_rows(rewritten, source, unit, by, windows))
    rewritten.set("where", None)
    parsed = [sqlglot.parse_one(s, read="duckdb") for s in extra]
    rewritten.set("expressions", [*rewritten.expressions, *parsed])
    declared = (categories or {}).get(source.name, {})
    return CellStatsPlan(
        sql=rewritten.sql(dialect="duckdb"),
        original_sql=sql,
        shape="aggregate",
        reason="aggregates records of one dataset",
        output_columns=names,
        aggregates=tuple(aggregates),
        group_count=f"{PREFIX}rows",
        grouped=grouped,
        top_n=top_n,
        counted="people" if unit else "records",
        key_columns=key_columns,
        key_domains=tuple(_domain(k, declared, tree) for k in keys),
        key_names=tuple(k.sql(dialect="duckdb") for k in keys),
    )


_UNIT = f"{PREFIX}unit"
_FIRST = f"{PREFIX}first"


def _single_source(tree: exp.Select) -> exp.Table | str:
    """The one dataset an aggregate query reads, or why rds cannot count its people."""
    from sqlglot import exp

    if tree.args.get("with_") or tree.args.get("with"):
        return "aggregates over CTEs (WITH), where rds cannot count people"
    if tree.args.get("joins") or tree.args.get("laterals"):
        return "aggregates over a join, where a row can stand for several people"
    for arg in ("pivots", "sample"):
        if tree.args.get(arg):
            return f"uses {arg.upper()}"
    source = tree.args.get("from_")
    table = source.this if source is not None else None
    if not isinstance(table, exp.Table) or not isinstance(table.this, exp.Identifier):
        return "aggregates over a derived table, where rds cannot count people"
    if any(v for k, v in table.args.items() if k not in {"this", "alias"}):
        return "reads its table with options rds does not check"
    alias = table.args.get("alias")
    if alias is not None and alias.args.get("columns"):
        return "renames the table's columns in FROM"
    return table


def _group_keys(
    tree: exp.Select, outputs: list[exp.Expression], known: set[str]
) -> list[exp.Expression] | str:
    """The GROUP BY expressions, with positions and output aliases resolved."""
    from sqlglot import exp

    group = tree.args.get("group")
    if group is None:
        return []
    if group.args.get("all") or any(
        group.args.get(k) for k in ("rollup", "cube", "grouping_sets", "totals")
    ):
        return "uses GROUP BY ALL, ROLLUP, CUBE or GROUPING SETS"
    aliases = {e.alias.lower(): e.this for e in outputs if isinstance(e, exp.Alias)}
    keys: list[exp.Expression] = []
    for node in group.expressions:
        if isinstance(node, (exp.Rollup, exp.Cube, exp.GroupingSets)):
            return "uses GROUP BY ALL, ROLLUP, CUBE or GROUPING SETS"
        if node.find(exp.Subquery, exp.Select) is not None:
            return "has a subquery in GROUP BY"
        if isinstance(node, exp.Literal) and not node.is_string:
            position = int(node.name)
            if not 1 <= position <= len(outputs):
                return f"groups by position {position}, which is no output"
            chosen = outputs[position - 1]
            node = chosen.this if isinstance(chosen, exp.Alias) else chosen
        elif (
            isinstance(node, exp.Column)
            and not node.table
            and node.name.lower() in aliases
            and node.name.lower() not in known
        ):
            node = aliases[node.name.lower()]
        keys.append(node.copy())
    return keys


def _people_rows(
    tree: exp.Select, source: exp.Table, unit: str | None, by: str, windows: list[str]
) -> exp.Expression:
    """``FROM`` the query's rows (after its WHERE), each with its unit and per-unit totals."""
    import sqlglot

    # Text from sqlglot's rendering of the checked tree and quoted identifiers only.
    alias = _q(source.alias_or_name)
    where = tree.args.get("where")
    condition = f" WHERE {where.this.sql(dialect='duckdb')}" if where is not None else ""
    own = f"{alias}.{_q(unit)}" if unit else "row_number() OVER ()"
    table = source.sql(dialect="duckdb")
    rows = f"SELECT *, {own} AS {_UNIT} FROM {table}{condition}"  # noqa: S608
    per_unit = [*windows, f"row_number() OVER (PARTITION BY {by}) AS {_FIRST}"]
    inner = f"SELECT *, {', '.join(per_unit)} FROM ({rows}) AS {alias}"  # noqa: S608
    outer = f"SELECT 1 FROM ({inner}) AS {alias}"  # noqa: S608
    return sqlglot.parse_one(outer, read="duckdb").args["from_"]


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _domain(
    key: exp.Expression, declared: Mapping[str, Collection[Any]], tree: exp.Select
) -> tuple[Any, ...] | None:
    """A key's declared categories, if it is a plain declared column the WHERE leaves alone."""
    from sqlglot import exp

    if not isinstance(key, exp.Column):
        return None
    values = next((v for c, v in declared.items() if c.lower() == key.name.lower()), None)
    where = tree.args.get("where")
    mentioned = where is not None and any(
        c.name.lower() == key.name.lower() for c in where.find_all(exp.Column)
    )
    return None if values is None or mentioned else tuple(values)


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
    i: int, unit: exp.Expression, call: exp.Func, columns: tuple[int, ...], top_n: int, by: str
) -> tuple[AggregateStat, list[str], list[str]]:
    """One aggregate's statistics: the SELECT items and the per-unit windows they need."""
    from sqlglot import exp

    name = _name(call)
    kinds = {"count": _COUNTS, "additive": _ADDITIVE, "statistic": _STATISTICS}
    kind = next((k for k, names in kinds.items() if name in names), "extreme")
    if kind == "extreme":
        return AggregateStat(function=name, kind=kind, columns=columns), [], []
    where = unit.expression.this.sql(dialect="duckdb") if isinstance(unit, exp.Filter) else None
    if isinstance(call, exp.Anonymous):
        args = list(call.expressions)
    else:
        args = [
            call.args[k] for k in call.arg_types if isinstance(call.args.get(k), exp.Expression)
        ]
    distinct = bool(args) and isinstance(args[0], exp.Distinct)
    args = [*args[0].expressions, *args[1:]] if distinct else args
    args = [a for a in args if not isinstance(a, exp.Star)]
    text = [(a.this if isinstance(a, exp.Order) else a).sql(dialect="duckdb") for a in args]
    n, total, top = f"{PREFIX}{i}_n", f"{PREFIX}{i}_abs", f"{PREFIX}{i}_top"
    # The people behind the cell: those with a row the aggregate counts.
    if name in {"count_if", "countif"} and text:
        present = [f"({text[0]}) IS TRUE"]
    else:
        present = [f"({a}) IS NOT NULL" for a in (text[:1] if kind == "additive" else text)]
    condition = " AND ".join([*present, *([f"({where})"] if where else [])])
    people = _filtered(f"COUNT(DISTINCT {_UNIT})", condition or None, "").removesuffix(" AS ")
    if kind == "count":  # a count is also its own cell size: COUNT(DISTINCT ward) = 2 is small
        people = f"LEAST({people}, {unit.sql(dialect='duckdb')})"
    selects = [f"{people} AS {n}"]
    if kind != "additive":
        return AggregateStat(function=name, kind=kind, columns=columns, count=n), selects, []
    value = f"ABS(CAST({text[0]} AS DOUBLE))"
    d = "DISTINCT " if distinct else ""
    selects.append(_filtered(f"SUM({d}{value})", where, total))
    # Each person's total in the group, on one of their rows; the largest of those.
    mine = f"{PREFIX}{i}_mine"
    counted = f"CASE WHEN {where} THEN {value} END" if where else value
    window = f"SUM({counted}) OVER (PARTITION BY {by}) AS {mine}"
    selects.append(f"MAX({mine}, {top_n}) FILTER (WHERE {_FIRST} = 1) AS {top}")
    mixed = f"{PREFIX}{i}_mixed"
    selects.append(f"{_mixed(text[0], where)} AS {mixed}")
    stat = AggregateStat(name, kind, columns, count=n, total=total, top=top, mixed=mixed)
    return stat, selects, [window]


def _filtered(aggregate: str, where: str | None, alias: str) -> str:
    return f"{aggregate}{f' FILTER (WHERE {where})' if where else ''} AS {alias}"


def _mixed(argument: str, where: str | None) -> str:
    """Whether a cell has both negative and positive values: then the others can cancel
    out, and the largest be worked out from the total whatever its share."""
    signed = f"CAST({argument} AS DOUBLE)"
    kept = f" FILTER (WHERE {where})" if where else ""
    return f"COALESCE(MIN({signed}){kept} < 0 AND MAX({signed}){kept} > 0, FALSE)"


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
