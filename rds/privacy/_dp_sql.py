"""Differentially private SQL: the query the sandbox runs on the private table.

:func:`private_sql` turns an accepted DP query (see :mod:`rds.privacy.dp_plan`) into SQL
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
"""

# ruff: noqa: S608  (SQL is built from text: identifiers go through _q, values through
# _literal, and the WHERE text is sqlglot's rendering of a checked tree)
from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from rds.privacy.dp_types import DPAggregate, DPColumn, DPSchema, numeric_dtype

PREFIX = "__rds_"


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
    inner = names + [f"{e} AS {_q(a)}" for a, e in values.items()]
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
        sql += (
            f" SEMI JOIN (SELECT unnest([{values}]) AS {v}) AS d{i} "
            f"ON {table}.{_q(key.name)} IS NOT DISTINCT FROM d{i}.{v}"
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
