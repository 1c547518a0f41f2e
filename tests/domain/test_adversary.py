"""The automatic release path against a scientist who attacks it (issue 12's classes).

Real embedded domain, real sandbox, real DuckDB and OpenDP. Each test plays an attack a red
team used and asserts that the private value is not recovered — not only that a check fires:

- differencing with exact answers (one request with two FILTER columns, or two requests):
  nothing exact leaves without the owner, and the desk shows the owner the other half;
- differencing with DP answers: the noise of the difference swamps one person's value;
- the error oracle: a DP query built to fail on one person's row is refused before any run,
  whatever the person's value, so what the scientist sees does not depend on it;
- ε arithmetic: tiny and sub-minimum ε are refused, the budget holds exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

import rds
from tests.conftest import forge

TARGET = 17  # the customer whose total the attacker wants
AMOUNT_MAX = 500.0


def _transactions(target_amount: float) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    ids = np.repeat(np.arange(300), 3)
    frame = pd.DataFrame(
        {
            "customer_id": ids,
            "region": np.where(ids % 2 == 0, "north", "south"),
            "amount": rng.uniform(1, 200, len(ids)).round(2),
        }
    )
    frame.loc[frame.customer_id == TARGET, "amount"] = target_amount / 3
    return frame


def _shop(path: Any, target_amount: float) -> tuple[rds.Domain, rds.Session]:
    domain = rds.Domain.create("Shop", path=path)
    domain.publish(
        "tx",
        _transactions(target_amount),
        description="transactions",
        bounds={"amount": (0, AMOUNT_MAX)},
        categories={"region": ["north", "south"]},
        privacy_unit="customer_id",
        max_contributions=3,
        policy=rds.Policy(auto_release="dp", epsilon_budget=3.0, on_fail="suppress"),
    )
    creds = domain.add_scientist("mallory@uni.example.org")
    return domain, rds.connect(domain, email=creds.email, password=creds.password)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[rds.Domain, rds.Session]]:
    domain, session = _shop(tmp_path_factory.mktemp("adversary") / "shop", 387.42)
    yield domain, session
    domain.close()


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[rds.Domain, rds.Session]]:
    """The same shop, except that the target spent 60.00 (20.00 a row, not 129.14)."""
    domain, session = _shop(tmp_path_factory.mktemp("adversary") / "twin", 60.0)
    yield domain, session
    domain.close()


def _forge(session: rds.Session, meta: dict[str, Any]) -> str:
    """A hand-made submission: the scientist's client checks nothing on its way."""
    return forge(session, meta, ["tx"])


def _dp_meta(sql: str, epsilon: float) -> dict[str, Any]:
    return {"v": 1, "kind": "dp", "sql": sql, "datasets": ["tx"], "dataset": "tx"} | {
        "reason": "attack",
        "epsilon": epsilon,
        "delta": 0.0,
    }


def test_exact_differencing_in_one_request_waits_for_the_owner(shop: Any) -> None:
    domain, session = shop
    sql = (
        "SELECT sum(amount) AS everyone, sum(amount) FILTER (WHERE customer_id <> 17) AS others "
        "FROM tx"
    )
    req = session.dataset("tx").sql(sql, reason="totals")
    assert domain.auto_release(req.id) is None
    assert req.status == "awaiting review"
    with pytest.raises(rds.RequestTimeout):
        req.result(timeout=1, progress=False)
    # The owner's checks cannot see the difference either; that is why a human decides.
    preview = domain.request(req.id).run()
    difference = preview.result["everyone"][0] - preview.result["others"][0]
    assert difference == pytest.approx(387.42)
    domain.request(req.id).deny("a difference of two totals is one customer's total")


def test_exact_differencing_in_two_requests_is_shown_to_the_owner(shop: Any) -> None:
    domain, session = shop
    ds = session.dataset("tx")
    first = ds.sql("SELECT region, sum(amount) AS s FROM tx GROUP BY region", reason="by region")
    second = ds.sql(
        "SELECT region, sum(amount) AS s FROM tx WHERE customer_id <> 17 GROUP BY region",
        reason="by region, again",
    )
    for req in (first, second):
        assert domain.auto_release(req.id) is None and req.status == "awaiting review"
    owner_first = domain.request(first.id)
    owner_first.run()
    owner_first.approve()
    (earlier,) = domain.request(second.id).earlier_releases()
    assert earlier.request == first.id and earlier.same_but_conditions
    assert "subtracting" in earlier.note
    # The desk shows it under the request.
    from rds.domain.desk_html import request_detail

    html = request_detail(domain, domain.request(second.id))
    assert "Already released to mallory@uni.example.org" in html and "subtracting" in html


def test_dp_differencing_does_not_recover_one_person(shop: Any) -> None:
    """Two DP sums, one without the target: the difference's 95% interval is far wider than
    the largest total a customer can have, so the answer says nothing about the target."""
    _, session = shop
    ds = session.dataset("tx")
    sql = "SELECT region, SUM(amount) AS s FROM tx WHERE region = 'south' GROUP BY region"
    with_target = ds.sql(sql.replace("'south'", "'north'"), epsilon=0.5, reason="a")
    without = ds.sql(
        sql.replace("'south'", "'north'").replace("WHERE", "WHERE customer_id <> 17 AND"),
        epsilon=0.5,
        reason="b",
    )
    a = with_target.result(timeout=60, progress=False).set_index("region").loc["north"]
    b = without.result(timeout=60, progress=False).set_index("region").loc["north"]
    half_widths = (a["s_ci_high"] - a["s_ci_low"]) / 2 + (b["s_ci_high"] - b["s_ci_low"]) / 2
    assert half_widths > 3 * AMOUNT_MAX  # one customer adds at most 3 rows of 500


ORACLES = [
    # each fails at run time only when the target's amount has some property
    "SELECT COUNT(*) AS n FROM tx WHERE CASE WHEN customer_id = 17 AND amount > 100 "
    "THEN CAST('x' AS INTEGER) ELSE 1 END = 1",
    "SELECT COUNT(*) AS n FROM tx WHERE CAST(CASE WHEN customer_id = 17 AND amount > 100 "
    "THEN 'x' ELSE '1' END AS INTEGER) = 1",
    "SELECT COUNT(*) AS n FROM tx WHERE (CASE WHEN customer_id = 17 AND amount > 100 "
    "THEN 'x' ELSE '1' END)::INTEGER = 1",
    "SELECT COUNT(*) AS n FROM tx WHERE 1 / (CASE WHEN customer_id = 17 AND amount > 100 "
    "THEN 0 ELSE 1 END) = 1",
    "SELECT COUNT(*) AS n FROM tx WHERE customer_id * (CASE WHEN amount > 100 "
    "THEN 9223372036854775807 ELSE 1 END) > 0",
    "SELECT COUNT(*) AS n FROM tx WHERE region = (CASE WHEN customer_id = 17 AND amount > 100 "
    "THEN 1 ELSE 2 END)",
]


@pytest.mark.parametrize("sql", ORACLES, ids=range(len(ORACLES)))
def test_a_dp_query_built_to_fail_on_one_row_tells_nothing(shop: Any, twin: Any, sql: str) -> None:
    """Sent by hand, past the client's own check, to two domains that differ only in whether
    the target's amount is above 100: the scientist sees the same outcome from both. A
    query that could raise is denied from the public schema alone, before any run or
    reservation; one the planner admits (division by zero is NULL, arithmetic is DOUBLE)
    cannot fail, and is released from both."""
    seen = []
    for domain, session in (shop, twin):
        request_id = _forge(session, _dp_meta(sql, 0.05))
        outcome = domain.auto_release(request_id)
        req = domain.request(request_id)
        seen.append((outcome, req.status, req.deny_reason))
        if outcome == "denied":
            assert "Refused for a DP query" in (req.deny_reason or "")
            (decision,) = domain.ledger.events(event="denied", request=request_id)
            assert decision.actor == "policy:dp_planner"
            assert not domain.ledger.events(event="ran", request=request_id)
            assert not domain.ledger.events(event="epsilon_reserved", request=request_id)
            with pytest.raises(rds.InvalidInput, match="Refused for a DP query"):
                session.dataset("tx").sql(sql, epsilon=0.05, reason="through the client")
        else:
            assert outcome == "released", (outcome, req.status)
    assert seen[0] == seen[1]


@pytest.mark.parametrize("epsilon", [1e-9, 1e-300, 0.005])
def test_epsilon_below_the_minimum_is_refused_on_both_sides(shop: Any, epsilon: float) -> None:
    domain, session = shop
    sql = "SELECT region, COUNT(*) AS n FROM tx GROUP BY region"
    with pytest.raises(rds.EpsilonTooSmall):
        session.dataset("tx").sql(sql, epsilon=epsilon, reason="tiny")
    request_id = _forge(session, _dp_meta(sql, epsilon))
    assert domain.auto_release(request_id) == "denied"
    req = domain.request(request_id)
    assert req.status == "denied" and "minimum" in (req.deny_reason or "")
    assert not domain.ledger.events(event="ran", request=request_id)


@pytest.mark.parametrize("delta", [0.5, 0.999999, 1 - 1e-12])
def test_a_delta_near_one_is_refused_by_the_planner_before_anything_is_reserved(
    shop: Any, delta: float
) -> None:
    """Near 1, δ calibrates the noise to ε = 0: such a plan is refused from the request
    alone, never left waiting with ε and δ reserved."""
    domain, session = shop
    sql = "SELECT region, COUNT(*) AS n FROM tx GROUP BY region"
    request_id = _forge(session, _dp_meta(sql, 0.5) | {"delta": delta})
    assert domain.auto_release(request_id) == "denied"
    (decision,) = domain.ledger.events(event="denied", request=request_id)
    assert decision.actor == "policy:dp_planner"
    assert "usual values" in (domain.request(request_id).deny_reason or "")
    assert not domain.ledger.events(event="epsilon_reserved", request=request_id)
    assert not domain.ledger.events(event="ran", request=request_id)


def test_every_reservation_is_settled_exactly_once(shop: Any) -> None:
    """Reserved ε comes back for a request whose run crashed before recording anything, and
    for one that failed in the sandbox; a released one is spent once; nothing stays open."""
    from rds.dp import budget

    domain, session = shop
    ds = session.dataset("tx")
    sql = "SELECT region, COUNT(*) AS n FROM tx GROUP BY region"
    crashed = _forge(session, _dp_meta(sql, 0.1))  # not yet picked up
    budget.reserve(  # what run() does first; then the process is killed
        domain.ledger,
        actor=domain.owner,
        scientist=session.email,
        dataset="tx",
        request=crashed,
        epsilon=0.1,
        delta=0.0,
        epsilon_budget=3.0,
        delta_budget=0.0,
    )
    assert crashed in budget.open_reservations(domain.ledger.entries())
    domain.request(crashed).deny("the run was lost; please resend")
    released = ds.sql(sql, epsilon=0.1, reason="fine")
    assert released.result(timeout=60, progress=False) is not None
    entries = domain.ledger.entries()
    for request_id, event in ((crashed, "epsilon_refunded"), (released.id, "epsilon_spent")):
        settled = [
            e.event
            for e in entries
            if e.event in {"epsilon_spent", "epsilon_refunded"} and e.data["request"] == request_id
        ]
        assert settled == [event], (request_id, settled)
    assert budget.open_reservations(entries) == []


def test_replicated_rows_are_not_released_and_fail_their_check(shop: Any) -> None:
    """The red team's replication: single rows, CROSS JOIN'd with a 20-row relation, grouped
    by the row — every cell "has 20 records". Nothing leaves without the owner, and the
    owner's check says the query cannot be judged cell by cell."""
    domain, session = shop
    sql = (
        "WITH top AS (SELECT customer_id, amount FROM tx ORDER BY amount DESC LIMIT 25), "
        "twenty AS (SELECT customer_id AS c FROM tx LIMIT 20) "
        "SELECT top.customer_id, top.amount, count(*) AS n FROM top CROSS JOIN twenty "
        "GROUP BY top.customer_id, top.amount"
    )
    req = session.dataset("tx").sql(sql, reason="top spenders")
    assert domain.auto_release(req.id) is None and req.status == "awaiting review"
    checks = domain.request(req.id).run().checks
    assert checks.verdict == "fail" and checks.failed[0].rule == "shape"


def test_what_the_scientist_reads_of_a_check_has_no_figure(shop: Any) -> None:
    """The suppression oracle: a query whose number of removed rows equals a private value
    (here: the target's amount in cents, as a count of one-row groups). Released by the owner
    under on_fail="suppress", the scientist's check report carries fixed sentences only."""
    domain, session = shop
    sql = "SELECT customer_id, count(*) AS n FROM tx WHERE customer_id < 40 GROUP BY customer_id"
    req = session.dataset("tx").sql(sql, reason="per customer")
    owner = domain.request(req.id)
    preview = owner.run()
    threshold = next(c for c in preview.checks.checks if c.rule == "threshold")
    assert threshold.verdict == "warn" and "40 of 40 rows" in threshold.explanation  # owner
    owner.approve(note="all rows suppressed")
    assert len(req.result(timeout=30, progress=False)) == 0
    seen = req.checks.to_dict()
    assert not any(ch.isdigit() for check in seen["checks"] for ch in check["explanation"])
    assert all(not check["numbers"] for check in seen["checks"])


def test_the_output_limit_is_no_oracle_on_how_many_groups_a_condition_keeps(
    tmp_path: Any,
) -> None:
    """The exact DP aggregate has a row per group present in the kept rows, so its size
    depends on the data; under a 1 MB output limit a red team binary-searched a condition
    to exactly the limit and read one bit per request from "failed, waits" vs "released".
    The run's output limit now comes from the plan's declared cells, so the run never hits
    it: many present groups are released like few."""
    rng = np.random.default_rng(3)
    n = 50_000
    frame = pd.DataFrame(
        {
            "pid": np.arange(n),
            "zip": rng.integers(0, 5000, n),
            "byear": rng.integers(1920, 2020, n),
            "amount": rng.uniform(0, 500, n).round(2),
        }
    )
    domain = rds.Domain.create("Limits", path=tmp_path / "limits")
    try:
        domain.publish(
            "tx",
            frame,
            bounds={"amount": (0, 500)},
            categories={"zip": list(range(5000)), "byear": list(range(1920, 2020))},
            privacy_unit="pid",
            policy=rds.Policy(
                auto_release="dp",
                epsilon_budget=3.0,
                limits=rds.SandboxLimits(output_mb=1),
            ),
        )
        creds = domain.add_scientist("mallory@uni.example.org")
        ds = rds.connect(domain, email=creds.email, password=creds.password).dataset("tx")
        sql = (
            "SELECT zip, byear, COUNT(*) AS n, SUM(amount) AS s FROM tx WHERE {w} "
            "GROUP BY zip, byear"
        )
        many = ds.sql(sql.format(w="pid >= 0"), epsilon=0.01, reason="all groups")
        few = ds.sql(sql.format(w="pid < 10"), epsilon=0.01, reason="few groups")
        assert (many.status, few.status) == ("released", "released")
    finally:
        domain.close()
