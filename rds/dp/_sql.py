"""Differentially private SQL: the query the sandbox runs on the private table.

:func:`private_sql` turns an accepted DP query (see :mod:`rds.dp.plan`) into SQL
that computes *exact* per-group aggregates whose change, when one individual is added or
removed, is bounded:

- the WHERE condition only drops rows, and it sees one row at a time (no subqueries,
  aggregates or window functions);
- rows whose GROUP BY keys fall outside the declared public domains are dropped, so the
  set of groups is fixed before the data is read (a semi join on the groups after
  aggregating, which is the same and free; before the cap when there is one);
- with ``needs_cap`` each privacy unit keeps at most ``k = max_contributions`` of its
  remaining rows, picked at random (``random()`` per row, then ``QUALIFY row_number() OVER
  (PARTITION BY unit ORDER BY draw) <= k``). Which rows a unit keeps depends only on its
  own rows and draws, so the bound holds under the coupling of everyone else's draws.
  Without ``needs_cap`` the owner has vouched that no unit has more than k rows;
- summed values are clamped and put on a fixed-point grid: ``v = round(x * 2**p)`` clamped
  to the integers ``[lo_q, hi_q]``, ``|lo_q|, |hi_q| < 2**31``, summed exactly as integers
  by DuckDB. NaN and NULL are missing values (not counted by ``COUNT(col)``, not summed).

Integer sums matter: a floating-point sum's rounding depends on the order of the rows, so
its true sensitivity can exceed ``k * max(|lo|, |hi|)`` (Casacuberta et al., CCS 2022).
The per-row grid error is at most ``2**-p / 2 < max(|lo|, |hi|) * 2**-31``.

The WHERE condition cannot fail, whatever the data
---------------------------------------------------
A DP answer within budget is released at once, while a failed run waits for the owner: if a
condition could raise on some values (``CAST(s AS INT)``, ``1 // x``, a string compared
with a number, ``error()``) the scientist could make the run fail exactly when a target's
value has some property, and read that bit outside the DP guarantee. DuckDB evaluates
lazily (``CASE``, ``AND``, ``OR`` skip branches row by row) and raises on bad *constants*
only when it reaches them (``CASE WHEN x = 42 THEN y = 'abc' END`` fails only if some row
has ``x = 42``), so "it raises at bind time" holds for nothing. :func:`where_sql` therefore
admits only expressions every part of which is total, decided from the public schema
before anything runs, and renders them itself (never the scientist's text):

- every column is read through ``TRY_CAST`` to one of five types, chosen from its published
  dtype (:func:`rds.dp.model.where_kind`): ``DOUBLE`` (numbers), ``VARCHAR``
  (text), ``BOOLEAN``, ``TIMESTAMP``, ``TIMESTAMPTZ``; a column whose storage type is not
  what its dtype suggests reads as NULL, never as an error;
- operands of a comparison, ``BETWEEN``, ``IN``, ``CASE`` result or ``COALESCE`` have the
  same type, checked statically: a number against a string is refused (DuckDB would cast
  the string *column* at run time and raise on a non-numeric row); a string literal
  against a date column must be an ISO date, validated here and rendered as a literal that
  cannot fail; a number literal is rendered as a ``DOUBLE``;
- arithmetic is on ``DOUBLE`` (overflow gives ±inf, DuckDB 2.0 does not raise on it; on
  ``BIGINT`` it raises), and ``a / b`` is ``a / NULLIF(b, 0)`` (NULL when b is 0); no
  ``//`` or ``%`` (they raise on 0);
- ``CAST`` and ``::`` are refused (they raise on values that do not convert); ``TRY_CAST``
  to a number, text, boolean, date or timestamp type is allowed (it gives NULL);
- ``LIKE``/``ILIKE`` take a literal pattern and no ``ESCAPE`` (DuckDB raises on a pattern
  ending in its escape character, at run time);
- functions: ``abs``, ``lower``, ``upper``, ``trim``/``ltrim``/``rtrim`` (no characters
  argument), ``length``; nothing whose errors or cost depend on data (regular expressions,
  ``strptime``, ``repeat``, ``substr`` with data offsets, ``error()``, ...).

What bounds the cost. Every admitted operation does work linear in the size of its inputs
for one row, except ``LIKE``/``ILIKE``, whose backtracking on ``%`` is at most (pattern
length) x (string length); the condition has at most ``MAX_WHERE_NODES`` nodes, nested at
most ``MAX_WHERE_DEPTH`` deep, and all its patterns together at most
``MAX_PATTERN_CHARS`` characters. So the work on a row is at most ``c * (MAX_WHERE_NODES +
MAX_PATTERN_CHARS) * (1 + its text length)`` (measured on DuckDB 2.0: ~3 ns per pattern
character per text character, so under a millisecond for 1 KB of text at the limits), and
no admitted expression makes more than one copy of a row's text per node (no ``repeat``,
no ``||``, no padding). The run's cost is therefore set by the table's size and the
query's shape; an individual's k rows move it by at most k times that per-row bound, far
below the sandbox's wall-clock limit. (A query could still be made to run close enough to
that limit that one row decides whether it is crossed; a DP run that fails or times out
should not be treated differently from one that succeeds, see ``rds.worker.runs``.)
"""

# ruff: noqa: S608  (SQL is built from text: identifiers go through _q, values through
# _literal, and the WHERE text is sqlglot's rendering of a checked tree)
from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from rds.dp.model import DPAggregate, DPColumn, DPSchema, numeric_dtype, where_kind
from rds.errors import InvalidInput

if TYPE_CHECKING:
    from sqlglot import exp

PREFIX = "__rds_"
#: Limits on a WHERE condition (see "What bounds the cost" above).
MAX_WHERE_NODES = 500
MAX_WHERE_DEPTH = 64
MAX_PATTERN_CHARS = 256
WHERE_GRAMMAR = (
    "A DP WHERE may use columns; number, string, TRUE/FALSE and NULL literals; = <> < <= > "
    ">=; AND, OR, NOT; BETWEEN; IN (literal, ...); IS [NOT] NULL, IS [NOT] TRUE/FALSE; "
    "[NOT] LIKE/ILIKE 'pattern' (no ESCAPE); CASE; COALESCE; + - * / on numbers; abs, "
    "lower, upper, trim, ltrim, rtrim, length; TRY_CAST(x AS a number, text, boolean, date "
    "or timestamp type). Operands of one comparison have one type: numbers with numbers, "
    "text with text, dates with dates or ISO date strings ('2024-01-31')."
)


def private_sql(
    schema: DPSchema, keys: list[DPColumn], aggregates: Iterable[DPAggregate], where: str | None
) -> str:
    """The SQL computing ``aggregates`` per group of ``keys`` over the rows ``where`` keeps.

    Examples
    --------
    >>> count = DPAggregate("__rds_a0", "count", None, 1)
    >>> private_sql(DPSchema("patients", ()), [], [count], None)[:42]
    'SELECT COUNT(*) AS "__rds_a0" FROM (SELECT'
    """
    columns = {c.name: c for c in schema.columns}
    values: dict[str, str] = {}  # inner-projection alias -> expression, filled by _aggregate
    names = [_q(k.name) for k in keys]
    outer = [f"{_aggregate(a, columns, values)} AS {_q(a.column)}" for a in aggregates]
    projected = [f"{k.expression} AS {_q(k.name)}" if k.expression else _q(k.name) for k in keys]
    inner = projected + [f"{e} AS {_q(a)}" for a, e in values.items()]
    cap = schema.needs_cap and schema.privacy_unit is not None
    if cap:  # DuckDB refuses random() in a window's ORDER BY; it is drawn a level below
        inner += [f"{_q(str(schema.privacy_unit))} AS {_q(PREFIX + 'unit')}"]
        inner += [f"random() AS {_q(PREFIX + 'draw')}"]
    rows = f"SELECT {', '.join(inner or ['1 AS ' + _q(PREFIX + 'row')])} "
    rows += f"FROM {_q(schema.dataset)} AS t"
    if cap:  # out-of-domain rows go before the cap, so the k rows kept are ones that count
        rows += _semi_joins("t", keys)
    if where:
        rows += f" WHERE {where}"
    if cap:
        rows = (
            f"SELECT * FROM ({rows}) QUALIFY row_number() OVER (PARTITION BY "
            f"{_q(PREFIX + 'unit')} ORDER BY {_q(PREFIX + 'draw')}) "
            f"<= {schema.max_contributions}"
        )
    sql = f"SELECT {', '.join(names + outer)} FROM ({rows}) AS {_q(PREFIX + 'rows')}"
    if not keys:
        return sql
    sql = f"SELECT a.* FROM ({sql} GROUP BY {', '.join(names)}) AS a"
    # Without a cap, dropping out-of-domain groups after aggregating is the same as
    # dropping their rows before, and free: a row filter on 10M rows doubled the time.
    return sql if cap else sql + _semi_joins("a", keys)


def _aggregate(agg: DPAggregate, columns: dict[str, DPColumn], values: dict[str, str]) -> str:
    if agg.source is None:
        return "COUNT(*)"
    v = _q(_value(columns[agg.source], values))
    if agg.clamp is None:
        return f"COUNT({v})"
    lo, hi = agg.clamp
    clamped = f"CASE WHEN {v} < {lo} THEN {lo} WHEN {v} > {hi} THEN {hi} ELSE {v} END"
    return f"COALESCE(CAST(SUM(CAST({clamped} AS BIGINT)) AS BIGINT), 0)"


def _value(col: DPColumn, values: dict[str, str]) -> str:
    """The inner-projection alias of ``col``: NaN as NULL, and on the grid if numeric."""
    alias = f"{PREFIX}v_{col.name}"
    if alias not in values:
        values[alias] = _q(col.name)
        if numeric_dtype(col.dtype):
            scaled = f"NULLIF(CAST({_q(col.name)} AS DOUBLE), CAST('NaN' AS DOUBLE))"
            if col.bounds is not None:
                scaled = f"ROUND({scaled} * {_literal(2.0 ** grid(col.bounds))})"
            values[alias] = scaled
    return alias


def _semi_joins(table: str, keys: list[DPColumn]) -> str:
    """Keep the rows of ``table`` whose keys are in their declared domains (NULL too)."""
    sql = ""
    for i, key in enumerate(keys):
        values, v = ", ".join(_literal(v) for v in key.categories or ()), _q(PREFIX + "value")
        # A computed key (a date bucket) is computed again on the table's own rows.
        on = key.expression if key.expression and table == "t" else f"{table}.{_q(key.name)}"
        sql += (
            f" SEMI JOIN (SELECT unnest([{values}]) AS {v}) AS d{i} "
            f"ON {on} IS NOT DISTINCT FROM d{i}.{v}"
        )
    return sql


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: Any) -> str:
    from sqlglot import exp

    if isinstance(value, float):  # via text: DuckDB reads '0.1' as exactly Python's 0.1
        return f"CAST('{value!r}' AS DOUBLE)"
    return str(exp.convert(value).sql(dialect="duckdb"))


def grid(bounds: tuple[float, float]) -> int:
    """Binary digits ``p`` of the sum grid: ``max(|lo|, |hi|) * 2**p < 2**31``."""
    exponent = math.frexp(max(abs(bounds[0]), abs(bounds[1])))[1]
    return min(31 - exponent, 52)


# --- the WHERE condition -----------------------------------------------------------------

#: What each kind is read as in SQL; "text" is a string literal typed by where it is used,
#: "null" the NULL literal, "other" a column only IS NULL and TRY_CAST(... AS VARCHAR) see.
_SQL_TYPE = {
    "num": "DOUBLE",
    "str": "VARCHAR",
    "bool": "BOOLEAN",
    "time": "TIMESTAMP",
    "timetz": "TIMESTAMPTZ",
}
_KIND_NAME = {
    "num": "a number",
    "str": "text",
    "bool": "a boolean",
    "time": "a timestamp",
    "timetz": "a time-zone-aware timestamp",
    "text": "a string literal",
    "null": "NULL",
    "other": "a column of an unsupported type",
}
#: TRY_CAST targets: sqlglot's type name -> (DuckDB type, kind).
_TRY_CAST_TARGETS = {
    **{t: (t, "num") for t in ("TINYINT", "SMALLINT", "BIGINT", "FLOAT", "DOUBLE")},
    **{t: (t, "num") for t in ("UTINYINT", "USMALLINT", "UBIGINT")},
    "INT": ("INTEGER", "num"),
    "UINT": ("UINTEGER", "num"),
    "INT128": ("HUGEINT", "num"),
    "DECIMAL": ("DECIMAL", "num"),
    "TEXT": ("VARCHAR", "str"),
    "VARCHAR": ("VARCHAR", "str"),
    "BOOLEAN": ("BOOLEAN", "bool"),
    "DATE": ("DATE", "time"),
    **{t: ("TIMESTAMP", "time") for t in ("TIMESTAMP", "TIMESTAMPNTZ", "DATETIME")},
    "TIMESTAMPTZ": ("TIMESTAMPTZ", "timetz"),
}
#: The kinds TRY_CAST may convert from, per target kind (DuckDB binds no other cast).
_TRY_CAST_FROM = {
    "num": {"num", "str", "text", "bool", "null"},
    "str": {"num", "str", "text", "bool", "time", "timetz", "other", "null"},
    "bool": {"num", "str", "text", "bool", "null"},
    "time": {"str", "text", "time", "timetz", "null"},
    "timetz": {"str", "text", "time", "timetz", "null"},
}
_COMPARISONS = {"EQ": "=", "NEQ": "<>", "LT": "<", "LTE": "<=", "GT": ">", "GTE": ">="}
_ARITHMETIC = {"Add": "+", "Sub": "-", "Mul": "*", "Div": "/"}
_TEXT_FUNCTIONS = {"Lower": "lower", "Upper": "upper"}
_TRIMS = {None: "trim", "BOTH": "trim", "LEADING": "ltrim", "TRAILING": "rtrim"}
#: The arguments each admitted node may have (sqlglot sets flags such as ``safe`` itself).
_ARGS: dict[str, set[str]] = {
    "Column": {"this", "table"},
    "Literal": {"this", "is_string"},
    "Boolean": {"this"},
    "Null": set(),
    "Paren": {"this"},
    "Not": {"this"},
    "And": {"this", "expression"},
    "Or": {"this", "expression"},
    "Neg": {"this"},
    "Abs": {"this"},
    "Lower": {"this"},
    "Upper": {"this"},
    "Length": {"this"},
    "Trim": {"this", "position"},
    "Between": {"this", "low", "high"},
    "In": {"this", "expressions"},
    "Is": {"this", "expression", "negate"},
    "Like": {"this", "expression", "negate"},
    "ILike": {"this", "expression", "negate"},
    "Escape": {"this", "expression"},
    "Case": {"this", "ifs", "default"},
    "If": {"this", "true"},
    "Coalesce": {"this", "expressions", "is_nvl", "is_null"},
    "TryCast": {"this", "to", "safe", "requires_string"},
    **{name: {"this", "expression"} for name in _COMPARISONS},
    **{name: {"this", "expression"} for name in ("Add", "Sub", "Mul")},
    "Div": {"this", "expression", "safe"},
}
# An ISO date, optionally with a time and (for time-zone-aware columns) an offset
_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?"
    r"(Z|[+-]\d{2}:\d{2})?"
)
# TIMESTAMP_NS columns hold 1677-09-21 .. 2262-04-11; literals stay inside, so DuckDB never
# converts one that does not fit, whatever the column's unit
_YEARS = (1678, 2261)


@dataclass(frozen=True)
class _Value:
    """A rendered sub-expression and its kind; a string literal keeps its text (``sql`` is
    then empty) until where it is used says what it is."""

    sql: str
    kind: str
    text: str = ""


def where_sql(node: exp.Expression, column: Callable[[exp.Column], DPColumn]) -> str:
    """The SQL of the WHERE condition ``node``; ``InvalidInput`` says what is refused.

    ``column`` resolves a column reference to its schema column (or raises). The SQL reads
    the table as ``t`` and cannot raise on any data (see the module docstring).

    Examples
    --------
    >>> import sqlglot
    >>> cols = {"age": DPColumn("age", "int64"), "ward": DPColumn("ward", "object")}
    >>> where = sqlglot.parse_one("age > 50 OR ward = 'a'", read="duckdb")
    >>> print(where_sql(where, lambda c: cols[c.name]).replace("TRY_CAST", "TC"))
    ((TC(t."age" AS DOUBLE) > CAST('50.0' AS DOUBLE)) OR (TC(t."ward" AS VARCHAR) = 'a'))
    """
    nodes, depth, level = 0, 0, [node]
    while level:  # breadth first: a deep tree is measured without recursing into it
        nodes, depth = nodes + len(level), depth + 1
        if nodes > MAX_WHERE_NODES or depth > MAX_WHERE_DEPTH:
            raise InvalidInput(
                f"a WHERE condition of more than {MAX_WHERE_NODES} parts, or nested more "
                f"than {MAX_WHERE_DEPTH} deep"
            )
        level = [child for n in level for child in n.iter_expressions()]
    value = _Where(column).value(node)
    if value.kind not in {"bool", "null"}:
        raise InvalidInput(
            f"the WHERE condition {_shown(node)} is {_KIND_NAME[value.kind]}, not true/false"
        )
    return value.sql


class _Where:
    """The type checker and renderer of one WHERE condition (one use: it counts patterns)."""

    def __init__(self, column: Callable[[exp.Column], DPColumn]) -> None:
        self.column = column
        self.pattern_chars = 0

    def value(self, node: exp.Expression) -> _Value:
        name = type(node).__name__
        if name == "Cast":
            raise InvalidInput(
                f"{_shown(node)} in WHERE: CAST and :: fail on values that do not convert; "
                "use TRY_CAST(x AS type), which gives NULL (and write a date as a string, "
                "e.g. day >= '2024-01-31')"
            )
        if name not in _ARGS or name == "If":
            from sqlglot import exp

            if isinstance(node, exp.Func):
                function = node.name if isinstance(node, exp.Anonymous) else node.sql_name()
                raise InvalidInput(f"the function {function.lower()}() in WHERE")
            raise InvalidInput(f"{_shown(node)} ({name}) in WHERE")
        extra = sorted(a for a, v in node.args.items() if v not in (None, False, []))
        extra = [a for a in extra if a not in _ARGS[name]]
        if extra:
            raise InvalidInput(f"{_shown(node)} in WHERE (with {', '.join(extra)})")
        if name in _COMPARISONS:
            (a, b), _ = self._same([node.this, node.expression], node)
            return _Value(f"({a} {_COMPARISONS[name]} {b})", "bool")
        if name in _ARITHMETIC:
            a, b = (self._typed(n, "num", _ARITHMETIC[name]) for n in node.iter_expressions())
            if name == "Div":  # NULL for x / 0, as DuckDB gives for integers
                return _Value(f"({a} / NULLIF({b}, {_literal(0.0)}))", "num")
            return _Value(f"({a} {_ARITHMETIC[name]} {b})", "num")
        if name in _TEXT_FUNCTIONS:
            function = _TEXT_FUNCTIONS[name]
            return _Value(f"{function}({self._typed(node.this, 'str', function)})", "str")
        result: _Value = getattr(self, "_on_" + name.lower())(node)
        return result

    # leaves

    def _on_column(self, node: exp.Column) -> _Value:
        col = self.column(node)
        kind, ref = where_kind(col), f"t.{_q(col.name)}"
        return _Value(ref if kind == "other" else f"TRY_CAST({ref} AS {_SQL_TYPE[kind]})", kind)

    def _on_literal(self, node: exp.Literal) -> _Value:
        if node.is_string:
            return _Value("", "text", str(node.this))
        try:
            number = float(str(node.this))
        except ValueError:
            raise InvalidInput(f"the number {_shown(node)} in WHERE") from None
        return _Value(_literal(number), "num")

    def _on_boolean(self, node: exp.Boolean) -> _Value:
        return _Value("TRUE" if node.this else "FALSE", "bool")

    def _on_null(self, node: exp.Null) -> _Value:
        return _Value("NULL", "null")

    # logic

    def _on_paren(self, node: exp.Paren) -> _Value:
        inner = self.value(node.this)
        return inner if inner.kind == "text" else _Value(f"({inner.sql})", inner.kind)

    def _on_and(self, node: exp.And) -> _Value:
        a, b = (self._typed(n, "bool", "AND") for n in node.iter_expressions())
        return _Value(f"({a} AND {b})", "bool")

    def _on_or(self, node: exp.Or) -> _Value:
        a, b = (self._typed(n, "bool", "OR") for n in node.iter_expressions())
        return _Value(f"({a} OR {b})", "bool")

    def _on_not(self, node: exp.Not) -> _Value:
        return _Value(f"(NOT {self._typed(node.this, 'bool', 'NOT')})", "bool")

    def _on_is(self, node: exp.Is) -> _Value:
        from sqlglot import exp

        negate = " NOT" if node.args.get("negate") else ""
        target = node.expression
        if isinstance(target, exp.Null):
            value = self.value(node.this)
            sql = _literal(value.text) if value.kind == "text" else value.sql
            return _Value(f"({sql} IS{negate} NULL)", "bool")
        if not isinstance(target, exp.Boolean):
            raise InvalidInput(f"{_shown(node)} in WHERE: IS takes NULL, TRUE or FALSE")
        x = self._typed(node.this, "bool", "IS TRUE/FALSE")
        return _Value(f"({x} IS{negate} {'TRUE' if target.this else 'FALSE'})", "bool")

    def _on_between(self, node: exp.Between) -> _Value:
        (x, lo, hi), _ = self._same([node.this, node.args["low"], node.args["high"]], node)
        return _Value(f"({x} BETWEEN {lo} AND {hi})", "bool")

    def _on_in(self, node: exp.In) -> _Value:
        from sqlglot import exp

        items = list(node.expressions)
        for item in items:
            bare = item.this if isinstance(item, exp.Neg) else item
            literal = isinstance(bare, exp.Literal) and not (
                isinstance(item, exp.Neg) and bare.is_string
            )
            if not (literal or (item is bare and isinstance(item, exp.Boolean | exp.Null))):
                raise InvalidInput(f"{_shown(item)} in an IN list: IN takes literals")
        if not items:
            raise InvalidInput(f"{_shown(node)}: IN takes a list of literals")
        (x, *values), _ = self._same([node.this, *items], node)
        return _Value(f"({x} IN ({', '.join(values)}))", "bool")

    def _on_like(self, node: exp.Like) -> _Value:
        return self._pattern(node, "LIKE")

    def _on_ilike(self, node: exp.ILike) -> _Value:
        return self._pattern(node, "ILIKE")

    def _pattern(self, node: exp.Expression, op: str) -> _Value:
        from sqlglot import exp

        pattern = node.expression
        if not (isinstance(pattern, exp.Literal) and pattern.is_string):
            raise InvalidInput(f"{_shown(node)}: {op} takes a string literal as its pattern")
        self.pattern_chars += len(str(pattern.this))
        if self.pattern_chars > MAX_PATTERN_CHARS:
            raise InvalidInput(f"LIKE patterns of more than {MAX_PATTERN_CHARS} characters in all")
        x = self._typed(node.this, "str", op)
        negate = "NOT " if node.args.get("negate") else ""
        return _Value(f"({x} {negate}{op} {_literal(str(pattern.this))})", "bool")

    def _on_escape(self, node: exp.Expression) -> _Value:
        raise InvalidInput(
            f"{_shown(node)}: LIKE ... ESCAPE (DuckDB fails at run time on a pattern ending "
            "in the escape character); without ESCAPE, LIKE has no escape character"
        )

    def _on_case(self, node: exp.Case) -> _Value:
        branches = list(node.args.get("ifs") or [])
        for branch in branches:
            extra = [a for a, v in branch.args.items() if v and a not in _ARGS["If"]]
            if type(branch).__name__ != "If" or extra:
                raise InvalidInput(f"{_shown(node)} in WHERE")
        default = node.args.get("default")
        results, kind = self._same(
            [b.args["true"] for b in branches] + [default] * bool(default), node
        )
        operand = node.args.get("this")
        if operand is not None:  # CASE x WHEN v THEN ...: x and the v's are compared
            (head, *whens), _ = self._same([operand, *(b.this for b in branches)], node)
            head = f"CASE {head}"
        else:
            head, whens = "CASE", [self._typed(b.this, "bool", "CASE WHEN") for b in branches]
        parts = [f"WHEN {w} THEN {r}" for w, r in zip(whens, results, strict=False)]
        tail = f" ELSE {results[-1]}" if default else ""
        return _Value(f"({head} {' '.join(parts)}{tail} END)", kind)

    def _on_coalesce(self, node: exp.Coalesce) -> _Value:
        rendered, kind = self._same([node.this, *node.expressions], node)
        return _Value(f"COALESCE({', '.join(rendered)})", kind)

    # numbers and text

    def _on_neg(self, node: exp.Neg) -> _Value:
        return _Value(f"(-{self._typed(node.this, 'num', 'unary minus')})", "num")

    def _on_abs(self, node: exp.Abs) -> _Value:
        return _Value(f"abs({self._typed(node.this, 'num', 'abs')})", "num")

    def _on_length(self, node: exp.Length) -> _Value:
        return _Value(f"CAST(length({self._typed(node.this, 'str', 'length')}) AS DOUBLE)", "num")

    def _on_trim(self, node: exp.Trim) -> _Value:
        position = node.args.get("position")
        function = _TRIMS.get(str(position).upper() if position else None)
        if function is None:
            raise InvalidInput(f"{_shown(node)}: trim, ltrim and rtrim take one argument")
        return _Value(f"{function}({self._typed(node.this, 'str', function)})", "str")

    def _on_trycast(self, node: exp.TryCast) -> _Value:
        to = node.args["to"]
        name = to.this.name if hasattr(to.this, "name") else ""
        target = _TRY_CAST_TARGETS.get(name)
        if target is None or (to.expressions and name != "DECIMAL"):
            allowed = ", ".join(sorted({t for t, _ in _TRY_CAST_TARGETS.values()}))
            raise InvalidInput(f"TRY_CAST to {_shown(to)} in WHERE (it may convert to {allowed})")
        sql_type, kind = target
        if name == "DECIMAL":
            sql_type = _decimal(to)
        value = self.value(node.this)
        if value.kind not in _TRY_CAST_FROM[kind]:
            raise InvalidInput(
                f"{_shown(node)} in WHERE: {_KIND_NAME[value.kind]} does not convert to "
                f"{_shown(to)}"
            )
        sql = (
            f"TRY_CAST({_literal(value.text) if value.kind == 'text' else value.sql} AS {sql_type})"
        )
        if sql_type != _SQL_TYPE[kind]:  # then to the one type of its kind (DATE -> TIMESTAMP)
            sql = f"TRY_CAST({sql} AS {_SQL_TYPE[kind]})"
        return _Value(sql, kind)

    # typing

    def _typed(self, node: exp.Expression, kind: str, where: str) -> str:
        """``node`` rendered, if it is of ``kind`` or NULL (a string literal, as text)."""
        value = self.value(node)
        if value.kind == "text" and kind == "str":
            return _literal(value.text)
        if value.kind not in {kind, "null"}:
            raise InvalidInput(
                f"{_shown(node)} in WHERE is {_KIND_NAME[value.kind]}, where {where} takes "
                f"{_KIND_NAME[kind]}"
            )
        return value.sql

    def _same(self, nodes: list[exp.Expression], parent: exp.Expression) -> tuple[list[str], str]:
        """``nodes`` (parts of ``parent``) rendered, all of one kind (string literals take
        it), and that kind."""
        values = [self.value(n) for n in nodes]
        kinds = {v.kind for v in values} - {"null", "text"}
        shown = _shown(parent)
        if "other" in kinds:
            raise InvalidInput(
                f"{shown} in WHERE: a column of an unsupported type may only be tested with "
                "IS [NOT] NULL or read with TRY_CAST(... AS VARCHAR)"
            )
        if len(kinds) > 1:
            mixed = " and ".join(sorted(_KIND_NAME[k] for k in kinds))
            raise InvalidInput(
                f"{shown} in WHERE mixes {mixed}: DuckDB would convert one to the other for "
                "every row and fail on a value that does not convert; compare like with "
                "like, or TRY_CAST one side"
            )
        kind = kinds.pop() if kinds else "str" if any(v.kind == "text" for v in values) else "null"
        return [_as(v, kind) for v in values], kind


def _shown(node: exp.Expression) -> str:
    return repr(node.sql(dialect="duckdb"))


def _as(value: _Value, kind: str) -> str:
    """``value`` rendered as ``kind``: only string literals change (they take the kind)."""
    if value.kind != "text":
        return value.sql
    if kind in {"time", "timetz"}:
        return _timestamp(value.text, tz=kind == "timetz")
    if kind == "str":
        return _literal(value.text)
    advice = "write numbers without quotes" if kind == "num" else "write TRUE or FALSE"
    raise InvalidInput(f"the string {value.text!r} compared with {_KIND_NAME[kind]}: {advice}")


def _timestamp(text: str, *, tz: bool) -> str:
    """An ISO date(-time) string as a TIMESTAMP[TZ] literal that DuckDB cannot fail to read."""
    match = _ISO.fullmatch(text.strip())
    if match is None or (match.group(8) and not tz):
        raise InvalidInput(
            f"the date {text!r} in WHERE: write an ISO date such as '2024-01-31' or "
            "'2024-01-31 13:45:00'"
            + (" (with an offset such as +02:00 only for a time-zone-aware column)" if tz else "")
        )
    fields = [int(g) if g else 0 for g in match.groups()[:6]]
    try:
        year, month, day, hour, minute, second = fields
        micro = int((match.group(7) or "0").ljust(6, "0"))
        when = datetime(year, month, day, hour, minute, second, micro)
        offset = match.group(8) or "Z"
        if offset != "Z":
            sign = -1 if offset[0] == "-" else 1
            zone = timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6])))
            when = when.replace(tzinfo=zone).astimezone(UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):
        when = None
    if when is None or not _YEARS[0] <= when.year <= _YEARS[1]:
        raise InvalidInput(
            f"the date {text!r} in WHERE: it must be a valid date in {_YEARS[0]}..{_YEARS[1]}"
        )
    if tz:  # read as UTC unless it gives an offset
        return f"CAST('{when.isoformat(sep=' ')}+00' AS TIMESTAMPTZ)"
    return f"CAST('{when.isoformat(sep=' ')}' AS TIMESTAMP)"


def _decimal(to: exp.DataType) -> str:
    """``DECIMAL(width, scale)`` from sqlglot's parameters, checked."""
    try:
        values = [int(str(p.this.this)) for p in to.expressions]
    except (AttributeError, ValueError):
        values = []
    width, scale = [*values, 0][:2] if len(values) in {1, 2} else (0, 0)
    if not (1 <= width <= 38 and 0 <= scale <= width):
        raise InvalidInput(f"TRY_CAST to {_shown(to)} in WHERE")
    return f"DECIMAL({width}, {scale})"
