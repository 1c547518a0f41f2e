"""``ds.sql(query, epsilon=..., dry_run=True)``: the expected error, before anything is sent.

The preview is a pure function of the plan (``preview_error``); the dry run plans on the
public metadata as a submission would and returns it without submitting, spending or
reading anything. Its half-widths are the released intervals' half-widths.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import rds
from rds.dp.mechanism import (
    PREVIEW_COUNTS,
    DPColumn,
    DPPreview,
    DPSchema,
    plan_dp_query,
    preview_error,
    release_dp,
)
from rds.worker.runs import dp_schema
from tests.conftest import patients

QUERY = (
    "SELECT ward, COUNT(*) AS n, SUM(los_days) AS total, AVG(los_days) AS mean "
    "FROM patients GROUP BY ward"
)
WARDS = ["cardio", "onco", "neuro", "icu"]


@pytest.fixture
def domain(tmp_path: Path) -> Iterator[rds.Domain]:
    domain = rds.Domain.create("DP Preview", path=tmp_path / "domain")
    domain.publish(
        "patients",
        patients(),
        bounds={"age": (0, 120), "los_days": (0, 100)},
        categories={"ward": WARDS},
        policy=rds.Policy(epsilon_budget=1.0, auto_release="dp"),
    )
    yield domain
    domain.close()


@pytest.fixture
def session(domain: rds.Domain) -> rds.Session:
    creds = domain.add_scientist("ada@uni.example.org")
    return rds.connect(domain, email=creds.email, password=creds.password)


def test_a_dry_run_spends_nothing_submits_nothing_and_reads_no_data(
    domain: rds.Domain, session: rds.Session
) -> None:
    ds = session.dataset("patients")
    before = session.budget("patients")
    preview = ds.sql(QUERY, epsilon=0.5, dry_run=True)
    assert isinstance(preview, DPPreview)
    assert session.budget("patients") == before and before.spent == before.pending == 0
    assert list(domain.requests) == [] and list(session.requests) == []
    assert not [e for e in domain.ledger.entries() if e.event.startswith("epsilon")]
    assert ds._mock is None  # not even the mock was fetched
    # it is what the owner's side would plan for the submission
    owner_plan = plan_dp_query(QUERY, dp_schema(domain, "patients"), epsilon=0.5)
    pd.testing.assert_frame_equal(preview.table, preview_error(owner_plan).table)
    assert preview.groups == len(WARDS) and preview.epsilon <= 0.5
    assert list(preview.table["measure"]) == ["n", "total", "mean"]
    # los_days has no missing values: the mean divides by the same noisy count as n
    assert len(preview.plan.aggregates) == 2
    assert "nothing was run or spent" in repr(preview)
    with pytest.raises(rds.InvalidInput, match="pass epsilon"):
        ds.sql(QUERY, dry_run=True)
    # refused as a submission would be: under the minimum ε, or beyond the budget
    with pytest.raises(rds.EpsilonTooSmall):
        ds.sql(QUERY, epsilon=1e-9, dry_run=True)
    with pytest.raises(rds.BudgetExceeded):
        ds.sql(QUERY, epsilon=1.5, dry_run=True)


def test_the_preview_matches_what_is_then_released(
    domain: rds.Domain, session: rds.Session
) -> None:
    ds = session.dataset("patients")
    preview = ds.sql(QUERY, epsilon=0.5, dry_run=True)
    req = ds.sql(QUERY, epsilon=0.5, reason="ward profile")  # auto-released
    answer = req.result(timeout=60, progress=False)
    table = preview.table.set_index("measure")
    for name in ("n", "total"):
        released = answer[f"{name}_ci_high"] - answer[name]
        assert np.allclose(released, table.loc[name, "halfwidth"], rtol=1e-12, atol=0)
    for _, row in answer.iterrows():  # the mean's interval, from the released count and sum
        value = row["total"] / row["n"] if row["n"] else 0.0  # icu has no rows
        expected = preview.halfwidth("mean", count=row["n"], value=value)
        got = (row["mean_ci_high"] - row["mean_ci_low"]) / 2
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_preview_error_is_the_released_half_width_in_every_group() -> None:
    groups = 5000
    schema = DPSchema(
        "t",
        (
            DPColumn("g", "int64", categories=tuple(range(groups))),
            DPColumn("x", "float64", bounds=(-50.0, 200.0), nullable=False),
        ),
    )
    for delta in (None, 1e-6):
        plan = plan_dp_query(
            "SELECT g, COUNT(*) AS n, SUM(x) AS s, AVG(x) AS a FROM t GROUP BY g",
            schema,
            epsilon=0.3,
            delta=delta,
        )
        count, total = plan.aggregates
        rng = np.random.default_rng(3)
        n = rng.integers(5, 30_000, groups)
        exact = pd.DataFrame(
            {
                "g": np.arange(groups),
                count.column: n,
                total.column: np.rint(n * rng.uniform(-50, 200, groups) / total.unit).astype(
                    np.int64
                ),
            }
        )
        frame = release_dp(plan, exact).frame
        preview = preview_error(plan)
        table = preview.table.set_index("measure")
        assert (frame["n_ci_high"] - frame["n"] == table.loc["n", "halfwidth"]).all()
        assert np.allclose(frame["s_ci_high"] - frame["s"], table.loc["s", "halfwidth"])
        width = (frame["a_ci_high"] - frame["a_ci_low"]) / 2
        mean = frame["s"] / frame["n"]
        for i in range(0, groups, 97):
            c = float(frame["n"][i])
            expected = preview.halfwidth("a", count=c, value=mean[i] if c else 0.0)
            assert width[i] == pytest.approx(expected, rel=1e-9, abs=1e-9)
        # the table's per-count figure is the widest over the bounds, so no released
        # group of at least that noisy count is wider
        for size in PREVIEW_COUNTS:
            bigger = frame["n"] >= size
            assert (width[bigger] <= table.loc["a", f"halfwidth_n{size}"] * (1 + 1e-9)).all()
        assert table.loc["a", "halfwidth_n10000"] < table.loc["a", "halfwidth_n1000"]
