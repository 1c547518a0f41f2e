"""Statistical disclosure control for SQL results, by rewriting the query (ACRO's rules).

``plan_cell_stats`` rewrites a checked query so that the same DuckDB run also returns, per
output row, the records behind each aggregate and the largest contributions to each sum or
average, as ``__rds_…`` columns after the query's own; ``check_table`` splits them off, judges
every cell and returns the table to release with a ``CheckReport``. The top-level ``SELECT``
decides how a query is judged:

- **aggregate** (an aggregate outside a window function, or ``GROUP BY``): each cell by the
  aggregates in its expression, keeping their ``FILTER`` and ``DISTINCT`` (``count(*) FILTER
  (WHERE name = 'Alice')`` is judged by its own count); a window's own function (the ``sum``
  of ``sum(count(*)) OVER ()``) is skipped, the aggregates inside it are the group's.
  ``threshold``: fewer than ``min_cell_count`` records. ``dominance``: the N largest absolute
  contributions exceed k of the sum of absolute values. ``p_ratio``: what the others add up to
  is less than p of the largest. ``zeros``: a count of 0, or a sum/average whose every
  contribution is 0 (one that cancels out is not). Dominance and p-ratio pass an all-zero
  cell, which the zeros rule judges. ``extreme_values``: MIN, MAX, MEDIAN, LIST, ….
- **record** (no aggregate; also ``SELECT DISTINCT``): every column the query mentions
  anywhere (``WHERE``, joins, ``ORDER BY``, ``*``) must be marked non-sensitive.
- **unsupported** (top-level set operations, ``DISTINCT`` with aggregates, ``*`` or a
  subquery among an aggregate query's outputs, the reserved prefix): the owner reviews it.

``on_fail="suppress"`` nulls failing cells. Unlike ACRO, a row whose whole group is below
``min_cell_count`` is removed, keys and all: an SQL group exists only if a record has its key
(a name, or an expression isolating one person), whereas ACRO's crosstabs show and suppress
empty cells too. The index is renumbered so no gap shows where a removed row sorted.

Not caught: differences between cells or queries (``count(*) - count(*) FILTER (WHERE name
<> 'Alice')``), totals that give away suppressed cells, and people with many rows (records
are rows, so one person in a join counts many times).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rds.errors import InvalidInput
from rds.privacy.report import Check, CheckReport

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from sqlglot import exp

PREFIX = "__rds_"
_COUNTS = {"count", "count_star", "count_if", "countif", "approx_count_distinct", "regr_count"}
_ADDITIVE = {"sum", "avg", "mean", "fsum", "favg", "sumkahan", "kahan_sum", "sum_no_overflow"}
_ADDITIVE |= {"decimal_average"}
_STATISTICS = {"corr", "covar_pop", "covar_samp", "entropy", "kurtosis", "kurtosis_pop", "sem"}
_STATISTICS |= {"product", "skewness", "stddev", "stddev_pop", "stddev_samp", "variance"}
_STATISTICS |= {"var_pop", "var_samp", "regr_avgx", "regr_avgy", "regr_intercept", "regr_r2"}
_STATISTICS |= {"regr_slope", "regr_sxx", "regr_sxy", "regr_syy"}
_LIMIT = 1000  # failing cells listed in a check's numbers


@dataclass(frozen=True, kw_only=True)
class SDCRules:
    """Disclosure-control thresholds; the defaults are ACRO's.

    Examples
    --------
    >>> SDCRules(min_cell_count=5).dominance
    (2, 0.9)
    """

    min_cell_count: int = 10
    dominance: tuple[int, float] = (2, 0.9)
    p_ratio: float = 0.1
    zeros_fail: bool = True

    def __post_init__(self) -> None:
        count, dominance, p = self.min_cell_count, self.dominance, self.p_ratio
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise InvalidInput(f"min_cell_count must be an integer ≥ 1; got {count!r}.")
        try:
            n, k = int(dominance[0]), float(dominance[1])
        except (TypeError, ValueError, IndexError):
            raise InvalidInput(f"dominance is (N, k), e.g. (2, 0.9); got {dominance!r}.") from None
        if len(dominance) != 2 or n < 1 or not 0 < k <= 1:
            raise InvalidInput(f"dominance needs N ≥ 1 and 0 < k ≤ 1; got {dominance!r}.")
        if not isinstance(p, (int, float)) or not 0 <= p < 1:
            raise InvalidInput(f"p_ratio must lie in [0, 1); got {p!r}.")
        if not isinstance(self.zeros_fail, bool):
            raise InvalidInput(f"zeros_fail must be True or False; got {self.zeros_fail!r}.")
        object.__setattr__(self, "dominance", (n, k))
        object.__setattr__(self, "p_ratio", float(p))


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


def check_table(
    plan: CellStatsPlan, result: pd.DataFrame, rules: SDCRules, *, on_fail: str = "block"
) -> tuple[pd.DataFrame, CheckReport]:
    """Judge the result of ``plan.sql``; return the table to release and the report.

    Parameters
    ----------
    plan
        From ``plan_cell_stats``.
    result
        What ``plan.sql`` returned (the query's columns, then ``plan.stat_columns``).
    rules
        The thresholds.
    on_fail
        ``"block"``: the table is returned as it is and failing rules fail. ``"suppress"``:
        failing cells become null (rows of too-small groups are removed) and those rules
        warn. Record-level, extreme-value and shape failures fail in both modes.

    Examples
    --------
    >>> plan = plan_cell_stats("SELECT ward, count(*) AS n FROM patients GROUP BY ward")
    >>> table, report = check_table(plan, con.sql(plan.sql).df(), SDCRules(), on_fail="suppress")
    >>> report.verdict  # a ward of fewer than 10 patients was removed
    'warn'
    """
    import pandas as pd

    if on_fail not in ("block", "suppress"):
        raise InvalidInput(f"on_fail must be 'block' or 'suppress', not {on_fail!r}.")
    if not isinstance(result, pd.DataFrame):
        raise InvalidInput(f"The result must be a DataFrame, not {type(result).__name__}.")
    if plan.shape == "unsupported":
        text = f"The query {plan.reason}; it could not be checked automatically, so the owner "
        return result, CheckReport((Check("shape", "fail", text + "must review it."),))
    shape = Check("shape", "pass", f"The query {plan.reason}.", {"rows": len(result)})
    if plan.shape == "record":
        sensitive = list(plan.sensitive_columns)
        numbers = {"sensitive_columns": sensitive, "rows": len(result)}
        text = f"Records leave with columns not marked non-sensitive ({', '.join(sensitive)})."
        if not sensitive:
            text = "Every column the query uses is marked non-sensitive."
        verdict = "fail" if sensitive else "pass"
        return result, CheckReport((shape, Check("record_level", verdict, text, numbers)))
    if rules.dominance[0] > plan.top_n:
        raise InvalidInput(f"Plan with top_n ≥ {rules.dominance[0]} for this dominance rule.")
    width = len(plan.output_columns)
    if list(result.columns[width:]) != list(plan.stat_columns):
        raise InvalidInput("The result does not come from plan.sql: its extra columns differ.")
    judged = _Judged(plan, result.iloc[:, width:], rules)
    table = result.iloc[:, :width].copy()
    suppress = on_fail == "suppress"
    if suppress:
        table = judged.suppress(table)
    return table, CheckReport((shape, *judged.checks(suppress)))


class _Judged:
    """Which cells of an aggregate result fail which rule, and the owner's figures for them."""

    RULES = ("threshold", "dominance", "p_ratio", "zeros")

    def __init__(self, plan: CellStatsPlan, stats: pd.DataFrame, rules: SDCRules) -> None:
        import numpy as np

        self.plan, self.rules = plan, rules
        self.cells = sorted({p for a in plan.aggregates if a.kind != "extreme" for p in a.columns})
        shape = (len(stats), len(self.cells))
        self.fails = {rule: np.zeros(shape, dtype=bool) for rule in self.RULES}
        # Per cell, the worst figure over its aggregates: fewest records, largest top-N
        # share, smallest remainder-to-largest ratio.
        self.figures = {r: np.full(shape, v) for r, v in _WORST.items()}
        n_top, k = rules.dominance
        for a in plan.aggregates:
            if a.kind == "extreme":
                continue
            n = _numbers(stats[a.count])
            found = {"threshold": (n < rules.min_cell_count, n)}
            if a.kind == "count":
                found["zeros"] = (n == 0, n)
            if a.kind == "additive":
                total, top = _numbers(stats[a.total]), _top(stats[a.top], plan.top_n)
                share = top[:, :n_top].sum(axis=1) / np.where(total > 0, total, 1.0)
                largest = np.where(top[:, 0] > 0, top[:, 0], np.nan)
                ratio = np.nan_to_num((total - top[:, :2].sum(axis=1)) / largest, nan=np.inf)
                # The slack keeps float rounding from failing a rule set to k = 1 or p = 0.
                found["dominance"] = ((total > 0) & (share > k + 1e-9), share)
                found["p_ratio"] = ((total > 0) & (ratio < rules.p_ratio - 1e-9), ratio)
                found["zeros"] = (total == 0, total)
            for j in (self.cells.index(p) for p in a.columns):
                for rule, (mask, figure) in found.items():
                    self.fails[rule][:, j] |= mask
                    if rule in _WORST:
                        worse = np.minimum if _WORST[rule] == math.inf else np.maximum
                        self.figures[rule][:, j] = worse(self.figures[rule][:, j], figure)
        self.fails["zeros"] &= rules.zeros_fail
        self.group = _numbers(stats[plan.group_count])
        self.small = self.group < rules.min_cell_count
        self.removed = self.small & plan.grouped

    def suppress(self, table: pd.DataFrame) -> pd.DataFrame:
        import numpy as np
        import pandas as pd

        bad = np.logical_or.reduce([self.fails[r] for r in self.RULES])
        for j, position in enumerate(self.cells):
            if bad[:, j].any():
                column = table.iloc[:, position]
                if pd.api.types.is_bool_dtype(column):
                    column = column.astype("boolean")
                elif pd.api.types.is_integer_dtype(column):
                    column = column.astype("Int64")  # a null, not a float that looks changed
                table.isetitem(position, column.mask(bad[:, j]))
        return table.loc[~self.removed].reset_index(drop=True)

    def checks(self, suppress: bool) -> list[Check]:
        import numpy as np

        rows, names, rules = len(self.group), self.plan.output_columns, self.rules
        total, (n_top, k) = rows * len(self.cells), rules.dominance
        what = {
            "threshold": f"fewer than {rules.min_cell_count} records",
            "dominance": f"{n_top} contributions making up more than {k:.0%} of its total",
            "p_ratio": f"contributions besides its two largest adding up to less than "
            f"{rules.p_ratio:.0%} of the largest",
            "zeros": "the value zero (no record, or only zeros, contributed)",
        }
        out = []
        for rule in self.RULES:
            mask = self.fails[rule] & ~(self.removed & suppress)[:, None]
            every = self.fails[rule]  # the owner's figures include removed rows
            cells = [[int(r), names[self.cells[j]]] for r, j in np.argwhere(every)[:_LIMIT]]
            if rule in self.figures:
                figures = self.figures[rule][every]
                cells = [[*c, float(f)] for c, f in zip(cells, figures, strict=False)]
            numbers: dict[str, Any] = {"failing": int(mask.sum()), "cells": cells}
            parts, handled = [], suppress
            if mask.any():
                done = " (suppressed)" if suppress else ""
                parts.append(f"{_of(int(mask.sum()), total, 'cell')} {what[rule]}{done}")
            if rule == "threshold" and self.small.any() and (self.plan.grouped or not self.cells):
                numbers["small_groups"] = np.flatnonzero(self.small)[:_LIMIT].tolist()
                numbers["smallest_group"] = int(self.group.min())
                handled = suppress and self.plan.grouped  # else there is nothing to remove
                done = " (removed)" if handled else ""
                parts.append(
                    f"{_of(int(self.small.sum()), rows, 'row', 'come')} from groups of fewer "
                    f"than {rules.min_cell_count} records{done}"
                )
            if parts:
                text, verdict = "; ".join(parts) + ".", "warn" if handled else "fail"
            elif rule == "zeros" and not rules.zeros_fail:
                text, verdict = "Zeros are allowed by the rules.", "pass"
            else:
                none = f"No cell has {what[rule]}." if total else "There are no cells to check."
                text, verdict = none, "pass"
            out.append(Check(rule, verdict, text, numbers))
        extreme = [a for a in self.plan.aggregates if a.kind == "extreme"]
        functions = sorted({a.function.upper() for a in extreme})
        shown = ", ".join(sorted({names[p] for a in extreme for p in a.columns}))
        if extreme:
            verb = "shows" if len(functions) == 1 else "show"
            text = f"{', '.join(functions)} in {shown} {verb} individual records' values."
            out.append(Check("extreme_values", "fail", text, {"functions": functions}))
        else:
            text = "No column returns a single record's value (MIN, MAX, MEDIAN, LIST, ...)."
            out.append(Check("extreme_values", "pass", text))
        return out


_WORST = {"threshold": math.inf, "dominance": 0.0, "p_ratio": math.inf}


def _of(k: int, total: int, noun: str, verb: str = "have") -> str:
    """``2 of 12 cells have``, ``1 of 12 cells has``."""
    single = {"have": "has", "come": "comes"}[verb]
    return f"{k} of {total} {noun}{'' if total == 1 else 's'} {single if k == 1 else verb}"


def _numbers(column: pd.Series) -> np.ndarray:
    import pandas as pd

    return pd.to_numeric(column, errors="coerce").fillna(0).to_numpy(dtype=float)


def _top(column: pd.Series, n: int) -> np.ndarray:
    """The lists of largest contributions as a (rows, n) array, padded with zeros."""
    import numpy as np

    out = np.zeros((len(column), n))
    for i, values in enumerate(column):  # one per output row, and the rows are groups
        if values is not None and hasattr(values, "__len__"):
            got = np.sort(np.nan_to_num(np.asarray(values, dtype=float)))[::-1][:n]
            out[i, : len(got)] = got
    return out


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
