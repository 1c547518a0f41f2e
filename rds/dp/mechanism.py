"""Differentially private SQL, part 2: calibrated noise, accounting and release, by OpenDP.

A scientist asks ``dataset.sql("SELECT ward, COUNT(*), AVG(los_days) FROM patients GROUP BY
ward", epsilon=0.5)``. :func:`plan_dp_query` checks the query and plans the SQL the sandbox
runs (see :mod:`rds.dp.plan` for the accepted shape, and for the derivation of the
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
NaN when the noisy count is ≤ 0. Counts are released as they come out of the mechanism
(unbiased, may be negative). An AVG over a column the owner published as having no missing
values divides by the shared ``COUNT(*)``: one count and one sum are noised, as in OpenDP's
own plan for a mean, instead of three.

The 95% intervals
-----------------
COUNT and SUM: ``v ± h`` with ``h`` the smallest integer (in grid units for a sum) such that
``P(|X| > h) <= 5%`` for the exact law of the discrete noise ``X`` OpenDP adds: discrete
Laplace(b), ``P(|X| > h) = 2 q^(h+1) / (1 + q)`` with ``q = exp(-1/b)``; discrete
Gaussian(sigma), summed over its support (sigma <= 1e4) or from the normal law with a
continuity correction (above, where they agree to ~1/sigma^2). So the coverage is at least
95%, and exactly ``1 - P(|X| > h)`` (reported as ``coverage``): 95-96% once b >= 3, more
for coarser noise (b = 2: 96.2%, b = 1: 97.3%), since no integer h gives 95% exactly.

AVG: with ``S' = S + eS`` and ``C' = C + eC`` the noisy sum and count of a group whose exact
average is ``A = S / C``, ``S' - A C' = eS - A eC`` exactly, whatever ``C``. Its law depends
on ``A`` only: the sum of two independent Laplace variables of scales ``b1 = b_S`` and
``b2 = |A| b_C`` has ``P(|Z| > t) = (b1^2 e^(-t/b1) - b2^2 e^(-t/b2)) / (b1^2 - b2^2)``
(``e^(-t/b) (1 + t / 2b)`` when ``b1 = b2``; partial fractions of the characteristic
function ``1 / ((1 + b1^2 w^2)(1 + b2^2 w^2))``), and for Gaussian noise it is normal with
variance ``sigma_S^2 + A^2 sigma_C^2``. With ``h(a)`` its 95% quantile, the interval is
every ``A`` in the bounds with ``|S' - A C'| <= h(|A|)``, so it covers the exact average with
probability 95% (up to treating the count's discrete noise as continuous, which makes it a
little wider). ``h`` grows with ``|A|`` at slope below ``L`` (the count noise's 95%
quantile, ``b_C ln 20`` or ``1.96 sigma_C``), so when ``C' > L`` the set is an interval
found by bisection; for a large count it is about ``S'/C' ± h(|A|) / C'``. When ``C' <= L``
(a small or empty group) nothing is known beyond the bounds, and the interval is the bounds.
The box of two 97.5% intervals used before covered 97.6-99.7% and was 1.3-1.8x as wide
(1,000-row groups, ε 0.1 to 1, averages at 5-90% of the bounds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import lru_cache
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

from rds.dp.plan import (
    SUPPORTED,
    DPAggregate,
    DPColumn,
    DPMeasure,
    DPPlan,
    DPSchema,
    parse_dp_query,
)
from rds.errors import InvalidInput

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = [
    "SUPPORTED",
    "DPAggregate",
    "DPColumn",
    "DPMeasure",
    "DPPlan",
    "DPPreview",
    "DPRelease",
    "DPSchema",
    "average_interval",
    "build_measurement",
    "halfwidth",
    "plan_dp_query",
    "preview_error",
    "release_dp",
    "tail",
]

CONFIDENCE = 0.95
#: The largest δ one query may use. δ is the chance that the ε guarantee fails outright for
#: everyone at once; the usual values are 1e-5 to 1e-9, far below one over the rows. Near 1
#: it would calibrate the Gaussian noise to ε = 0, a plan that cannot be released.
MAX_DELTA = 1e-3
#: Group sizes at which a preview shows an AVG's half-width.
PREVIEW_COUNTS = (10, 100, 1000, 10000)


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
    #: The exact probability that a COUNT or SUM interval holds its true value (at least
    #: 95%: the discrete noise's integer half-widths); 95% for an AVG.
    coverage: dict[str, float] = field(default_factory=dict)

    def info(self) -> dict[str, Any]:
        """JSON-safe facts about the release, for the ledger and the scientist."""
        return {
            "epsilon": self.epsilon,
            "delta": self.delta,
            "mechanism": self.mechanism,
            "noise_scale": dict(self.noise_scale),
            "confidence": CONFIDENCE,
            "coverage": dict(self.coverage),
            "columns": [str(c) for c in self.frame.columns],
        }


@dataclass(frozen=True)
class DPPreview:
    """How noisy a planned DP query's answer will be, known before anything runs.

    It depends on the plan only (the public schema, the query and ε), so computing it reads
    no data and spends nothing. ``table`` has one row per requested aggregate:

    - ``noise`` and ``scale``: the mechanism and its Laplace ``b`` or Gaussian sigma, in the
      column's units (for an AVG, the noise on its sum); ``count_scale`` the noise on an
      AVG's count;
    - ``halfwidth``: the half-width of a COUNT's or SUM's 95% interval, the same in every
      group, and ``coverage`` its exact probability of holding the true value;
    - ``halfwidth_n10`` ... ``halfwidth_n10000``: an AVG's half-width in a group whose noisy
      count is 10 ... 10,000, the widest over the averages its bounds allow (about
      ``h / n``, ``h`` the 95% quantile of the sum's noise minus the average times the
      count's); for a COUNT or SUM, ``halfwidth`` again. :meth:`halfwidth` gives it for
      any count and average.

    Examples
    --------
    >>> preview = ds.sql("SELECT ward, AVG(age) FROM patients GROUP BY ward", epsilon=0.5,
    ...                  dry_run=True)  # doctest: +SKIP
    >>> preview.halfwidth("avg_age", count=200)  # doctest: +SKIP
    """

    plan: DPPlan
    table: pd.DataFrame

    @property
    def epsilon(self) -> float:
        """The ε the release would be accounted at (OpenDP's map, at most the request)."""
        return self.plan.epsilon

    @property
    def delta(self) -> float:
        return self.plan.delta

    @property
    def mechanism(self) -> str:
        return self.plan.mechanism

    @property
    def groups(self) -> int:
        """Rows of the released table: every group of the keys' public domains."""
        return len(self.plan.cells)

    def halfwidth(
        self, measure: str, count: float | None = None, value: float | None = None
    ) -> float:
        """The 95% half-width of ``measure``: for an AVG, in a group with noisy ``count``
        (required) and noisy average ``value`` (default: the widest over the bounds).

        For an AVG released next to its noisy count and sum, ``count`` and ``sum / count``
        give exactly its released interval's half-width.
        """
        found = [m for m in self.plan.measures if m.name == measure]
        if not found:
            names = ", ".join(m.name for m in self.plan.measures)
            raise InvalidInput(f"No measure {measure!r} in this query (it has {names}).")
        m = found[0]
        aggregates = {a.column: a for a in self.plan.aggregates}
        num = aggregates[m.numerator]
        if m.denominator is None or m.bounds is None:
            return float(halfwidth(num.scale, self.plan.mechanism) * num.unit)
        if count is None:
            raise InvalidInput(f"The half-width of the average {measure!r} depends on count=.")
        return _avg_halfwidth(self.plan, m, float(count), value)

    def __repr__(self) -> str:
        head = (
            f"<rds.DPPreview: {self.mechanism} noise at ε={self.epsilon:.6g}"
            + (f", δ={self.delta:g}" if self.delta else "")
            + f", {self.groups:,} group(s); nothing was run or spent>"
        )
        return head + "\n" + self.table.to_string(index=False)


def preview_error(plan: DPPlan) -> DPPreview:
    """The expected error of each measure of a calibrated plan (see :class:`DPPreview`).

    A pure function of the plan: the half-widths are those :func:`release_dp` gives its
    intervals.

    Examples
    --------
    >>> preview_error(plan_dp_query("SELECT COUNT(*) FROM patients", schema, epsilon=1.0)).table
    ... # doctest: +SKIP
    """
    import numpy as np
    import pandas as pd

    _check_plan(plan)
    aggregates = {a.column: a for a in plan.aggregates}
    rows = []
    for m in plan.measures:
        num = aggregates[m.numerator]
        row: dict[str, Any] = {
            "measure": m.name,
            "kind": m.kind,
            "noise": plan.mechanism,
            "scale": num.scale * num.unit,
            "count_scale": np.nan,
        }
        if m.denominator is not None and m.bounds is not None:
            row["count_scale"] = aggregates[m.denominator].scale
            row["halfwidth"], row["coverage"] = np.nan, CONFIDENCE
            for n in PREVIEW_COUNTS:
                row[f"halfwidth_n{n}"] = _avg_halfwidth(plan, m, float(n), None)
        else:
            h = halfwidth(num.scale, plan.mechanism)
            row["halfwidth"] = h * num.unit
            row["coverage"] = 1 - tail(h, num.scale, plan.mechanism)
            for n in PREVIEW_COUNTS:
                row[f"halfwidth_n{n}"] = row["halfwidth"]
        rows.append(row)
    return DPPreview(plan, pd.DataFrame(rows))


def _avg_halfwidth(plan: DPPlan, m: DPMeasure, count: float, value: float | None) -> float:
    """Half the width of ``m``'s interval for a group of noisy ``count`` and noisy average
    ``value``; for ``value=None`` the widest over the bounds (a grid, refined twice around
    its widest point)."""
    import numpy as np

    assert m.denominator is not None and m.bounds is not None
    aggregates = {a.column: a for a in plan.aggregates}
    num, den, bounds = aggregates[m.numerator], aggregates[m.denominator], m.bounds

    def widths(values: np.ndarray) -> np.ndarray:
        counts = np.full(len(values), count)
        low, high = average_interval(values * counts, counts, bounds, num, den, plan.mechanism)
        return np.asarray((high - low) / 2)

    if value is not None:
        return float(widths(np.array([float(value)]))[0])
    lo, hi = bounds
    best = 0.0
    for _ in range(3):
        values = np.linspace(lo, hi, 65)
        found = widths(values)
        i = int(np.argmax(found))
        best = max(best, float(found[i]))
        lo, hi = values[max(i - 1, 0)], values[min(i + 1, len(values) - 1)]
    return best


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
    if not 0.0 <= delta <= MAX_DELTA:
        raise InvalidInput(
            f"delta must be in [0, {MAX_DELTA:g}], not {delta!r}: δ is the chance that the "
            "guarantee fails for everyone at once (usual values: 1e-5 to 1e-9)."
        )
    draft = parse_dp_query(query, schema)
    plan = _calibrate(draft, float(epsilon), delta)
    _check_plan(plan)  # a plan that could not be released is refused here, before it is sent
    return plan


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
    coverage: dict[str, float] = {}
    aggregates = {a.column: a for a in plan.aggregates}
    for m in plan.measures:
        num = aggregates[m.numerator]
        scales[m.name] = num.scale * num.unit
        if m.denominator is not None and m.bounds is not None:
            den = aggregates[m.denominator]
            total, count = noisy[num.column] * num.unit, noisy[den.column].astype(float)
            value = np.where(
                count > 0, np.clip(total / np.where(count > 0, count, 1.0), *m.bounds), np.nan
            )
            values = (value, *average_interval(total, count, m.bounds, num, den, plan.mechanism))
            coverage[m.name] = CONFIDENCE
        else:
            v, h = noisy[num.column], halfwidth(num.scale, plan.mechanism)
            values = (v, v - h, v + h)
            if m.kind == "sum":  # back from the fixed-point grid (a power of two: exact)
                values = (v * num.unit, (v - h) * num.unit, (v + h) * num.unit)
            coverage[m.name] = 1 - tail(h, num.scale, plan.mechanism)
        for suffix, value in zip(("", "_ci_low", "_ci_high"), values, strict=True):
            columns[m.name + suffix] = value
    frame = pd.DataFrame(columns)
    if plan.order_by:
        by, descending = zip(*plan.order_by, strict=True)
        ascending = [not d for d in descending]
        frame = frame.sort_values(list(by), ascending=ascending, kind="stable")
        frame = frame.reset_index(drop=True)
    return DPRelease(frame, plan.epsilon, plan.delta, plan.mechanism, scales, coverage)


def no_rows(plan: DPPlan) -> pd.DataFrame:
    """What ``plan.sql`` returns on a table with no rows: released in place of a DP run that
    did not finish in time (``release_dp(plan, no_rows(plan))`` is pure noise).

    Examples
    --------
    >>> release_dp(plan, no_rows(plan)).frame  # doctest: +SKIP
    """
    import pandas as pd

    counts = [0] if not plan.keys else []
    columns: dict[str, Any] = {k: pd.Series([], dtype=object) for k in plan.keys}
    for agg in plan.aggregates:
        columns[agg.column] = pd.Series(counts, dtype="int64")
    return pd.DataFrame(columns)


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
    # verify (it is derived in rds.dp.plan). No "floating-point": every noisy value
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


def tail(h: int, scale: float, mechanism: str) -> float:
    """``P(|X| > h)`` for the discrete noise OpenDP adds at ``scale`` (``h`` an integer >= 0).

    Discrete Laplace(b): ``P(X = k) ∝ q^|k|``, so ``P(|X| >= n) = 2 q^n / (1 + q)``, ``q =
    exp(-1/b)``. Discrete Gaussian(sigma): ``P(X = k) ∝ exp(-k^2 / 2 sigma^2)``, summed over
    ``|k| <= 40 sigma`` when sigma <= 1e4; above, ``2 P(N(0, sigma^2) > h + 1/2)``, which it
    matches to a relative ~1/sigma^2.

    Examples
    --------
    >>> round(tail(5, 2.0, "laplace"), 4), round(tail(6, 2.0, "laplace"), 4)
    (0.062, 0.0376)
    """
    if mechanism == "laplace":
        return 2 * math.exp(-(h + 1) / scale) / (1 + math.exp(-1 / scale))
    if scale > 1e4:
        return 2 * NormalDist(0.0, scale).cdf(-(h + 0.5))
    tails = _gaussian_tails(scale)
    return float(tails[min(h, len(tails) - 1)])


@lru_cache(maxsize=16)
def _gaussian_tails(sigma: float) -> np.ndarray:
    """``P(|X| > h)`` for h = 0, 1, ... 40 sigma, X discrete Gaussian(sigma) (then 0)."""
    import numpy as np

    k = np.arange(0, math.ceil(40 * sigma) + 2, dtype=float)
    weights = np.exp(-(k**2) / (2 * sigma**2))
    above = np.cumsum(weights[::-1])[::-1]  # above[i] = sum of weights[i:]
    total = weights[0] + 2 * above[1]
    tails = np.append(2 * above[1:] / total, 0.0)
    tails.flags.writeable = False  # shared by the cache
    return tails


def halfwidth(scale: float, mechanism: str, confidence: float = CONFIDENCE) -> int:
    """The smallest integer ``h`` with ``P(|X| > h) <= 1 - confidence`` (see :func:`tail`).

    Examples
    --------
    >>> halfwidth(2.0, "laplace"), halfwidth(20.0, "laplace")
    (6, 60)
    """
    alpha = 1 - confidence
    if mechanism == "laplace":  # 2 e^{-(h+1)/b} / (1 + q) <= alpha, solved for h
        guess = scale * math.log(2 / (alpha * (1 + math.exp(-1 / scale)))) - 1
    else:
        guess = NormalDist().inv_cdf(1 - alpha / 2) * scale - 0.5
    h = max(0, math.ceil(guess) - 1)  # then exactly, against rounding in the closed forms
    while tail(h, scale, mechanism) > alpha:
        h += 1
    while h > 0 and tail(h - 1, scale, mechanism) <= alpha:
        h -= 1
    return h


def average_interval(
    total: np.ndarray,
    count: np.ndarray,
    bounds: tuple[float, float],
    num: DPAggregate,
    den: DPAggregate,
    mechanism: str,
) -> tuple[np.ndarray, np.ndarray]:
    """The 95% interval of each group's average from its noisy sum and count (module doc).

    ``total`` is the noisy sum in the column's units, ``count`` the noisy count; ``num`` and
    ``den`` are the aggregates they come from (their noise scales). Where ``count`` is at
    most the count noise's 95% quantile the interval is ``bounds``.
    """
    import numpy as np

    lo, hi = bounds
    total, count = np.asarray(total, dtype=float), np.asarray(count, dtype=float)
    quantile, slope = _pivot_quantile(num.scale * num.unit, den.scale, bounds, mechanism)
    known = count > slope
    c = np.where(known, count, slope + 1.0)  # unknown cells: any valid count, then ignored

    def below(a: np.ndarray) -> np.ndarray:  # d(A) = S' - A C' - h(|A|), decreasing in A
        return total - a * c - quantile(np.abs(a))

    def above(a: np.ndarray) -> np.ndarray:  # u(A) = A C' - S' - h(|A|), increasing in A
        return a * c - total - quantile(np.abs(a))

    low = _switch(lambda a: below(a) > 0, lo, hi, len(c), lower=True)
    high = _switch(lambda a: above(a) <= 0, lo, hi, len(c), lower=False)
    return np.where(known, low, lo), np.where(known, np.maximum(high, low), hi)


def _switch(test: Any, lo: float, hi: float, n: int, *, lower: bool) -> np.ndarray:
    """Per cell, where ``test`` (monotone along [lo, hi]: true, then false) turns false, by
    bisection: ``lo`` if it is false throughout, ``hi`` if true throughout. In between, the
    point returned lies just outside the confidence set: the last true point for its
    ``lower`` end (there ``test`` is "below the set"), the first false one for its upper end
    (there ``test`` is "in the set")."""
    import numpy as np

    left, right = np.full(n, float(lo)), np.full(n, float(hi))
    first, last = test(left), test(right)
    for _ in range(60):
        middle = (left + right) / 2
        true = test(middle)
        left, right = np.where(true, middle, left), np.where(true, right, middle)
    return np.where(~first, lo, np.where(last, hi, left if lower else right))


def _pivot_quantile(
    sum_scale: float, count_scale: float, bounds: tuple[float, float], mechanism: str
) -> tuple[Any, float]:
    """``h(a)``, the 95% quantile of ``|eS - a eC|`` for ``a`` in ``[0, max|bounds|]``, as a
    vectorised function, and its greatest slope ``L``."""
    import numpy as np

    alpha = 1 - CONFIDENCE
    if mechanism == "gaussian":
        z = NormalDist().inv_cdf(1 - alpha / 2)
        return (lambda a: z * np.sqrt(sum_scale**2 + (a * count_scale) ** 2)), z * count_scale
    top = max(abs(bounds[0]), abs(bounds[1]))
    a = np.linspace(0.0, top, 129)
    h = _laplace_pair_quantile(sum_scale, a * count_scale, alpha)
    # h is convex in a, so the chords lie above it (wider, never narrower) and their slopes
    # stay below its limit b_C ln(1/alpha)
    return (lambda x: np.interp(x, a, h)), count_scale * math.log(1 / alpha)


def _laplace_pair_quantile(b1: float, b2: np.ndarray, alpha: float) -> np.ndarray:
    """The ``1 - alpha`` quantile of ``|X1 + X2|``, X1 ~ Laplace(b1), X2 ~ Laplace(b2).

    In units of ``B = max(b1, b2)``, with ``r = min / max``, ``P(|X1 + X2| > xB)`` is
    ``(e^-x - r^2 e^(-x/r)) / (1 - r^2)`` (``e^-x (1 + x/2)`` at r = 1, ``e^-x`` at r = 0),
    a convex decreasing function of x: Newton's method from ``x = ln(1/alpha)``, where it
    is at least alpha, climbs to the root without overshooting.
    """
    import numpy as np

    big = np.maximum(b1, b2)
    ratio = np.minimum(b1, b2) / big
    near, alone = 1 - ratio < 1e-8, ratio == 0  # the limits (cancellation below 1e-8)
    r = np.where(near | alone, 0.5, ratio)  # a stand-in where a limit is used
    x = np.full(ratio.shape, math.log(1 / alpha))
    for _ in range(40):
        e, f = np.exp(-x), np.exp(-x / r)
        value = np.where(near, e * (1 + x / 2), np.where(alone, e, (e - r**2 * f) / (1 - r**2)))
        slope = np.where(near, -e * (1 + x) / 2, np.where(alone, -e, (r * f - e) / (1 - r**2)))
        x = x - (value - alpha) / slope
    return np.asarray(x * big)


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
        if agg.clamp is None:
            continue
        # A sum of n clamped rows lies in [n lo, n hi], n the rows where the value is present
        # (COUNT(col)). Of all rows (COUNT(*)), only [n min(lo, 0), n max(hi, 0)] holds: a
        # missing value is not summed, and "is the target's value missing" must not decide
        # whether the release fails.
        lo, hi = agg.clamp
        counts = {c.source: c for c in plan.aggregates if c.kind == "count"}
        if agg.source in counts:
            n = vectors[counts[agg.source].column].astype(float)
        elif None in counts:
            n = vectors[counts[None].column].astype(float)
            lo, hi = min(lo, 0), max(hi, 0)
        else:
            continue
        total = vectors[agg.column].astype(float)
        slack = 1e-9 * np.abs(total) + 1
        if (total < n * lo - slack).any() or (total > n * hi + slack).any():
            raise InvalidInput(f"The exact {agg.column!r} is not a sum of clamped values.")
    return vectors
