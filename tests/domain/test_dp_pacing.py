"""A DP answer released by policy tells nothing through when it comes or whether its run failed.

How long a DP run takes and whether it fits its memory depend on the private rows (how many
a condition keeps, how many rows each person has before the cap). A served domain's worker
releases each DP answer exactly ``WorkerLimits.dp_allowance(rows)`` after the pickup, and a
run that fails or overruns is answered as a table with no rows: the scientist sees the same
thing at the same moment either way. Real sandbox, real DuckDB, real OpenDP.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import rds
from tests.conftest import forge

ROWS = 300_000
QUERY = "SELECT k, COUNT(*) AS n, SUM(v) AS s FROM big{where} GROUP BY k"


def _big() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    return pd.DataFrame(
        {
            "p": rng.integers(0, ROWS // 3, ROWS),
            "k": rng.integers(0, 4, ROWS),
            "v": rng.normal(size=ROWS).clip(-5, 5),
        }
    )


def _domain(path: Path, limits: rds.WorkerLimits) -> tuple[rds.Domain, rds.Session]:
    domain = rds.Domain.create("Paced", path=path, worker_limits=limits)
    domain.publish(
        "big",
        _big(),
        description="a big table",
        mock_rows=50,
        policy=rds.Policy(auto_release="dp", epsilon_budget=10.0),
        bounds={"v": (-5, 5)},
        categories={"k": [0, 1, 2, 3]},
        privacy_unit="p",
        max_contributions=2,
    )
    creds = domain.add_scientist("mallory@uni.example.org")
    return domain, rds.connect(domain, email=creds.email, password=creds.password)


def _hand_in(session: rds.Session, sql: str) -> str:
    """Submitted without the embedded domain's own at-once auto-release: the worker's turn."""
    meta = {"v": 1, "kind": "dp", "sql": sql, "datasets": ["big"], "dataset": "big"}
    return forge(session, meta | {"reason": "timing", "epsilon": 0.1, "delta": 0.0}, ["big"])


@pytest.fixture(scope="module")
def paced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[rds.Domain, rds.Session]]:
    limits = rds.WorkerLimits(dp_seconds=4.0, dp_seconds_per_million_rows=4.0)
    domain, session = _domain(tmp_path_factory.mktemp("paced") / "d", limits)
    yield domain, session
    domain.close()


def test_the_answer_comes_at_its_allowance_however_much_the_condition_keeps(paced: Any) -> None:
    domain, session = paced
    allowance = domain.worker_limits.dp_allowance(ROWS)
    assert allowance == pytest.approx(5.2)
    took = {}
    for label, where in (("keeps every row", ""), ("keeps none", " WHERE v > 99")):
        request_id = _hand_in(session, QUERY.format(where=where))
        started = time.monotonic()
        assert domain.auto_release(request_id, paced=True) == "released"
        took[label] = time.monotonic() - started
        (ran,) = domain.ledger.events(event="ran", request=request_id)
        assert "fallback" not in ran.data  # both runs finished in time: the wait is padding
    print(f"\nrelease after pickup: {took} (allowance {allowance:.1f} s)")
    assert all(t >= allowance for t in took.values())
    # Only the bookkeeping after the allowance (a ledger entry, the deposit) is left to vary.
    assert abs(took["keeps every row"] - took["keeps none"]) < 1.5


def test_a_run_that_overruns_is_answered_as_no_rows_and_looks_the_same(
    paced: Any, tmp_path: Path
) -> None:
    """The twin has an allowance too short for any run (0.2 s was not: a warm jail answered
    in time on a quiet machine): its run is stopped."""
    domain, session = paced
    tight = rds.WorkerLimits(dp_seconds=0.01, dp_seconds_per_million_rows=0.001)
    twin, twin_session = _domain(tmp_path / "twin", tight)
    try:
        seen, ran = [], []
        for owner, scientist in ((domain, session), (twin, twin_session)):
            request_id = _hand_in(scientist, QUERY.format(where=""))
            assert owner.auto_release(request_id, paced=True) == "released"
            (entry,) = owner.ledger.events(event="ran", request=request_id)
            ran.append(entry.data)
            req = next(r for r in scientist.requests if r.id == request_id)
            answer = req.result(timeout=30, progress=False)
            privacy = req.privacy or {}
            seen.append(
                (
                    req.status,
                    list(answer.columns),
                    sorted(answer["k"]),
                    req.checks.to_frame().to_dict("records") if req.checks else None,
                    {k: v for k, v in privacy.items() if k != "coverage"},
                )
            )
        assert seen[0] == seen[1]  # what the scientist can read, byte for byte the same
        assert "fallback" not in ran[0]
        assert ran[1].get("fallback", {}).get("error_type"), ran[1]  # the owner is told why
    finally:
        twin.close()


def test_the_answer_for_no_rows_has_every_declared_cell() -> None:
    from rds.dp.mechanism import DPColumn, DPSchema, no_rows, plan_dp_query, release_dp

    schema = DPSchema("t", (DPColumn("k", "int64", categories=(0, 1)),))
    plan = plan_dp_query("SELECT k, COUNT(*) AS n FROM t GROUP BY k", schema, epsilon=1.0)
    frame = release_dp(plan, no_rows(plan)).frame
    assert sorted(frame["k"]) == [0, 1] and list(frame.columns)[:2] == ["k", "n"]
    total = plan_dp_query("SELECT COUNT(*) AS n FROM t", schema, epsilon=1.0)
    assert len(release_dp(total, no_rows(total)).frame) == 1
