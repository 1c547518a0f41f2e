"""Statistical disclosure control for SQL results: ACRO's rules, judged cell by cell.

``rds.checks.sdc_plan.plan_cell_stats`` rewrites a query so its run also returns each
cell's statistics; ``check_table`` splits them off, judges every cell and returns the table
to release with a ``CheckReport``. How a query is judged depends on the plan's shape:

- **aggregate** (over one dataset): each cell by the aggregates in its expression, counting
  **people** — distinct privacy units; rows only for a dataset that declares none.
  ``threshold``: fewer than ``min_cell_count`` people. ``dominance``: the N largest
  per-person totals (absolute values) make up k or more of the cell's total. ``p_ratio``:
  what the others add up to is less than p of the largest person's total. A cell whose
  values are all ≤ 0 is judged by their sizes; one with both negative and positive values
  fails both rules, as ACRO asks for a review of it: the others can cancel out, so the
  largest can be worked out from the total whatever its share. ``zeros``: a count of 0, a
  sum/average whose every contribution is 0 (one that cancels out is not), or a combination
  of the ``GROUP BY`` keys that does not occur — judged over the full cross product of the
  keys' values, as ACRO does (declared categories for a plain declared column that the WHERE
  leaves alone, else the values the result shows): in a count by ``a, b`` where every
  ``b`` is ``p`` for one ``a``, the missing rows are the disclosure. Dominance and p-ratio
  pass an all-zero cell, which the zeros rule judges. ``extreme_values``: MIN, MAX, MEDIAN,
  LIST, ….
- **record**: every column the query uses must be marked non-sensitive.
- **unsupported**: the owner reviews it.

``on_fail="suppress"`` nulls failing cells. Unlike ACRO, a row whose whole group is below
``min_cell_count`` is removed, keys and all: an SQL group exists only if a record has its key
(a name, or an expression isolating one person), whereas ACRO's crosstabs show and suppress
empty cells too. The index is renumbered so no gap shows where a removed row sorted.

Not caught: differences between cells or queries (``count(*) - count(*) FILTER (WHERE name
<> 'Alice')``, or two requests that differ by one person), and totals that give away
suppressed cells. That is why no exact result is released without the owner: these checks
inform the owner's review, they do not replace it. Missing combinations cannot be
suppressed (they have no row), so they fail under ``on_fail="suppress"`` too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rds.checks.report import Check, CheckReport

# The query rewriting lives in sdc_plan; its names stay importable from here, where callers
# have always found them next to check_table.
from rds.checks.sdc_plan import PREFIX, AggregateStat, CellStatsPlan, plan_cell_stats
from rds.errors import InvalidInput

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = [
    "PREFIX",
    "AggregateStat",
    "CellStatsPlan",
    "SDCRules",
    "check_table",
    "plan_cell_stats",
]

_LIMIT = 1000  # failing cells listed in a check's numbers
_MAX_COMBINATIONS = 1_000_000  # cross products judged for missing combinations


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
        self.mixed = np.zeros(shape, dtype=bool)  # both negative and positive values
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
                # ACRO's k or more; the slacks keep float rounding from missing a share of
                # exactly k, or failing a rule set to p = 0.
                mixed = _numbers(stats[a.mixed]) > 0 if a.mixed else np.zeros(len(stats), bool)
                dominated = (total > 0) & (share >= k - 1e-9)
                exposed = (total > 0) & (ratio < rules.p_ratio - 1e-9)
                found["dominance"] = (dominated | mixed, share)
                found["p_ratio"] = (exposed | mixed, ratio)
                found["zeros"] = (total == 0, total)
            else:
                mixed = np.zeros(len(stats), dtype=bool)
            for j in (self.cells.index(p) for p in a.columns):
                self.mixed[:, j] |= mixed
                for rule, (mask, figure) in found.items():
                    self.fails[rule][:, j] |= mask
                    if rule in _WORST:
                        worse = np.minimum if _WORST[rule] == math.inf else np.maximum
                        self.figures[rule][:, j] = worse(self.figures[rule][:, j], figure)
        self.fails["zeros"] &= rules.zeros_fail
        self.combinations, self.missing = _missing(plan, stats) if rules.zeros_fail else (0, [])
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
        who = self.plan.counted
        one = "person's" if who == "people" else "record's"
        what = {
            "threshold": f"fewer than {rules.min_cell_count} {who}",
            "dominance": f"{n_top} {who} making up {k:.0%} or more of its total",
            "p_ratio": f"contributions besides its two largest {who} adding up to less than "
            f"{rules.p_ratio:.0%} of the largest {one}",
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
                signed = rule in ("dominance", "p_ratio")
                signs = mask & self.mixed if signed else np.zeros_like(mask)
                if (mask & ~signs).any():
                    plain = int((mask & ~signs).sum())
                    parts.append(f"{_of(plain, total, 'cell')} {what[rule]}{done}")
                if signs.any():
                    parts.append(
                        f"{_of(int(signs.sum()), total, 'cell')} both negative and positive "
                        f"values, which can cancel out (for review, as in ACRO){done}"
                    )
            if rule == "threshold" and self.small.any() and (self.plan.grouped or not self.cells):
                numbers["small_groups"] = np.flatnonzero(self.small)[:_LIMIT].tolist()
                numbers["smallest_group"] = int(self.group.min())
                handled = suppress and self.plan.grouped  # else there is nothing to remove
                done = " (removed)" if handled else ""
                parts.append(
                    f"{_of(int(self.small.sum()), rows, 'row', 'come')} from groups of fewer "
                    f"than {rules.min_cell_count} {who}{done}"
                )
            if rule == "zeros" and self.missing:
                keys = ", ".join(self.plan.key_names)
                numbers["missing_combinations"] = [list(m) for m in self.missing[:_LIMIT]]
                numbers["failing"] += len(self.missing)
                handled = False  # a combination that does not occur has no row to blank
                m, n = len(self.missing), self.combinations
                parts.append(
                    f"{m} of {n} combinations of {keys} have no row (zero cells: the rows "
                    "that are there tell who has which value, a class disclosure)"
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
    if noun == "combination":
        return (
            f"{k} of {total} combination{'' if total == 1 else 's'} {'has' if k == 1 else 'have'}"
        )
    return f"{k} of {total} {noun}{'' if total == 1 else 's'} {single if k == 1 else verb}"


def _missing(plan: CellStatsPlan, stats: pd.DataFrame) -> tuple[int, list[tuple[Any, ...]]]:
    """How many combinations of the keys' values there are, and those that have no row."""
    import itertools

    import pandas as pd

    if not plan.grouped or not plan.key_columns:
        return 0, []
    shown = [[None if pd.isna(v) else v for v in stats[c].tolist()] for c in plan.key_columns]
    present = set(zip(*shown, strict=True))
    domains = [
        list(declared) if declared is not None else list(dict.fromkeys(values))
        for declared, values in zip(plan.key_domains, shown, strict=True)
    ]
    combinations = math.prod(len(d) for d in domains)
    if combinations > _MAX_COMBINATIONS:
        return 0, []
    return combinations, [c for c in itertools.product(*domains) if c not in present]


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
