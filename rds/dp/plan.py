"""Differentially private SQL, part 1: which queries are accepted and the SQL they become.

A DP query has one shape::

    SELECT [key, ...,] agg [AS name], ... FROM <dataset> [AS alias]
    [WHERE <condition on the dataset's columns>] [GROUP BY key, ...] [ORDER BY output, ...]

with ``agg`` one of ``COUNT(*)``, ``COUNT(col)``, ``SUM(col)``, ``AVG(col)`` (``MEAN``).
:func:`parse_dp_query` checks that shape against the dataset's public schema and rewrites
it into the SQL the sandbox runs on the private table (:mod:`rds.dp._sql`, which
says how that SQL bounds what one individual can change: a WHERE that sees one row at a
time, keys kept to their public domains, at most ``k = max_contributions`` rows per privacy
unit, and sums clamped to ``[lo_q, hi_q]`` on an integer grid of ``2**-p``).

Sensitivities (add/remove one individual, who has at most k counted rows, over the whole
vector of groups; the L2 bound is the same number because all k rows may land in one
group)::

    COUNT(*), COUNT(col)   L1 = L2 = k
    SUM(col), grid units   L1 = L2 = k * max(|lo_q|, |hi_q|)
    AVG(col)               SUM(col) / COUNT(col), post-processing of the two above

``COUNT(col)`` is ``COUNT(*)`` (the same noisy vector) when the column cannot be missing: the
owner's published ``nullable`` flag says so, or, without one, a NumPy int or bool dtype.

The WHERE condition is checked and rendered by :func:`rds.dp._sql.where_sql`: a
small grammar of expressions that cannot raise on any value (the module explains why that
matters and what bounds their cost).

The noise and the accounting live in :mod:`rds.dp.mechanism`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from rds.dp._sql import PREFIX as _PREFIX
from rds.dp._sql import WHERE_GRAMMAR, grid, private_sql, where_sql
from rds.dp.model import (
    DPAggregate,
    DPColumn,
    DPMeasure,
    DPPlan,
    DPSchema,
    checked_schema,
    date_dtype,
    numeric_dtype,
)
from rds.errors import InvalidInput

if TYPE_CHECKING:
    from sqlglot import exp

SUPPORTED = (
    "A DP query has the form SELECT [key, ...,] agg [AS name], ... FROM <dataset> [AS alias] "
    "[WHERE <condition on the dataset's columns>] [GROUP BY key, ...] [ORDER BY output "
    "[DESC], ...], where agg is COUNT(*), COUNT(col), SUM(col) or AVG(col) on a plain column "
    "(SUM/AVG need bounds declared by the data owner) and every key has a declared "
    "category domain, or is a date bucket (date_trunc('month', col) AS month) of a date "
    "column with declared bounds."
)
MAX_CELLS = 1_000_000  # cells of the keys' cross product: each one is released, with noise
#: ``date_trunc`` units a DP GROUP BY takes: how a bucket is written, pandas' period, days.
DATE_BUCKETS = {
    "year": ("%Y", "Y", 365),
    "quarter": ("%Y-%m", "Q", 90),
    "month": ("%Y-%m", "M", 28),
    "week": ("%Y-%m-%d", "W-SUN", 7),  # ISO weeks, Monday first, as DuckDB truncates
    "day": ("%Y-%m-%d", "D", 1),
}
_AGG_ARGS = {"this", "big_int"}
_CLAUSES = {
    "with_": "CTEs (WITH)",
    "distinct": "SELECT DISTINCT",
    "joins": "joins",
    "laterals": "LATERAL",
    "having": "HAVING",
    "qualify": "QUALIFY",
    "windows": "window functions",
    "limit": "LIMIT",
    "offset": "OFFSET",
    "sample": "TABLESAMPLE",
    "pivots": "PIVOT",
}


def parse_dp_query(query: str, schema: DPSchema) -> DPPlan:
    """Check ``query`` against the supported DP shape and plan its private SQL.

    The returned plan is not calibrated yet: scales, ``epsilon`` and ``mechanism`` are
    filled in by :func:`rds.dp.mechanism.plan_dp_query`.

    Raises
    ------
    InvalidInput
        For any other query shape, with a message that shows the supported form.

    Examples
    --------
    >>> schema = DPSchema("patients", (DPColumn("ward", "object", categories=("a", "b")),))
    >>> parse_dp_query("SELECT ward, COUNT(*) FROM patients GROUP BY ward", schema).keys
    ('ward',)
    """
    return _Planner(schema).plan(query)


def _refuse(what: str) -> InvalidInput:
    return InvalidInput(f"Refused for a DP query: {what}. {SUPPORTED}")


class _Planner:
    def __init__(self, schema: DPSchema) -> None:
        self.schema = schema = checked_schema(schema)
        self.columns = {c.name: c for c in schema.columns}
        self.folded = {c.name.casefold(): c for c in schema.columns}
        self.qualifiers = {schema.dataset.casefold()}
        self.aggregates: dict[tuple[str, str | None], DPAggregate] = {}

    def plan(self, query: str) -> DPPlan:
        select = self._parse(query)
        keys = self._keys(select)
        found = [self._measure(e, keys) for e in select.expressions]
        measures = [m for m in found if m is not None]
        if not measures:
            raise _refuse("there is no COUNT, SUM or AVG to release")
        names = [k.name for k in keys]
        outputs = names + [n for m in measures for n in (m.name, *_ci(m.name))]
        dupes = sorted({n for n in outputs if outputs.count(n) > 1})
        if dupes or any(n.startswith(_PREFIX) for n in outputs):
            raise _refuse(f"duplicate or reserved output names {dupes}; alias them with AS")
        order = self._order(select, names, [m.name for m in measures])
        where = self._where(select)
        return DPPlan(
            sql=private_sql(self.schema, keys, self.aggregates.values(), where),
            keys=tuple(names),
            domains=tuple(tuple(k.categories or ()) for k in keys),
            measures=tuple(measures),
            aggregates=tuple(self.aggregates.values()),
            order_by=order,
            epsilon=0.0,
            delta=0.0,
            mechanism="",
        )

    def _parse(self, query: str) -> exp.Select:
        import sqlglot
        from sqlglot import exp
        from sqlglot.errors import ParseError

        from rds.checks.sql import check_query

        if not isinstance(query, str) or not query.strip():
            raise InvalidInput(f"The query is empty. {SUPPORTED}")
        try:
            tree = sqlglot.parse_one(query, read="duckdb")
        except ParseError as exc:
            raise InvalidInput(
                f"The query does not parse as DuckDB SQL: {exc}. {SUPPORTED}"
            ) from None
        except RecursionError:
            raise _refuse("a query nested too deeply to be checked") from None
        if not isinstance(tree, exp.Select):
            raise _refuse(f"a {type(tree).__name__.upper()} statement (one SELECT only)")
        for arg, value in tree.args.items():
            if value and arg not in {"expressions", "from_", "where", "group", "order"}:
                raise _refuse(_CLAUSES.get(arg, arg.upper()))
        source = tree.args.get("from_")
        table = source.this if source is not None else None
        if not isinstance(table, exp.Table) or not isinstance(table.this, exp.Identifier):
            raise _refuse("FROM must name the dataset itself (no subqueries or functions)")
        extra = [a for a, v in table.args.items() if v and a not in {"this", "alias"}]
        alias = table.args.get("alias")
        if extra or (alias is not None and alias.args.get("columns")):
            raise _refuse(_CLAUSES.get(extra[0], extra[0].upper()) if extra else "column aliases")
        if table.name != self.schema.dataset:
            raise _refuse(f"the table {table.name!r}; this dataset is {self.schema.dataset!r}")
        if alias is not None:
            self.qualifiers.add(table.alias.casefold())
        for kind, what in ((exp.Window, "window functions"), (exp.Subquery, "subqueries")):
            if tree.find(kind) is not None:
                raise _refuse(what)
        if any(s is not tree for s in tree.find_all(exp.Select)):
            raise _refuse("subqueries")
        try:
            check_query(query, datasets={self.schema.dataset})
        except InvalidInput as exc:
            raise InvalidInput(f"{exc} {SUPPORTED}") from None
        return tree

    def _column(self, node: exp.Expression, role: str) -> DPColumn:
        from sqlglot import exp

        if not isinstance(node, exp.Column) or not isinstance(node.this, exp.Identifier):
            raise _refuse(f"{node.sql(dialect='duckdb')} as {role}; use a plain column")
        if node.args.get("db") or node.args.get("catalog"):
            raise _refuse(f"the qualified column {node.sql(dialect='duckdb')}")
        if node.table and node.table.casefold() not in self.qualifiers:
            raise _refuse(f"the column {node.sql(dialect='duckdb')} of another table")
        col = self.columns.get(node.name) or self.folded.get(node.name.casefold())
        if col is None:
            shown = ", ".join(self.columns)
            raise _refuse(f"unknown column {node.name!r} (the columns are {shown})")
        return col

    def _keys(self, select: exp.Select) -> list[DPColumn]:
        from sqlglot import exp

        group = select.args.get("group")
        if group is None:
            return []
        if any(group.args.get(a) for a in ("all", "rollup", "cube", "grouping_sets", "totals")):
            raise _refuse("GROUP BY ALL, ROLLUP, CUBE and GROUPING SETS; list the keys")
        keys: list[DPColumn] = []
        buckets = {  # alias -> date bucket, and the bucket's own text -> its alias
            item.alias: item.this for item in select.expressions if isinstance(item, exp.Alias)
        }
        by_text = {v.sql(dialect="duckdb"): a for a, v in buckets.items()}
        for node in group.expressions:
            if isinstance(node, exp.Literal) and not node.is_string:
                position = int(node.name)
                if not 1 <= position <= len(select.expressions):
                    raise _refuse(f"GROUP BY {position}: there is no such SELECT item")
                node = select.expressions[position - 1]
            if isinstance(node, exp.Alias):
                node = node.this
            alias = by_text.get(node.sql(dialect="duckdb"))
            if isinstance(node, exp.Column) and not node.table and node.name in buckets:
                alias, node = node.name, buckets[node.name]
            if isinstance(node, exp.TimestampTrunc | exp.DateTrunc):
                key = self._bucket(node, alias)
                if key not in keys:
                    keys.append(key)
                continue
            key = self._column(node, "a GROUP BY key")
            if not key.categories:
                known = [c.name for c in self.schema.columns if c.categories] or ["none"]
                raise _refuse(
                    f"GROUP BY {key.name!r}, which has no public category domain declared "
                    f"by the data owner (columns with one: {', '.join(known)})"
                )
            if key not in keys:
                keys.append(key)
        cells = math.prod(len(k.categories or ()) for k in keys)
        if cells > MAX_CELLS:
            raise _refuse(f"{cells:,} groups in the keys' cross product (at most {MAX_CELLS:,})")
        return keys

    def _bucket(self, node: exp.Expression, alias: str | None) -> DPColumn:
        """``date_trunc(unit, col) AS name``: a key whose every value follows from the
        column's declared date bounds (each bucket between them), so no group's existence
        depends on the data. It is released as text (``2024-03`` for a month)."""
        import pandas as pd

        given = node.args.get("unit")
        unit = str(given.name if given is not None else "").lower()
        shown = node.sql(dialect="duckdb")
        if unit not in DATE_BUCKETS:
            raise _refuse(f"{shown}: date buckets are {', '.join(DATE_BUCKETS)}")
        if alias is None:
            raise _refuse(f"the date bucket {shown} without a name; write {shown} AS <name>")
        col = self._column(node.this, "a date bucket's column")
        if not date_dtype(col.dtype) or col.bounds is None:
            dated = [c.name for c in self.schema.columns if date_dtype(c.dtype) and c.bounds]
            raise _refuse(
                f"{shown}: a date bucket needs a date column with bounds declared by the data "
                f"owner (dated columns with bounds: {', '.join(dated) or 'none'})"
            )
        fmt, freq, days = DATE_BUCKETS[unit]
        first, last = (pd.Timestamp(b) for b in col.bounds)
        if (last - first).days / days > MAX_CELLS:
            raise _refuse(f"{shown}: more than {MAX_CELLS:,} buckets between the bounds")
        starts = pd.period_range(first, last, freq=freq).start_time
        values = tuple(dict.fromkeys(t.strftime(fmt) for t in starts))
        truncated = f"date_trunc('{unit}', TRY_CAST({_quoted(col.name)} AS TIMESTAMP))"
        return DPColumn(
            name=alias,
            dtype="object",
            categories=values,
            expression=f"strftime({truncated}, '{fmt}')",
        )

    def _measure(self, node: exp.Expression, keys: list[DPColumn]) -> DPMeasure | None:
        from sqlglot import exp

        alias = node.alias if isinstance(node, exp.Alias) else None
        agg = node.this if isinstance(node, exp.Alias) else node
        is_mean = isinstance(agg, exp.Anonymous) and agg.name.upper() == "MEAN"
        if not isinstance(agg, (exp.Count, exp.Sum, exp.Avg)) and not is_mean:
            if isinstance(agg, exp.Filter):
                raise _refuse("FILTER clauses on aggregates; use WHERE")
            if isinstance(agg, exp.AggFunc | exp.Anonymous):
                raise _refuse(f"{agg.sql(dialect='duckdb')}: only COUNT, SUM and AVG")
            if isinstance(agg, exp.TimestampTrunc | exp.DateTrunc):
                if alias and any(k.name == alias and k.expression for k in keys):
                    return None
                raise _refuse(f"selecting {node.sql(dialect='duckdb')}, which is not a key")
            col = self._column(agg, "a selected item") if isinstance(agg, exp.Column) else None
            if col is None or col not in keys:
                raise _refuse(f"selecting {node.sql(dialect='duckdb')}, which is not a key")
            if alias:
                raise _refuse(f"the alias on the key {col.name!r}; select keys by name")
            return None
        if is_mean:
            args = agg.expressions
            if len(args) != 1:
                raise _refuse("MEAN takes one column")
            arg: exp.Expression | None = args[0]
        else:
            if any(v for a, v in agg.args.items() if v and a not in _AGG_ARGS):
                raise _refuse(f"{agg.sql(dialect='duckdb')}: plain COUNT/SUM/AVG only")
            arg = agg.this
        kind = (
            "count" if isinstance(agg, exp.Count) else "sum" if isinstance(agg, exp.Sum) else "avg"
        )
        if isinstance(arg, exp.Distinct):
            raise _refuse(f"DISTINCT inside {kind.upper()}")
        if kind == "count" and (arg is None or isinstance(arg, exp.Star)):
            return DPMeasure(alias or "count", "count", None, self._count(None).column)
        if arg is None or not isinstance(arg, exp.Column):
            shown = arg.sql(dialect="duckdb") if arg is not None else ""
            raise _refuse(
                f"the expression {shown!r} inside {kind.upper()}: its bounds are unknown; "
                "aggregate a column"
            )
        col = self._column(arg, f"the argument of {kind.upper()}")
        name = alias or f"{kind}_{col.name}"
        if kind == "count":
            return DPMeasure(name, "count", col.name, self._count(col).column)
        total = self._sum(col)
        if kind == "sum":
            return DPMeasure(name, "sum", col.name, total.column)
        count = self._count(col)
        return DPMeasure(name, "avg", col.name, total.column, count.column, col.bounds)

    def _add(self, key: tuple[str, str | None], make: Any) -> DPAggregate:
        if key not in self.aggregates:
            self.aggregates[key] = make(f"{_PREFIX}a{len(self.aggregates)}")
        return self.aggregates[key]

    def _count(self, col: DPColumn | None) -> DPAggregate:
        k = self.schema.max_contributions
        if col is None or not col.may_be_missing:  # COUNT(col) == COUNT(*) for these
            return self._add(("count", None), lambda n: DPAggregate(n, "count", None, k))
        return self._add(("count", col.name), lambda n: DPAggregate(n, "count", col.name, k))

    def _sum(self, col: DPColumn) -> DPAggregate:
        if col.bounds is None or not numeric_dtype(col.dtype):
            known = [c.name for c in self.schema.columns if c.bounds and numeric_dtype(c.dtype)]
            raise _refuse(
                f"SUM/AVG of {col.name!r}, which has no declared numeric bounds "
                f"(columns with bounds: {', '.join(known) or 'none'})"
            )
        p = grid(col.bounds)
        lo_q, hi_q = math.ceil(col.bounds[0] * 2.0**p), math.floor(col.bounds[1] * 2.0**p)
        sens = self.schema.max_contributions * max(abs(lo_q), abs(hi_q))
        return self._add(
            ("sum", col.name),
            lambda n: DPAggregate(n, "sum", col.name, sens, 2.0**-p, (lo_q, hi_q)),
        )

    def _where(self, select: exp.Select) -> str | None:
        """The WHERE condition as SQL that cannot fail on any data (see ``where_sql``)."""
        from sqlglot import exp

        where = select.args.get("where")
        if where is None:
            return None
        if where.find(exp.AggFunc) is not None:
            raise _refuse("aggregates in WHERE")
        try:
            return where_sql(where.this, lambda node: self._column(node, "a WHERE column"))
        except InvalidInput as exc:
            if str(exc).startswith("Refused for a DP query"):
                raise
            raise InvalidInput(
                f"Refused for a DP query: {exc}. {SUPPORTED} {WHERE_GRAMMAR}"
            ) from None

    def _order(
        self, select: exp.Select, keys: list[str], measures: list[str]
    ) -> tuple[tuple[str, bool], ...]:
        from sqlglot import exp

        order = select.args.get("order")
        if order is None:
            return ()
        items = [e.alias_or_name for e in select.expressions]
        names = {n.casefold(): n for n in keys + measures}
        result = []
        for ordered in order.expressions:
            node = ordered.this
            if isinstance(node, exp.Literal) and not node.is_string and node.name.isdigit():
                position = int(node.name)
                name = items[position - 1] if 1 <= position <= len(items) else ""
            elif isinstance(node, exp.Column) and not node.table:
                name = node.name
            else:
                name = ""
            if name.casefold() not in names:
                raise _refuse(f"ORDER BY {node.sql(dialect='duckdb')}; order by output columns")
            result.append((names[name.casefold()], bool(ordered.args.get("desc"))))
        return tuple(result)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _ci(name: str) -> tuple[str, str]:
    return f"{name}_ci_low", f"{name}_ci_high"
