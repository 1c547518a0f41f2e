"""Differentially private SQL end to end: planning, noise, the ε ledger and auto-release."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

import rds
from rds.domain import serve
from rds.ledger import load_public_key
from tests.conftest import free_port, jail_cannot_start, patients

QUERY = "SELECT ward, COUNT(*) AS n, AVG(age) AS mean_age FROM patients GROUP BY ward"
WARDS = ["cardio", "onco", "neuro", "icu"]  # icu: declared, absent from the data


def _publish(domain: rds.Domain, policy: rds.Policy) -> None:
    domain.publish(
        "patients",
        patients(),
        bounds={"age": (0, 120), "los_days": (0, 100)},
        categories={"ward": WARDS},
        policy=policy,
    )


@pytest.fixture
def dp_domain(tmp_path: Path) -> Iterator[rds.Domain]:
    domain = rds.Domain.create("DP Hospital", path=tmp_path / "domain")
    _publish(domain, rds.Policy(epsilon_budget=1.0))
    yield domain
    domain.close()


@pytest.fixture
def dp_session(dp_domain: rds.Domain) -> rds.Session:
    creds = dp_domain.add_scientist("ada@uni.example.org")
    return rds.connect(dp_domain, email=creds.email, password=creds.password)


def test_manual_dp_release_spends_epsilon(dp_domain: rds.Domain, dp_session: rds.Session) -> None:
    ds = dp_session.dataset("patients")
    req = ds.sql(QUERY, epsilon=0.5, reason="ward profile")
    assert req.kind == "dp" and req.status == "awaiting review"
    assert sorted(req.mock_result["ward"]) == sorted(WARDS)  # shape preview from the mock
    assert dp_session.budget("patients").pending == pytest.approx(0.5)
    review = dp_domain.request(req.id)
    preview = review.run()
    assert preview.ok and preview.checks.verdict == "pass"
    assert preview.privacy is not None and preview.privacy["mechanism"] == "laplace"
    again = review.run()  # the noisy answer is drawn once
    pd.testing.assert_frame_equal(again.result, preview.result)
    assert dp_domain.budget("patients", "ada@uni.example.org").pending == pytest.approx(0.5)
    review.approve()
    answer = req.result(timeout=30, progress=False)
    assert sorted(answer["ward"]) == sorted(WARDS)  # every declared group, present or not
    assert {"n_ci_low", "n_ci_high", "mean_age_ci_low"} <= set(answer.columns)
    assert answer.attrs["privacy"]["epsilon"] <= 0.5
    assert req.privacy is not None and set(req.privacy["noise_scale"]) == {"n", "mean_age"}
    truth = patients().groupby("ward").size()
    for ward, n in truth.items():
        row = answer.set_index("ward").loc[ward]
        assert row["n_ci_low"] - 60 <= n <= row["n_ci_high"] + 60  # generous: tested in test_dp
    owner = dp_domain.budget("patients", "ada@uni.example.org")
    mine = dp_session.budget("patients")
    assert owner.spent == mine.spent == pytest.approx(0.5)
    assert owner.remaining == mine.remaining == pytest.approx(0.5)
    events = [e.event for e in dp_domain.ledger.entries() if e.data.get("request") == req.id]
    assert events.count("epsilon_reserved") == 1 and events.count("epsilon_spent") == 1


def test_delta_is_charged_as_typed_and_the_noise_spends_no_more(tmp_path: Path) -> None:
    """1e-5 the float is a hair above 1e-5 the decimal the ledger charges: the noise is
    calibrated to the float just below, as for ε."""
    from decimal import Decimal

    with rds.Domain.create("Delta", path=tmp_path / "d") as domain:
        _publish(domain, rds.Policy(epsilon_budget=1.0, delta_budget=1e-4, auto_release="dp"))
        creds = domain.add_scientist("ada@uni.example.org")
        session = rds.connect(domain, email=creds.email, password=creds.password)
        assert Decimal(float("1e-5")) > Decimal("1e-5")  # the float is a hair above
        req = session.dataset("patients").sql(QUERY, epsilon=0.5, delta=1e-5, reason="δ")
        domain.auto_release(req.id)
        assert req.status == "released"
        req.result(timeout=30, progress=False)
        (reserved,) = domain.ledger.events(event="epsilon_reserved", request=req.id)
        assert Decimal(repr(reserved.data["delta"])) == Decimal("1e-5")
        assert Decimal(req.privacy["delta"]) <= Decimal("1e-5")
        assert domain.budget("patients", creds.email).delta_spent == 1e-5


def test_denied_dp_request_is_refunded(dp_domain: rds.Domain, dp_session: rds.Session) -> None:
    req = dp_session.dataset("patients").sql(QUERY, epsilon=0.8, reason="r")
    review = dp_domain.request(req.id)
    review.run()
    review.deny("Not now.")
    assert dp_domain.budget("patients", "ada@uni.example.org").remaining == pytest.approx(1.0)
    assert dp_session.budget("patients").remaining == pytest.approx(1.0)


def test_over_budget_is_refused_before_submission(
    dp_domain: rds.Domain, dp_session: rds.Session
) -> None:
    ds = dp_session.dataset("patients")
    ds.sql(QUERY, epsilon=0.7, reason="first")
    with pytest.raises(rds.BudgetExceeded) as info:
        ds.sql(QUERY, epsilon=0.5, reason="second")
    assert info.value.remaining == pytest.approx(0.3)
    assert len(dp_domain.requests) == 1


def test_over_budget_is_refused_by_the_owner_before_it_runs(
    dp_domain: rds.Domain, dp_session: rds.Session
) -> None:
    ds = dp_session.dataset("patients")
    first, second = (ds.sql(QUERY, epsilon=0.5, reason=r) for r in ("a", "b"))  # both fit
    dp_domain.set_policy("patients", rds.Policy(epsilon_budget=0.8), note="budget cut")
    dp_domain.request(first.id).run()
    with pytest.raises(rds.BudgetExceeded):
        dp_domain.request(second.id).run()
    assert dp_domain.request(second.id).status == "denied"
    assert not (dp_domain.layout.runs / second.id).exists()  # it never ran
    with pytest.raises(rds.RequestDenied, match="budget"):
        second.result(timeout=30, progress=False)
    (denial,) = dp_domain.ledger.events(event="denied", request=second.id)
    assert denial.actor == "policy:epsilon_budget"


def test_differencing_costs_epsilon_each_time(
    dp_domain: rds.Domain, dp_session: rds.Session
) -> None:
    dp_domain.set_policy("patients", rds.Policy(epsilon_budget=1.0, auto_release="dp"))
    dp_session.refresh()
    ds = dp_session.dataset("patients")
    a = ds.sql("SELECT COUNT(*) AS n FROM patients WHERE age >= 40", epsilon=0.2, reason="a")
    b = ds.sql(
        "SELECT COUNT(*) AS n FROM patients WHERE age >= 40 AND patient_id <> 'P-SECRET-00001'",
        epsilon=0.2,
        reason="b",
    )
    ra, rb = a.result(timeout=30, progress=False), b.result(timeout=30, progress=False)
    assert a.privacy is not None and a.privacy["noise_scale"]["n"] >= 5  # ≫ the 1 person
    assert abs(ra["n"][0] - rb["n"][0]) < 200
    assert dp_session.budget("patients").spent == pytest.approx(0.4)
    assert len(dp_domain.ledger.events(event="epsilon_spent")) == 2


def test_auto_release_dp_names_the_policy(dp_domain: rds.Domain, dp_session: rds.Session) -> None:
    dp_domain.set_policy("patients", rds.Policy(epsilon_budget=1.0, auto_release="dp"))
    dp_session.refresh()
    ds = dp_session.dataset("patients")
    req = ds.sql(QUERY, epsilon=0.25, reason="auto")
    assert req.status == "released"
    (decision,) = dp_domain.ledger.events(event="approved", request=req.id)
    assert decision.actor == "policy:dp" and decision.data["policy"] == "dp"
    sql = ds.sql("SELECT ward, COUNT(*) AS n FROM patients GROUP BY ward", reason="exact")
    assert sql.status == "awaiting review"  # auto_release="dp" does not cover exact SQL


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("SELECT age, COUNT(*) FROM patients GROUP BY age", "categor"),
        ("SELECT AVG(patient_id) FROM patients", "bound"),
        ("SELECT MAX(age) FROM patients", "COUNT"),
    ],
)
def test_unsupported_dp_queries_are_refused(
    dp_session: rds.Session, query: str, message: str
) -> None:
    with pytest.raises(rds.InvalidInput, match=message):
        dp_session.dataset("patients").sql(query, epsilon=0.1, reason="x")


def test_no_budget_means_no_dp(tmp_path: Path) -> None:
    with rds.Domain.create("Plain", path=tmp_path / "d") as domain:
        _publish(domain, rds.Policy())
        creds = domain.add_scientist("ada@uni.example.org")
        session = rds.connect(domain, email=creds.email, password=creds.password)
        with pytest.raises(rds.InvalidInput, match="no differentially private"):
            session.dataset("patients").sql(QUERY, epsilon=0.1, reason="x")


@pytest.mark.slow
def test_parallel_requests_over_http_never_overspend(tmp_path: Path) -> None:
    path = tmp_path / "served"
    with rds.Domain.create("Served", path=path) as domain:
        _publish(domain, rds.Policy(epsilon_budget=1.0, auto_release="dp"))
        creds = domain.add_scientist("ada@uni.example.org")
    url = serve.start(path, port=free_port())
    try:
        sessions = [rds.connect(url, email=creds.email, password=creds.password) for _ in range(6)]
        outcomes: list[str] = []
        requests: list[rds.Request] = []
        start = threading.Barrier(len(sessions))

        def fire(session: rds.Session) -> None:
            ds = session.dataset("patients")
            start.wait()
            req = ds.sql(QUERY, epsilon=0.3, reason="parallel")  # each sees ε=1.0 left
            requests.append(req)
            try:
                req.result(timeout=120, poll=0.2, progress=False)
                outcomes.append("released")
            except rds.RequestDenied as exc:
                assert "budget" in exc.reason
                outcomes.append("denied")

        threads = [threading.Thread(target=fire, args=(s,)) for s in sessions]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(requests) == 6
        assert sorted(outcomes) == ["denied"] * 3 + ["released"] * 3
        budget = sessions[0].budget("patients")
        assert budget.spent == pytest.approx(0.9) and budget.pending == 0
    finally:
        serve.stop(path)
    ledger = [json.loads(line) for line in (path / "ledger.jsonl").read_text().splitlines()]
    spent = [e for e in ledger if e["event"] == "epsilon_spent"]
    reserved = {
        e["data"]["request"]: e["data"]["epsilon"]
        for e in ledger
        if e["event"] == "epsilon_reserved"
    }
    assert len(spent) == 3 and sum(reserved[e["data"]["request"]] for e in spent) <= 1.0
    denials = [e for e in ledger if e["event"] == "denied"]
    assert len(denials) == 3
    assert all(e["actor"] == "policy:epsilon_budget" for e in denials)
    assert all("budget" in e["data"]["reason"] for e in denials)
    public_key = load_public_key(path / "ledger.pub")
    assert rds.Ledger(path / "ledger.jsonl", public_key=public_key).verify() == len(ledger)


def test_a_paced_dp_release_waits_for_the_owner_when_the_sandbox_cannot_start(
    dp_domain: rds.Domain, dp_session: rds.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A paced run that fails releases a no-rows answer (so failing is no oracle); a jail
    # that never started says nothing about the data, and must not spend ε on noise.
    req = dp_session.dataset("patients").sql(QUERY, epsilon=0.25, reason="wards")
    dp_domain.set_policy("patients", rds.Policy(epsilon_budget=1.0, auto_release="dp"))
    with jail_cannot_start(monkeypatch):
        assert dp_domain.auto_release(req.id, paced=True) is None
    assert req.status == "awaiting review"
    owner = dp_domain.request(req.id)
    assert owner.preview is not None and owner.preview.fault == "domain"
    assert not dp_domain.ledger.events(event="epsilon_spent", request=req.id)
    assert owner.run().ok  # mended: the run draws its answer now
    owner.approve()
    assert set(req.result(timeout=30, progress=False)["ward"]) == set(WARDS)
