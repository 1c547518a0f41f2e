"""Differentially private SQL, part 2: calibrated noise, accounting and release, by OpenDP.

A scientist asks ``dataset.sql("SELECT ward, COUNT(*), AVG(los_days) FROM patients GROUP BY
ward", epsilon=0.5)``. :func:`plan_dp_query` checks the query and plans the SQL the sandbox
runs (see :mod:`rds.privacy.dp_plan` for the accepted shape, and for the derivation of the
sensitivities), then calibrates the noise. :func:`release_dp` takes the exact aggregates the
sandbox computed and returns the noisy table, with one row per group of the keys' public
domains, and a 95% interval per cell.

How OpenDP is used:

- every distinct noisy aggregate (one COUNT shared by COUNT(*) and the AVGs that divide by
  it, one SUM per column, one COUNT(col) per nullable column) is one OpenDP measurement: a
  user-defined transformation that picks its integer vector out of the exact result, with
  stability ``d_in * sensitivity`` (our claim about the SQL; OpenDP cannot check DuckDB),
  chained into ``make_laplace`` (L1, pure ε) or ``make_gaussian`` (L2, zCDP) on ``Vec<i64>``;
- the measurements are joined with ``make_composition``; for Gaussian noise the composed
  zCDP measurement goes through ``make_zCDP_to_approxDP`` and ``make_fix_delta(δ)``;
- ε is split evenly: aggregate ``i`` gets scale ``t * sensitivity_i``, so each costs the
  same; ``t`` starts from the closed form (Laplace: ``t = m / ε``; Gaussian: the largest
  rho whose (ε, δ) conversion fits, from Canonne, Kamath & Steinke 2020) and is nudged up
  until the composed measurement's own privacy map reports at most the requested ε. That
  map's value, at ``d_in = 1`` individual, is the plan's ``epsilon``.

Noise is added to integers only (counts and fixed-point sums), so OpenDP samples the
discrete Laplace / discrete Gaussian exactly and no floating-point feature is needed.
OpenDP draws from the operating system's CSPRNG: releases cannot be seeded.

AVG is post-processing: noisy clamped sum / noisy count, clipped into the column's bounds,
NaN when the noisy count is ≤ 0 (there is then no usable denominator; its interval is the
bounds). Counts are released as they come out of the mechanism (unbiased, may be negative).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

from rds.errors import InvalidInput
from rds.privacy.dp_plan import (
    SUPPORTED,
    DPAggregate,
    DPColumn,
    DPMeasure,
    DPPlan,
    DPSchema,
    parse_dp_query,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = [
    "SUPPORTED",
    "DPAggregate",
    "DPColumn",
    "DPMeasure",
    "DPPlan",
    "DPRelease",
    "DPSchema",
    "build_measurement",
    "plan_dp_query",
    "release_dp",
]

CONFIDENCE = 0.95


@dataclass(frozen=True)
class DPRelease:
    """A released DP table and what it cost.

    ``frame`` has the keys, then for each requested aggregate ``<name>``, ``<name>_ci_low``
    and ``<name>_ci_high`` (a 95% interval for the exact value, from the noise alone).
    ``noise_scale`` is the Laplace ``b`` or Gaussian sigma per output column in its units;
    for an AVG it is the scale of the noise on its numerator (the clamped sum), so the
    average's error is roughly that divided by the group's count.
    """

    frame: pd.DataFrame
    epsilon: float
    delta: float
    mechanism: str
    noise_scale: dict[str, float]

    def info(self) -> dict[str, Any]:
        """JSON-safe facts about the release, for the ledger and the scientist."""
        return {
            "epsilon": self.epsilon,
            "delta": self.delta,
            "mechanism": self.mechanism,
            "noise_scale": dict(self.noise_scale),
            "confidence": CONFIDENCE,
            "columns": [str(c) for c in self.frame.columns],
        }


def plan_dp_query(
    query: str, schema: DPSchema, *, epsilon: float, delta: float | None = None
) -> DPPlan:
    """Plan a DP query: its private SQL, and noise calibrated to spend at most ``epsilon``.

    ``delta`` None or 0 gives pure ε-DP with Laplace noise; ``0 < delta < 1`` gives
    (ε, δ)-DP with Gaussian noise.

    Raises
    ------
    InvalidInput
        If the query is not of the supported shape (the message shows it) or the budget
        is not a finite ``epsilon > 0`` with ``0 <= delta < 1``.

    Examples
    --------
    >>> schema = DPSchema(
    ...     "patients",
    ...     (DPColumn("ward", "object", categories=("cardio", "onco")),
    ...      DPColumn("los_days", "int64", bounds=(0, 365))),
    ... )
    >>> plan = plan_dp_query(
    ...     "SELECT ward, COUNT(*), AVG(los_days) FROM patients GROUP BY ward", schema, epsilon=1.0
    ... )
    >>> plan.mechanism, plan.epsilon <= 1.0, [m.name for m in plan.measures]
    ('laplace', True, ['count', 'avg_los_days'])
    """
    for name, value in (("epsilon", epsilon), ("delta", 0.0 if delta is None else delta)):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidInput(f"{name} must be a number, not {value!r}.")
    if not (math.isfinite(epsilon) and epsilon > 0):
        raise InvalidInput(f"epsilon must be finite and > 0, not {epsilon!r}.")
    delta = float(delta or 0.0)
    if not 0.0 <= delta < 1.0:
        raise InvalidInput(f"delta must be in [0, 1), not {delta!r}.")
    draft = parse_dp_query(query, schema)
    return _calibrate(draft, float(epsilon), delta)


def release_dp(plan: DPPlan, exact: pd.DataFrame) -> DPRelease:
    """Add the plan's noise to ``exact`` (the result of ``plan.sql``) and build the table.

    Raises
    ------
    InvalidInput
        If ``exact`` is not exactly what ``plan.sql`` returns (columns, integer values,
        keys inside the domains, each group once), or the plan would spend more than its
        recorded ``epsilon``.

    Examples
    --------
    >>> exact = duckdb_connection.sql(plan.sql).df()  # doctest: +SKIP
    >>> release_dp(plan, exact).frame  # doctest: +SKIP
    """
    import numpy as np
    import pandas as pd

    _check_plan(plan)
    cells = plan.cells
    vectors = _exact_vectors(plan, exact, cells)
    measurement = build_measurement(plan)
    if _spent(measurement, plan) > plan.epsilon:
        raise InvalidInput("This DP plan's noise would spend more than its recorded epsilon.")
    outputs = measurement(vectors)
    noisy = {
        a.column: np.asarray(v, dtype=np.int64)
        for a, v in zip(plan.aggregates, outputs, strict=True)
    }
    columns: dict[str, Any] = dict(zip(plan.keys, map(list, zip(*cells, strict=True)), strict=True))
    scales: dict[str, float] = {}
    aggregates = {a.column: a for a in plan.aggregates}
    for m in plan.measures:
        num = aggregates[m.numerator]
        scales[m.name] = num.scale * num.unit
        if m.denominator is not None and m.bounds is not None:
            values = _average(noisy, num, aggregates[m.denominator], m.bounds, plan.mechanism)
        else:
            v, h = noisy[num.column], _halfwidth(num.scale, plan.mechanism, CONFIDENCE)
            values = (v, v - h, v + h)
            if m.kind == "sum":  # back from the fixed-point grid (a power of two: exact)
                values = (v * num.unit, (v - h) * num.unit, (v + h) * num.unit)
        for suffix, value in zip(("", "_ci_low", "_ci_high"), values, strict=True):
            columns[m.name + suffix] = value
    frame = pd.DataFrame(columns)
    if plan.order_by:
        by, descending = zip(*plan.order_by, strict=True)
        ascending = [not d for d in descending]
        frame = frame.sort_values(list(by), ascending=ascending, kind="stable")
        frame = frame.reset_index(drop=True)
    return DPRelease(frame, plan.epsilon, plan.delta, plan.mechanism, scales)


def build_measurement(plan: DPPlan) -> Any:
    """The composed OpenDP measurement a plan's release runs; ``.map(1)`` is its cost.

    Its input is a dict from aggregate column to the exact integer vector over the plan's
    cells; ``d_in`` counts individuals added or removed.
    """
    dp = _opendp()
    table = dp.user_domain("rds.ExactAggregates", member=lambda x: isinstance(x, dict))
    individuals = dp.user_distance("rds.AddOrRemoveIndividuals")
    vectors = dp.vector_domain(dp.atom_domain(T="i64"))  # T=int would mean i32 in OpenDP
    gaussian = plan.mechanism == "gaussian"
    metric = dp.l2_distance(T=float) if gaussian else dp.l1_distance(T="i64")
    noise = dp.m.make_gaussian if gaussian else dp.m.make_laplace
    parts = []
    for agg in plan.aggregates:
        pick = dp.t.make_user_transformation(
            table,
            individuals,
            vectors,
            metric,
            function=_picker(agg.column),
            stability_map=_stability(agg.sensitivity, gaussian),
        )
        parts.append(pick >> noise(vectors, metric, scale=agg.scale))
    measurement = dp.c.make_composition(parts)
    if gaussian:
        measurement = dp.c.make_zCDP_to_approxDP(measurement)
        measurement = dp.c.make_fix_delta(measurement, plan.delta)
    return measurement


def _opendp() -> Any:
    import opendp.prelude as dp

    # "contrib" unlocks OpenDP's constructors. "honest-but-curious" unlocks user-defined
    # transformations: the one we define is the DuckDB SQL, whose stability OpenDP cannot
    # verify (it is derived in rds.privacy.dp_plan). No "floating-point": every noisy value
    # is an integer; OpenDP 0.16's float Laplace would not need the flag either.
    dp.enable_features("contrib", "honest-but-curious")
    return dp


def _picker(column: str) -> Any:
    return lambda exact: exact[column]


def _stability(sensitivity: int, gaussian: bool) -> Any:
    if gaussian:
        return lambda d_in: float(d_in * sensitivity)
    return lambda d_in: d_in * sensitivity


def _spent(measurement: Any, plan: DPPlan) -> float:
    loss = measurement.map(1)
    if plan.mechanism == "gaussian":
        epsilon, delta = loss
        if delta > plan.delta:
            return math.inf
        return float(epsilon)
    return float(loss)


def _calibrate(draft: DPPlan, epsilon: float, delta: float) -> DPPlan:
    """Scale every aggregate's noise by one factor ``t`` until OpenDP's map fits ``epsilon``."""
    mechanism = "gaussian" if delta > 0 else "laplace"
    m = len(draft.aggregates)
    # Laplace: each aggregate costs sensitivity / scale = 1 / t; Gaussian: rho = 1 / (2 t^2)
    laplace = mechanism == "laplace"
    t = m / epsilon if laplace else math.sqrt(m / (2 * _max_rho(epsilon, delta)))
    for _ in range(64):
        aggregates = tuple(replace(a, scale=t * a.sensitivity) for a in draft.aggregates)
        plan = replace(draft, aggregates=aggregates, delta=delta, mechanism=mechanism)
        spent = _spent(build_measurement(plan), plan)
        if spent <= epsilon:
            return replace(plan, epsilon=spent)
        # OpenDP rounds its maps up; the nudge is proportional to the overshoot
        t *= min(spent / epsilon, 2.0) * (1 + 1e-12)
    raise RuntimeError(f"Could not calibrate noise to epsilon={epsilon}.")  # pragma: no cover


def _max_rho(epsilon: float, delta: float) -> float:
    """The largest rho whose rho-zCDP implies (ε, δ)-DP (CKS20 §2.3), maximised over alpha."""
    import numpy as np

    alpha = 1 + np.logspace(-6, 7, 4000)
    bound = np.log(delta) + np.log(alpha - 1) - alpha * np.log1p(-1 / alpha)
    return float(np.max((epsilon + bound / (alpha - 1)) / alpha))


def _halfwidth(scale: float, mechanism: str, confidence: float) -> int:
    """Integer h with P(|noise| > h) <= 1 - confidence, for the discrete noise OpenDP adds.

    Discrete Laplace(b): P(|X| >= n) = 2q^n / (1 + q), q = exp(-1/b), so h = ceil(b ln
    (1/(1-c))) suffices. Discrete Gaussian(sigma): P(X >= m) <= P(N(0, sigma^2) >= m - 1) (CKS20,
    Prop. 25), so h = ceil(z sigma) suffices.
    """
    if mechanism == "gaussian":
        return math.ceil(NormalDist().inv_cdf((1 + confidence) / 2) * scale)
    return math.ceil(scale * math.log(1 / (1 - confidence)))


def _average(
    noisy: dict[str, np.ndarray],
    num: DPAggregate,
    den: DPAggregate,
    bounds: tuple[float, float],
    mechanism: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Noisy sum / noisy count, clipped into the bounds, with a 95% box interval.

    The interval holds every ratio of a 97.5% interval for the sum and one for the count
    (both hold with probability >= 95% together); when the count's interval reaches 0
    nothing is known beyond the bounds.
    """
    import numpy as np

    lo, hi = bounds
    total = noisy[num.column] * num.unit
    count = noisy[den.column].astype(float)
    safe = np.where(count > 0, count, 1.0)
    value = np.where(count > 0, np.clip(total / safe, lo, hi), np.nan)
    level = 1 - (1 - CONFIDENCE) / 2
    h_sum = _halfwidth(num.scale, mechanism, level) * num.unit
    h_count = _halfwidth(den.scale, mechanism, level)
    known = count - h_count >= 1
    c_lo, c_hi = np.where(known, count - h_count, 1.0), np.where(known, count + h_count, 1.0)
    corners = np.stack([(total + s) / c for s in (-h_sum, h_sum) for c in (c_lo, c_hi)])
    low = np.where(known, np.clip(corners.min(axis=0), lo, hi), lo)
    high = np.where(known, np.clip(corners.max(axis=0), lo, hi), hi)
    return value, low, high


def _check_plan(plan: DPPlan) -> None:
    columns = {a.column for a in plan.aggregates}
    ok = (
        plan.mechanism in {"laplace", "gaussian"}
        and (plan.delta > 0) == (plan.mechanism == "gaussian")
        and 0 <= plan.delta < 1
        and math.isfinite(plan.epsilon)
        and plan.epsilon > 0
        and all(math.isfinite(a.scale) and a.scale > 0 for a in plan.aggregates)
        and all({m.numerator, m.denominator or m.numerator} <= columns for m in plan.measures)
    )
    if not ok:
        raise InvalidInput("This DP plan is not calibrated or not consistent; plan it again.")


def _exact_vectors(
    plan: DPPlan, exact: pd.DataFrame, cells: list[tuple[Any, ...]]
) -> dict[str, np.ndarray]:
    """The exact aggregates as one integer vector per aggregate over all cells, checked."""
    import numpy as np
    import pandas as pd

    expected = [*plan.keys, *(a.column for a in plan.aggregates)]
    if not isinstance(exact, pd.DataFrame) or list(exact.columns) != expected:
        got = list(exact.columns) if isinstance(exact, pd.DataFrame) else type(exact).__name__
        raise InvalidInput(f"The exact result has columns {got}; the plan expects {expected}.")
    if len(exact) > len(cells) or (not plan.keys and len(exact) != 1):
        raise InvalidInput(f"The exact result has {len(exact)} rows for {len(cells)} groups.")
    index = {cell: i for i, cell in enumerate(cells)}
    keys = [
        [
            None if missing else v
            for v, missing in zip(exact[k].tolist(), exact[k].isna(), strict=True)
        ]
        for k in plan.keys
    ]
    rows = list(zip(*keys, strict=True)) if plan.keys else [()]
    positions = [index.get(row) for row in rows]
    if None in positions:
        outside = rows[positions.index(None)]
        raise InvalidInput(f"The exact result has the group {outside!r}, outside the domain.")
    if len(set(positions)) != len(positions):
        raise InvalidInput("The exact result has a group more than once.")
    vectors: dict[str, np.ndarray] = {}
    for agg in plan.aggregates:
        column = exact[agg.column]
        if not pd.api.types.is_integer_dtype(column.dtype) or column.isna().any():
            raise InvalidInput(f"The exact {agg.column!r} must be integers without nulls.")
        values = np.zeros(len(cells), dtype=np.int64)
        values[np.asarray(positions, dtype=np.int64)] = column.to_numpy(dtype=np.int64)
        if agg.kind == "count" and (values < 0).any():
            raise InvalidInput(f"The exact {agg.column!r} has a negative count.")
        vectors[agg.column] = values
    for agg in plan.aggregates:
        counts = [
            c for c in plan.aggregates if c.kind == "count" and c.source in {None, agg.source}
        ]
        if agg.clamp is not None and counts:  # a sum of n clamped rows lies in [n lo, n hi]
            n = vectors[counts[0].column].astype(float)
            total = vectors[agg.column].astype(float)
            slack = 1e-9 * np.abs(total) + 1
            if (total < n * agg.clamp[0] - slack).any() or (total > n * agg.clamp[1] + slack).any():
                raise InvalidInput(f"The exact {agg.column!r} is not a sum of clamped values.")
    return vectors
