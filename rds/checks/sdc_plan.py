"""Rewriting a query so its run also returns each cell's disclosure statistics (ACRO's rules).

``plan_cell_stats`` rewrites a checked query so that the same DuckDB run also returns, per
output row, the records behind each aggregate and the largest contributions to each sum or
average, as ``__rds_…`` columns after the query's own; ``rds.checks.sdc.check_table`` splits
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

# ruff: noqa: S608  (SQL is built from sqlglot's rendering of the checked tree, quoted
# identifiers and rds's own __rds_ names; nothing is pasted from the request as text)
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
        A query that passed ``rds.checks.sql.check_query`` (DuckDB dialect).
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
    unit = (units or {}).get(source.name)
    order = _order_keys(tree, names, {c.lower() for c in (columns or {}).get(source.name, ())})
    if isinstance(order, str):
        return unsupported(order)
    rewrite = _Rewrite(tree, source, keys, unit, top_n)
    aggregates = [
        rewrite.add(i, whole, call, tuple(seen))
        for i, (whole, call, seen) in enumerate(found.values())
    ]
    key_columns = tuple(f"{PREFIX}k{j}" for j in range(len(keys)))
    declared = (categories or {}).get(source.name, {})
    return CellStatsPlan(
        sql=rewrite.sql(order),
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
        key_names=tuple(_key_name(k, outputs) for k in keys),
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


def _key_name(key: exp.Expression, outputs: list[exp.Expression]) -> str:
    """A GROUP BY key as the scientist named it: the output it is, else its SQL."""
    from sqlglot import exp

    text = key.sql(dialect="duckdb")
    for output in outputs:
        inner = output.this if isinstance(output, exp.Alias) else output
        if inner.sql(dialect="duckdb") == text:
            return str(output.alias_or_name)
    return text


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


def _order_keys(
    tree: exp.Select, names: tuple[str, ...], known: set[str]
) -> list[tuple[str, str]] | str:
    """The query's ORDER BY as (what to sort by, direction), re-applied once the statistics
    are joined on (a join does not keep the order): an output by its position in the final
    SELECT (``"#2"``), anything else by an expression computed beside the query's own."""
    from sqlglot import exp

    order = tree.args.get("order")
    if order is None:
        return []
    found = []
    lowered = [n.lower() for n in names]
    for ordered in order.expressions:
        node = ordered.this
        direction = "DESC" if ordered.args.get("desc") else "ASC"
        nulls = ordered.args.get("nulls_first")
        direction += " NULLS FIRST" if nulls else " NULLS LAST" if nulls is False else ""
        if isinstance(node, exp.Literal) and not node.is_string:
            position = int(node.name)
            if not 1 <= position <= len(names):
                return f"orders by position {position}, which is no output"
            found.append((f"#{position}", direction))
        elif (
            isinstance(node, exp.Column)
            and not node.table
            and node.name.lower() in lowered
            and node.name.lower() not in known
        ):
            found.append((f"#{lowered.index(node.name.lower()) + 1}", direction))
        else:
            found.append((node.sql(dialect="duckdb"), direction))
    return found


class _Rewrite:
    """The query, run over its rows with each row's privacy unit, plus the cells' statistics.

    Without a unit every row is one: the statistics are plain aggregates beside the query's
    own (one pass). With a unit they come from the rows grouped by (keys, unit) — one line
    per person per cell — aggregated again by the keys and joined on (twice as fast as
    windows over the rows)::

        WITH __rds_data AS (SELECT *, unit AS __rds_unit FROM t WHERE <where>),
             __rds_units AS (SELECT <keys>, __rds_unit, <per-person counts and totals> ...
                             GROUP BY <keys>, __rds_unit),
             __rds_cells AS (SELECT <keys>, <people>, <largest totals> ... GROUP BY <keys>)
        SELECT <query's columns>, <statistics> FROM (<query over __rds_data>) AS o
        LEFT JOIN __rds_cells AS s ON <keys> IS NOT DISTINCT FROM ... ORDER BY <query's>
    """

    def __init__(
        self,
        tree: exp.Select,
        source: exp.Table,
        keys: list[exp.Expression],
        unit: str | None,
        top_n: int,
    ) -> None:
        self.tree, self.source, self.unit, self.top_n = tree, source, unit, top_n
        self.keys = [k.sql(dialect="duckdb") for k in keys]
        self.key_columns = [f"{PREFIX}k{j}" for j in range(len(keys))]
        # hidden columns of the query itself (name -> expression), computed in its own pass
        self.inner: dict[str, str] = dict(zip(self.key_columns, self.keys, strict=True))
        self.per_unit: list[str] = []  # per (keys, unit) line
        self.per_cell: list[str] = []  # per cell, from those lines
        self.outer: list[str] = []  # the statistics columns, in stat_columns order

    def add(
        self, i: int, unit: exp.Expression, call: exp.Func, columns: tuple[int, ...]
    ) -> AggregateStat:
        """Plan one aggregate's statistics; return where to read them."""
        from sqlglot import exp

        name = _name(call)
        kinds = {"count": _COUNTS, "additive": _ADDITIVE, "statistic": _STATISTICS}
        kind = next((k for k, names in kinds.items() if name in names), "extreme")
        if kind == "extreme":
            return AggregateStat(function=name, kind=kind, columns=columns)
        filtered = isinstance(unit, exp.Filter)
        where = unit.expression.this.sql(dialect="duckdb") if filtered else None
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
        mixed = f"{PREFIX}{i}_mixed"
        # The rows the aggregate counts: those that pass its FILTER and have its arguments.
        if name in {"count_if", "countif"} and text:
            present = [f"({text[0]}) IS TRUE"]
        else:
            present = [f"({a}) IS NOT NULL" for a in (text[:1] if kind == "additive" else text)]
        condition = " AND ".join([*present, *([f"({where})"] if where else [])]) or "TRUE"
        value = f"ABS(CAST({text[0]} AS DOUBLE))" if kind == "additive" else ""
        d = "DISTINCT " if distinct else ""
        if kind == "additive":
            self.inner[total] = _filtered(f"SUM({d}{value})", where, None)
            self.inner[mixed] = _mixed(text[0], where)
        if self.unit is None:  # a row is a unit: one pass
            # a count is its own record count; anything else counts the rows it reads
            counted = unit.sql(dialect="duckdb") if kind == "count" else None
            self.inner[n] = counted or f"COUNT(*) FILTER (WHERE {condition})"
            self.outer.append(f"o.{n} AS {n}")
            if kind == "additive":
                self.inner[top] = _filtered(f"MAX({value}, {self.top_n})", where, None)
                self.outer += [f"o.{total} AS {total}", f"o.{top} AS {top}"]
                self.outer.append(f"o.{mixed} AS {mixed}")
            return self._stat(name, kind, columns, n, total, top, mixed)
        rows, mine = f"{PREFIX}{i}_rows", f"{PREFIX}{i}_mine"
        self.per_unit.append(f"COUNT(*) FILTER (WHERE {condition}) AS {rows}")
        self.per_cell.append(f"COUNT(*) FILTER (WHERE {rows} > 0) AS {n}")
        people = f"COALESCE(s.{n}, 0)"
        if kind == "count":  # a count is also its own cell size: COUNT(DISTINCT ward) = 2 is small
            own = f"{PREFIX}{i}_self"
            self.inner[own] = unit.sql(dialect="duckdb")
            people = f"LEAST({people}, o.{own})"
        self.outer.append(f"{people} AS {n}")
        if kind == "additive":
            self.per_unit.append(f"{_filtered(f'SUM({value})', where, None)} AS {mine}")
            self.per_cell.append(f"MAX({mine}, {self.top_n}) AS {top}")
            self.outer += [f"o.{total} AS {total}", f"s.{top} AS {top}", f"o.{mixed} AS {mixed}"]
        return self._stat(name, kind, columns, n, total, top, mixed)

    @staticmethod
    def _stat(
        name: str, kind: str, columns: tuple[int, ...], n: str, total: str, top: str, mixed: str
    ) -> AggregateStat:
        if kind != "additive":
            return AggregateStat(function=name, kind=kind, columns=columns, count=n)
        return AggregateStat(name, kind, columns, count=n, total=total, top=top, mixed=mixed)

    def sql(self, order: list[tuple[str, str]]) -> str:
        """The whole query: the original's columns, then ``stat_columns`` in their order."""
        import sqlglot

        inner = dict(self.inner)
        sorting = []
        for j, (by, direction) in enumerate(order):
            if by.startswith("#"):  # an output: the final SELECT keeps the outputs first
                sorting.append(f"{by[1:]} {direction}")
            else:
                inner[f"{PREFIX}o{j}"] = by
                sorting.append(f"o.{PREFIX}o{j} {direction}")
        stats = [*self.outer, *(f"o.{k} AS {k}" for k in self.key_columns)]
        if self.unit is None:
            inner[f"{PREFIX}rows"] = "COUNT(*)"
            stats.append(f"o.{PREFIX}rows AS {PREFIX}rows")
        else:
            stats.append(f"COALESCE(s.{PREFIX}rows, 0) AS {PREFIX}rows")
        # Text from sqlglot's rendering of the checked tree and quoted identifiers only.
        alias = _q(self.source.alias_or_name)
        query = self.tree.copy()
        where = query.args.get("where")
        condition = f" WHERE {where.this.sql(dialect='duckdb')}" if where is not None else ""
        own = f"{alias}.{_q(self.unit)}" if self.unit else "NULL"
        table = self.source.sql(dialect="duckdb")
        ctes = [f"{PREFIX}data AS (SELECT *, {own} AS {_UNIT} FROM {table}{condition})"]
        query.set("where", None)
        reading = sqlglot.parse_one(f"SELECT 1 FROM {PREFIX}data AS {alias}", read="duckdb")
        query.set("from_", reading.args["from_"])
        hidden = [sqlglot.parse_one(f"{e} AS {c}", read="duckdb") for c, e in inner.items()]
        query.set("expressions", [*query.expressions, *hidden])
        joined = ""
        if self.unit is not None:
            named = [f"{k} AS {c}" for k, c in zip(self.keys, self.key_columns, strict=True)]
            units = ", ".join([*named, _UNIT, *self.per_unit])
            group = ", ".join([*self.keys, _UNIT])
            ctes.append(
                f"{PREFIX}units AS (SELECT {units} FROM {PREFIX}data AS {alias} GROUP BY {group})"
            )
            cells = ", ".join([*self.key_columns, f"COUNT(*) AS {PREFIX}rows", *self.per_cell])
            regroup = f" GROUP BY {', '.join(self.key_columns)}" if self.key_columns else ""
            ctes.append(f"{PREFIX}cells AS (SELECT {cells} FROM {PREFIX}units{regroup})")
            on = [f"o.{k} IS NOT DISTINCT FROM s.{k}" for k in self.key_columns]
            joined = f" LEFT JOIN {PREFIX}cells AS s ON {' AND '.join(on) or 'TRUE'}"
        return (
            f"WITH {', '.join(ctes)} "
            f"SELECT o.* EXCLUDE ({', '.join(inner)}), {', '.join(stats)} "
            f"FROM ({query.sql(dialect='duckdb')}) AS o{joined}"
            + (f" ORDER BY {', '.join(sorting)}" if sorting else "")
        )


def _filtered(aggregate: str, where: str | None, alias: str | None) -> str:
    text = f"{aggregate}{f' FILTER (WHERE {where})' if where else ''}"
    return f"{text} AS {alias}" if alias else text


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
