"""Differentially private SQL: planning, sensitivity, noise, accounting, release.

Real OpenDP and real DuckDB throughout. OpenDP draws its noise from the OS CSPRNG and
cannot be seeded, so the statistical tests are sized for a false-failure probability far
below 1e-6 (each check at <= 1e-8, a handful of checks).
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from rds.dp.mechanism import (
    DPColumn,
    DPPlan,
    DPSchema,
    build_measurement,
    plan_dp_query,
    release_dp,
)
from rds.dp.plan import parse_dp_query
from rds.errors import InvalidInput

WARDS = ("cardio", "onco", "neuro")
SCHEMA = DPSchema(
    "patients",
    (
        DPColumn("patient_id", "int64"),
        DPColumn("ward", "object", categories=WARDS),
        DPColumn("sex", "object", categories=("F", "M")),
        DPColumn("los_days", "float64", bounds=(0.0, 365.0)),
        DPColumn("age", "int64", bounds=(0, 120)),
        DPColumn("cost", "float64", bounds=(-100.0, 1000.0)),
        DPColumn("notes", "object"),
    ),
)
SUPPORTED_FORM = "A DP query has the form"
KS_ALPHA = 1e-8  # per test; a handful of tests keeps the total far below 1e-6
Z = 6.0  # six standard errors: two-sided normal tail ~2e-9


def _patients(n: int = 600, seed: int = 1) -> pd.DataFrame:
    """Two rows per patient; no neuro rows; 'other' is outside the declared domain."""
    rng = np.random.default_rng(seed)  # the data is fixed; only the noise is random
    return pd.DataFrame(
        {
            "patient_id": np.arange(n) // 2,
            "ward": rng.choice(["cardio", "onco", "other"], n),
            "sex": rng.choice(["F", "M"], n),
            "los_days": rng.exponential(5.0, n),
            "age": rng.integers(0, 100, n),
            "cost": rng.normal(300.0, 200.0, n),
            "notes": rng.choice(np.array(["a", "b", None], dtype=object), n),
        }
    )


def _exact(plan: DPPlan, df: pd.DataFrame, table: str = "patients") -> pd.DataFrame:
    con = duckdb.connect()
    con.register(table, df)
    return con.sql(plan.sql).df()


def _vectors(plan: DPPlan, df: pd.DataFrame) -> dict[str, np.ndarray]:
    """Each exact aggregate as a vector over all the plan's cells (absent groups are 0)."""
    exact = _exact(plan, df)
    index = {cell: i for i, cell in enumerate(plan.cells)}
    keys = exact[list(plan.keys)].astype(object).where(exact[list(plan.keys)].notna(), None)
    rows = list(keys.itertuples(index=False)) if plan.keys else [()]
    out = {}
    for agg in plan.aggregates:
        vector = np.zeros(len(index), dtype=np.int64)
        for row, value in zip(rows, exact[agg.column], strict=True):
            vector[index[tuple(row)]] = value
        out[agg.column] = vector
    return out


def _l1(plan: DPPlan, a: pd.DataFrame, b: pd.DataFrame) -> dict[str, int]:
    va, vb = _vectors(plan, a), _vectors(plan, b)
    return {c: int(np.abs(va[c] - vb[c]).sum()) for c in va}


# --- planning and the released table ---------------------------------------------------


def test_plan_names_measures_and_survives_json() -> None:
    plan = plan_dp_query(
        "SELECT ward, COUNT(*), AVG(los_days), SUM(age) AS total, MEAN(cost), COUNT(notes) "
        "FROM patients GROUP BY ward ORDER BY ward",
        SCHEMA,
        epsilon=0.5,
    )
    assert plan.keys == ("ward",)
    assert [m.name for m in plan.measures] == [
        "count",
        "avg_los_days",
        "total",
        "avg_cost",
        "count_notes",
    ]
    assert plan.mechanism == "laplace" and plan.delta == 0.0 and 0 < plan.epsilon <= 0.5
    assert plan.order_by == (("ward", False),)
    stored = json.dumps(plan.to_dict())
    assert DPPlan.from_dict(json.loads(stored)) == plan


def test_release_has_one_row_per_declared_group_with_intervals() -> None:
    df = _patients()
    plan = plan_dp_query(
        "SELECT ward, COUNT(*), AVG(los_days) FROM patients GROUP BY ward", SCHEMA, epsilon=1.0
    )
    exact = _exact(plan, df)
    assert set(exact["ward"]) == {"cardio", "onco"}  # 'other' dropped, neuro has no rows
    release = release_dp(plan, exact)
    frame = release.frame
    assert list(frame["ward"]) == list(WARDS)  # neuro is released too, with noise
    assert list(frame.columns) == [
        "ward",
        "count",
        "count_ci_low",
        "count_ci_high",
        "avg_los_days",
        "avg_los_days_ci_low",
        "avg_los_days_ci_high",
    ]
    assert (frame["count_ci_low"] <= frame["count"]).all()
    assert (frame["count"] <= frame["count_ci_high"]).all()
    avg = frame["avg_los_days"].dropna()
    assert ((avg >= 0) & (avg <= 365)).all()
    assert release.noise_scale["count"] == plan.aggregates[0].scale
    info = release.info()
    assert json.loads(json.dumps(info)) == info
    assert info["confidence"] == 0.95 and info["epsilon"] == plan.epsilon
    assert info["columns"] == list(frame.columns)


def test_out_of_domain_rows_are_dropped_before_anything_counts() -> None:
    df = _patients()
    inside = df[df["ward"] != "other"]
    for schema in (SCHEMA, replace(SCHEMA, privacy_unit="patient_id", max_contributions=2)):
        plan = plan_dp_query(
            "SELECT ward, sex, COUNT(*), SUM(cost) FROM patients GROUP BY ward, sex",
            schema,
            epsilon=1.0,
        )
        assert _l1(plan, df, inside) == {a.column: 0 for a in plan.aggregates}
    capped = replace(SCHEMA, privacy_unit="patient_id", max_contributions=2, needs_cap=True)
    plan = plan_dp_query("SELECT ward, COUNT(*) FROM patients GROUP BY ward", capped, epsilon=1)
    assert _l1(plan, df, inside) == {plan.aggregates[0].column: 0}  # <= 2 rows each already


def test_a_null_key_counts_when_the_domain_declares_it() -> None:
    schema = replace(
        SCHEMA,
        columns=(*SCHEMA.columns[:1], DPColumn("ward", "object", categories=("cardio", None))),
    )
    df = pd.DataFrame({"patient_id": [1, 2, 3, 4], "ward": ["cardio", None, None, "onco"]})
    plan = plan_dp_query("SELECT ward, COUNT(*) FROM patients GROUP BY ward", schema, epsilon=1)
    assert _vectors(plan, df)["__rds_a0"].tolist() == [1, 2]
    assert release_dp(plan, _exact(plan, df)).frame["ward"].tolist() == ["cardio", None]


def test_where_filters_rows_and_counts_match_pandas() -> None:
    df = _patients()
    plan = plan_dp_query(
        "SELECT COUNT(*), COUNT(notes), COUNT(age) FROM patients AS p WHERE p.age > 50",
        SCHEMA,
        epsilon=1.0,
    )
    assert len(plan.aggregates) == 2  # COUNT(age) is COUNT(*): int64 cannot be null
    exact = _exact(plan, df)
    old = df[df["age"] > 50]
    assert exact.iloc[0].tolist() == [len(old), int(old["notes"].notna().sum())]


def test_order_by_is_applied_after_the_noise() -> None:
    df = _patients()
    for query, by, ascending in [
        ("SELECT ward, COUNT(*) AS n FROM patients GROUP BY ward ORDER BY n DESC", "n", False),
        ("SELECT ward, COUNT(*) FROM patients GROUP BY 1 ORDER BY 1", "ward", True),
    ]:
        plan = plan_dp_query(query, SCHEMA, epsilon=1.0)
        frame = release_dp(plan, _exact(plan, df)).frame
        assert frame[by].tolist() == sorted(frame[by], reverse=not ascending)


def test_an_average_with_no_usable_count_is_nan_with_the_bounds_as_interval() -> None:
    wards = tuple(f"w{i}" for i in range(200))
    schema = replace(
        SCHEMA, columns=(DPColumn("ward", "object", categories=wards), SCHEMA.columns[4])
    )
    df = pd.DataFrame({"ward": ["w0"] * 50, "age": [40] * 50})  # 199 groups are empty
    plan = plan_dp_query(
        "SELECT ward, COUNT(*), AVG(age) FROM patients GROUP BY ward", schema, epsilon=1
    )
    frame = release_dp(plan, _exact(plan, df)).frame
    empty = frame["count"] <= 0
    assert empty.sum() > 0  # P(no noisy count <= 0 among 199 empty groups) < 2**-199
    assert frame.loc[empty, "avg_age"].isna().all()
    assert (frame.loc[empty, "avg_age_ci_low"] == 0).all()
    assert (frame.loc[empty, "avg_age_ci_high"] == 120).all()
    known = frame.loc[~empty, "avg_age"]
    assert known.between(0, 120).all()


# --- refusals --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "match"),
    [
        ("SELECT COUNT(*) FROM patients a JOIN patients b ON a.age = b.age", "joins"),
        ("SELECT COUNT(*) FROM patients, patients", "joins"),
        ("SELECT COUNT(*) FROM (SELECT * FROM patients)", "FROM must name the dataset"),
        ("SELECT COUNT(*) FROM read_csv('/etc/passwd')", "FROM must name the dataset"),
        ("SELECT COUNT(*) FROM visits", "the table 'visits'"),
        ("SELECT COUNT(*) FROM patients WHERE age > (SELECT AVG(age) FROM patients)", "subq"),
        ("SELECT COUNT(*) FROM patients WHERE EXISTS (SELECT 1 FROM patients)", "subqueries"),
        ("WITH p AS (SELECT * FROM patients) SELECT COUNT(*) FROM p", "CTEs"),
        ("SELECT ward, COUNT(*) FROM patients GROUP BY ward HAVING COUNT(*) > 5", "HAVING"),
        ("SELECT COUNT(*) FROM patients LIMIT 1", "LIMIT"),
        ("SELECT COUNT(*) FROM patients OFFSET 1", "OFFSET"),
        ("SELECT DISTINCT ward FROM patients", "SELECT DISTINCT"),
        ("SELECT COUNT(DISTINCT ward) FROM patients", "DISTINCT inside COUNT"),
        ("SELECT AVG(age) OVER () FROM patients", "window functions"),
        ("SELECT COUNT(*) FROM patients QUALIFY 1 = 1", "QUALIFY"),
        ("SELECT COUNT(*) FROM patients TABLESAMPLE 10%", "TABLESAMPLE"),
        ("SELECT SUM(age + 1) FROM patients", "inside SUM: its bounds are unknown"),
        ("SELECT AVG(age * 2) FROM patients", "inside AVG: its bounds are unknown"),
        ("SELECT SUM(patient_id) FROM patients", "no declared numeric bounds"),
        ("SELECT AVG(notes) FROM patients", "no declared numeric bounds"),
        ("SELECT MAX(age) FROM patients", "only COUNT, SUM and AVG"),
        ("SELECT median(age) FROM patients", "only COUNT, SUM and AVG"),
        ("SELECT SUM(age) FILTER (WHERE age > 3) FROM patients", "FILTER"),
        ("SELECT age, COUNT(*) FROM patients GROUP BY age", "no public category domain"),
        ("SELECT COUNT(*) FROM patients GROUP BY notes", "no public category domain"),
        ("SELECT COUNT(*) FROM patients GROUP BY upper(ward)", "use a plain column"),
        ("SELECT ward, COUNT(*) FROM patients GROUP BY ALL", "GROUP BY ALL"),
        ("SELECT COUNT(*) FROM patients GROUP BY ROLLUP (ward)", "ROLLUP"),
        ("SELECT age, COUNT(*) FROM patients GROUP BY ward", "which is not a key"),
        ("SELECT ward, COUNT(*) FROM patients", "which is not a key"),
        ("SELECT 1, COUNT(*) FROM patients", "which is not a key"),
        ("SELECT ward AS w, COUNT(*) FROM patients GROUP BY ward", "alias on the key"),
        ("SELECT * FROM patients", "which is not a key"),
        ("SELECT ward FROM patients GROUP BY ward", "no COUNT, SUM or AVG"),
        ("SELECT COUNT(*), COUNT(*) FROM patients", "duplicate"),
        ("SELECT COUNT(*) AS count_ci_low, COUNT(*) FROM patients", "duplicate"),
        ("SELECT ward, COUNT(*) FROM patients GROUP BY ward ORDER BY age", "ORDER BY age"),
        ("SELECT SUM(x.age) FROM patients", "of another table"),
        ("SELECT SUM(weight) FROM patients", "unknown column 'weight'"),
        ("SELECT COUNT(*) FROM patients WHERE AVG(age) > 3", "aggregates in WHERE"),
        ("SELECT COUNT(*) FROM patients WHERE setseed(0.5) IS NULL", "setseed"),
        ("SELECT COUNT(*) FROM patients WHERE age = 42 AND error('x') IS NULL", "error"),
        ("SELECT COUNT(*) FROM patients WHERE getenv('HOME') = 'x'", "getenv"),
        ("SELECT COUNT(*) FROM patients UNION SELECT COUNT(*) FROM patients", "UNION"),
        ("DELETE FROM patients", "DELETE"),
        ("SELEC COUNT(*) FROM patients", "does not parse|Refused"),
        ("", "empty"),
    ],
)
def test_unsupported_shapes_are_refused_showing_the_supported_form(query: str, match: str) -> None:
    with pytest.raises(InvalidInput, match=match) as refused:
        plan_dp_query(query, SCHEMA, epsilon=1.0)
    assert SUPPORTED_FORM in str(refused.value)


@pytest.mark.parametrize(
    ("budget", "match"),
    [
        ({"epsilon": 0.0}, "epsilon must be finite and > 0"),
        ({"epsilon": -1.0}, "epsilon must be finite and > 0"),
        ({"epsilon": math.inf}, "epsilon must be finite and > 0"),
        ({"epsilon": math.nan}, "epsilon must be finite and > 0"),
        ({"epsilon": True}, "epsilon must be a number"),
        ({"epsilon": "1"}, "epsilon must be a number"),
        ({"epsilon": 1.0, "delta": -1e-9}, r"delta must be in \[0, 0\.001\]"),
        ({"epsilon": 1.0, "delta": 1.0}, r"delta must be in \[0, 0\.001\]"),
        ({"epsilon": 1.0, "delta": math.nan}, r"delta must be in \[0, 0\.001\]"),
        # Near 1, δ would calibrate the noise to ε = 0: a plan that cannot be released.
        ({"epsilon": 1.0, "delta": 0.999999}, r"delta must be in \[0, 0\.001\]"),
        ({"epsilon": 1.0, "delta": 0.0011}, r"usual values"),
    ],
)
def test_budgets_outside_the_valid_range_are_refused(budget: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        plan_dp_query("SELECT COUNT(*) FROM patients", SCHEMA, **budget)


@pytest.mark.parametrize(
    ("schema", "match"),
    [
        (replace(SCHEMA, needs_cap=True), "needs_cap requires a privacy_unit"),
        (replace(SCHEMA, privacy_unit="nobody"), "not a column"),
        (replace(SCHEMA, max_contributions=0), "max_contributions"),
        (DPSchema("patients", (DPColumn("x", "float64", bounds=(1.0, 1.0)),)), "low < high"),
        (DPSchema("patients", (DPColumn("x", "float64", bounds=(0, math.inf)),)), "finite"),
        (DPSchema("patients", (DPColumn("k", "object", categories=("a", 1)),)), "distinct"),
        (DPSchema("patients", (DPColumn("k", "float64", categories=(math.nan,)),)), "distinct"),
        (DPSchema("patients", (DPColumn("k", "object", categories=("a", "a")),)), "distinct"),
    ],
)
def test_unusable_schemas_are_refused(schema: DPSchema, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        plan_dp_query("SELECT COUNT(*) FROM patients", schema, epsilon=1.0)


def test_numpy_category_values_are_accepted_as_plain_values() -> None:
    schema = DPSchema("t", (DPColumn("k", "int64", categories=tuple(np.arange(3))),))
    plan = plan_dp_query("SELECT k, COUNT(*) FROM t GROUP BY k", schema, epsilon=1.0)
    assert plan.domains == ((0, 1, 2),) and json.dumps(plan.to_dict())


# --- the exact frame comes from a sandbox: strict checks --------------------------------


def _tamper(exact: pd.DataFrame, how: str) -> Any:
    bad = exact.copy()
    count, total = "__rds_a0", "__rds_a1"
    if how == "columns":
        return bad[["ward", total, count]]
    if how == "extra":
        return bad.assign(extra=1)
    if how == "duplicate":
        return pd.concat([bad, bad.iloc[:1]], ignore_index=True)
    if how == "outside":
        return bad.assign(ward=["cardio", "unknown"])
    if how == "float":
        return bad.assign(**{count: bad[count].astype(float)})
    if how == "negative":
        return bad.assign(**{count: -bad[count]})
    if how == "unclamped":
        return bad.assign(**{total: bad[total] * 1000})
    if how == "null":
        return bad.assign(**{count: pd.array([None, 1], dtype="Int64")})
    return bad.to_dict()


@pytest.mark.parametrize(
    ("how", "match"),
    [
        ("columns", "the plan expects"),
        ("extra", "the plan expects"),
        ("duplicate", "more than once|rows for"),
        ("outside", "outside the domain"),
        ("float", "must be integers"),
        ("negative", "negative count"),
        ("unclamped", "not a sum of clamped values"),
        ("null", "must be integers without nulls"),
        ("dict", "the plan expects"),
    ],
)
def test_release_refuses_an_exact_result_that_is_not_what_the_plan_computes(
    how: str, match: str
) -> None:
    df = _patients()
    plan = plan_dp_query(
        "SELECT ward, COUNT(*), SUM(age) FROM patients GROUP BY ward", SCHEMA, epsilon=1
    )
    exact = _exact(plan, df).sort_values("ward", ignore_index=True)
    with pytest.raises(InvalidInput, match=match):
        release_dp(plan, _tamper(exact, how))


def test_release_refuses_uncalibrated_or_cheapened_plans() -> None:
    df = _patients()
    query = "SELECT ward, COUNT(*) FROM patients GROUP BY ward"
    with pytest.raises(InvalidInput, match="not calibrated"):
        release_dp(parse_dp_query(query, SCHEMA), df)
    plan = plan_dp_query(query, SCHEMA, epsilon=1.0)
    cheap = replace(plan, aggregates=tuple(replace(a, scale=a.scale / 2) for a in plan.aggregates))
    with pytest.raises(InvalidInput, match="more than its recorded epsilon"):
        release_dp(cheap, _exact(plan, df))


# --- sensitivity: clamping and caps bound what one individual changes -------------------


QUERY = (
    "SELECT ward, COUNT(*), SUM(los_days), SUM(cost), COUNT(los_days) FROM patients GROUP BY ward"
)


def _extreme_rows(patient: int, rows: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "patient_id": [patient] * rows,
            "ward": [WARDS[i % 3] for i in range(rows)],
            "sex": ["F"] * rows,
            "los_days": [1e12 if i % 2 else math.inf for i in range(rows)],
            "age": [1000] * rows,
            "cost": [-1e12] * rows,
            "notes": [None] * rows,
        }
    )


def test_one_added_row_changes_each_aggregate_by_at_most_its_sensitivity() -> None:
    df = _patients()
    plan = plan_dp_query(QUERY, SCHEMA, epsilon=1.0)
    sensitivity = {a.column: a.sensitivity for a in plan.aggregates}
    moved = _l1(plan, df, pd.concat([df, _extreme_rows(10_000, 1)], ignore_index=True))
    assert moved == sensitivity | {"__rds_a2": moved["__rds_a2"]}  # los_days: tight
    cost = next(a for a in plan.aggregates if a.source == "cost")
    assert cost.clamp is not None
    assert moved[cost.column] == -cost.clamp[0] < cost.sensitivity  # clamped to -100
    nan_row = _extreme_rows(10_001, 1).assign(los_days=math.nan)
    moved = _l1(plan, df, pd.concat([df, nan_row], ignore_index=True))
    assert moved["__rds_a1"] == 0 and moved["__rds_a3"] == 0  # NaN is missing, not summed


def test_k_rows_of_one_unit_stay_within_k_times_the_row_bound() -> None:
    df = _patients()
    schema = replace(SCHEMA, privacy_unit="patient_id", max_contributions=3)
    plan = plan_dp_query(QUERY, schema, epsilon=1.0)
    sensitivity = {a.column: a.sensitivity for a in plan.aggregates}
    assert sensitivity["__rds_a0"] == 3
    moved = _l1(plan, df, pd.concat([df, _extreme_rows(10_000, 3)], ignore_index=True))
    assert all(moved[c] <= sensitivity[c] for c in moved)
    assert moved["__rds_a0"] == 3 and moved["__rds_a1"] == sensitivity["__rds_a1"]


def test_the_cap_bounds_a_unit_with_many_rows_and_nothing_else_would() -> None:
    df = _patients()
    capped = replace(SCHEMA, privacy_unit="patient_id", max_contributions=2, needs_cap=True)
    plan = plan_dp_query(QUERY, capped, epsilon=1.0)
    sensitivity = {a.column: a.sensitivity for a in plan.aggregates}
    neighbour = pd.concat([df, _extreme_rows(10_000, 50)], ignore_index=True)
    for _ in range(5):  # the cap picks rows at random
        moved = _l1(plan, df, neighbour)
        assert all(moved[c] <= sensitivity[c] for c in moved)
    # removing a unit: every other unit has <= k rows, so the random cap keeps all of
    # theirs in both runs (the bound holds for a coupling of the cap's draws, not for two
    # independent draws of another heavy unit)
    heavy = pd.concat([df, _extreme_rows(7, 40)], ignore_index=True)
    moved = _l1(plan, heavy, heavy[heavy.patient_id != 7])
    assert all(moved[c] <= sensitivity[c] for c in moved)
    trusting = plan_dp_query(QUERY, replace(capped, needs_cap=False), epsilon=1.0)
    assert {a.sensitivity for a in trusting.aggregates} == set(sensitivity.values())
    moved = _l1(trusting, df, neighbour)  # the same bound, claimed without the cap: broken
    assert moved["__rds_a0"] == 50 > sensitivity["__rds_a0"]
    assert moved["__rds_a1"] > sensitivity["__rds_a1"]


# --- accounting -------------------------------------------------------------------------


def test_epsilon_is_opendps_composed_map_split_evenly_and_never_above_the_request() -> None:
    for epsilon in (0.01, 0.3, 1.0, 7.0):
        plan = plan_dp_query(QUERY, SCHEMA, epsilon=epsilon)
        assert plan.epsilon == build_measurement(plan).map(1) <= epsilon
        assert plan.epsilon >= epsilon * (1 - 1e-9)
        costs = [a.sensitivity / a.scale for a in plan.aggregates]
        assert len(plan.aggregates) == 4  # float64 may be NaN: COUNT(los_days) is its own
        assert max(costs) - min(costs) <= 1e-12 * max(costs)  # an even split
        assert math.isclose(sum(costs), plan.epsilon, rel_tol=1e-9)


def test_noise_shrinks_as_epsilon_grows() -> None:
    query = "SELECT ward, COUNT(*), AVG(age) FROM patients GROUP BY ward"
    scales = [plan_dp_query(query, SCHEMA, epsilon=e).aggregates[0].scale for e in (0.1, 1, 10)]
    assert scales[0] > scales[1] > scales[2]
    assert math.isclose(scales[0], 10 * scales[1]) and math.isclose(scales[1], 10 * scales[2])


def test_delta_gives_gaussian_noise_accounted_by_opendp() -> None:
    import opendp.prelude as dp

    plan = plan_dp_query(QUERY, SCHEMA, epsilon=1.0, delta=1e-6)
    assert plan.mechanism == "gaussian" and plan.delta == 1e-6
    epsilon, delta = build_measurement(plan).map(1)
    assert plan.epsilon == epsilon <= 1.0 and delta == 1e-6
    assert plan.epsilon > 0.999  # the closed-form start wastes almost nothing
    # the same total rho on a single OpenDP Gaussian gives the same (epsilon, delta)
    rho = sum(a.sensitivity**2 / (2 * a.scale**2) for a in plan.aggregates)
    dp.enable_features("contrib")
    space = dp.atom_domain(T=float, nan=False), dp.absolute_distance(T=float)
    single = dp.m.make_gaussian(*space, scale=math.sqrt(1 / (2 * rho)))
    single = dp.c.make_fix_delta(dp.c.make_zCDP_to_approxDP(single), 1e-6)
    assert math.isclose(single.map(1.0)[0], plan.epsilon, rel_tol=1e-6)
    for no_delta in (None, 0, 0.0):
        assert plan_dp_query(QUERY, SCHEMA, epsilon=1.0, delta=no_delta).mechanism == "laplace"


# --- the noise has the promised distribution --------------------------------------------

GROUPS = 20_000


def _noise_table() -> tuple[DPSchema, pd.DataFrame]:
    g = np.repeat(np.arange(GROUPS), 1 + np.arange(GROUPS) % 3)
    x = np.random.default_rng(2).integers(0, 11, len(g))
    schema = DPSchema(
        "t",
        (
            DPColumn("g", "int64", categories=tuple(range(GROUPS))),
            DPColumn("x", "int64", bounds=(0, 10)),
        ),
    )
    return schema, pd.DataFrame({"g": g, "x": x})


def _ks_pvalue(sample: np.ndarray, cdf: Any) -> float:
    """KS test of an integer sample against a discrete CDF (conservative for discrete laws).

    Between sample points the ECDF is flat and the CDF only grows at integers, so the
    supremum is at a sample point u: |ECDF(u) - F(u)| or |ECDF(u-) - F(u - 1)|.
    """
    values, counts = np.unique(sample, return_counts=True)
    above = np.cumsum(counts) / len(sample)
    below = above - counts / len(sample)
    d = max(np.abs(above - cdf(values)).max(), np.abs(below - cdf(values - 1)).max())
    return float(stats.kstwo.sf(d, len(sample)))


def _laplace_cdf(b: float) -> Any:
    q = math.exp(-1 / b)
    return lambda x: np.where(
        x >= 0, 1 - np.exp(-(x + 1) / b) / (1 + q), np.exp(np.minimum(x, 0) / b) / (1 + q)
    )


def _gaussian_law(sigma: float) -> tuple[Any, float]:
    """CDF and variance of the discrete Gaussian, summed exactly over its support."""
    if sigma > 1e4:  # the continuity-corrected normal is then exact to ~1/(24 sigma^2)
        return (lambda x: stats.norm.cdf((x + 0.5) / sigma)), sigma**2
    support = np.arange(-math.ceil(40 * sigma), math.ceil(40 * sigma) + 1)
    pmf = np.exp(-(support.astype(float) ** 2) / (2 * sigma**2))
    pmf /= pmf.sum()
    cdf = np.cumsum(pmf)

    def law(x: np.ndarray) -> np.ndarray:
        return np.where(x < support[0], 0.0, cdf[np.clip(x - support[0], 0, len(cdf) - 1)])

    return law, float((pmf * support**2).sum())


def _noise(delta: float | None) -> tuple[DPPlan, pd.DataFrame, dict[str, np.ndarray]]:
    schema, df = _noise_table()
    plan = plan_dp_query(
        "SELECT g, COUNT(*), SUM(x), AVG(x) FROM t GROUP BY g", schema, epsilon=1, delta=delta
    )
    exact = _exact(plan, df, "t").sort_values("g", ignore_index=True)
    frame = release_dp(plan, exact).frame
    assert frame["g"].tolist() == list(range(GROUPS))
    count, total = plan.aggregates
    noise = {
        "count": frame["count"].to_numpy() - exact[count.column].to_numpy(),
        "sum": np.rint(frame["sum_x"].to_numpy() / total.unit).astype(np.int64)
        - exact[total.column].to_numpy(),
    }
    return plan, pd.concat([exact, frame], axis=1), noise


def test_laplace_noise_has_the_promised_scale_and_shape() -> None:
    plan, table, noise = _noise(None)
    for (name, sample), agg in zip(noise.items(), plan.aggregates, strict=True):
        b = agg.scale
        q_complement = -math.expm1(-1 / b)  # 1 - q without cancellation
        q = 1 - q_complement
        mad = 2 * q / (q_complement * (1 + q))  # E|X| of the discrete Laplace
        second = 2 * q / q_complement**2  # E X^2
        se = math.sqrt((second - mad**2) / GROUPS)
        assert abs(np.abs(sample).mean() - mad) < Z * se, name
        assert _ks_pvalue(sample, _laplace_cdf(b)) > KS_ALPHA, name
    _check_coverage(plan, table)


def test_gaussian_noise_has_the_promised_scale_and_shape() -> None:
    plan, table, noise = _noise(1e-6)
    for (name, sample), agg in zip(noise.items(), plan.aggregates, strict=True):
        cdf, variance = _gaussian_law(agg.scale)
        se = variance * math.sqrt(2 / (GROUPS - 1))  # of the sample variance, normal data
        assert abs(sample.astype(float).var(ddof=1) - variance) < Z * se, name
        assert _ks_pvalue(sample, cdf) > KS_ALPHA, name
    _check_coverage(plan, table)


def _check_coverage(plan: DPPlan, table: pd.DataFrame) -> None:
    count, total = plan.aggregates
    exact_avg = table[total.column] * total.unit / table[count.column]
    floor = 0.95 - Z * math.sqrt(0.95 * 0.05 / GROUPS)
    for name, truth in [
        ("count", table[count.column]),
        ("sum_x", table[total.column] * total.unit),
        ("avg_x", exact_avg),
    ]:
        inside = (table[f"{name}_ci_low"] <= truth) & (truth <= table[f"{name}_ci_high"])
        assert inside.mean() >= floor, name


@pytest.mark.parametrize("epsilon", [0.05, 0.7, 3.0, 12.0])
@pytest.mark.parametrize("delta", [None, 1e-6])
def test_intervals_cover_at_least_95_percent_exactly(epsilon: float, delta: float | None) -> None:
    df = _patients()
    plan = plan_dp_query("SELECT COUNT(*) FROM patients", SCHEMA, epsilon=epsilon, delta=delta)
    frame = release_dp(plan, _exact(plan, df)).frame
    h = int(frame["count_ci_high"].iloc[0] - frame["count"].iloc[0])
    scale = plan.aggregates[0].scale
    if delta is None:
        q = math.exp(-1 / scale)
        outside = 2 * q ** (h + 1) / (1 + q)  # P(|X| >= h + 1) for the discrete Laplace
    else:
        cdf, _ = _gaussian_law(scale)
        outside = 2 * (1 - float(cdf(np.array([h]))[0]))
    assert outside <= 0.05
