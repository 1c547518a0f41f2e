"""``Request.cancel()``: a scientist withdraws an undecided request (issue 14).

Real components throughout: an embedded domain, a served one over HTTP, the sandbox, the
ledger. Attacks: another scientist's request, a plain syft client with hand-made arguments,
and cancel-after-run as a way to a fresh noise draw.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import rds
from tests.conftest import jail_cannot_start, patients

QUERY = "SELECT ward, COUNT(*) AS n FROM patients GROUP BY ward"
ADA = "ada@uni.example.org"


def mean_age(df):  # type: ignore[no-untyped-def]
    return float(df["age"].mean())


@pytest.fixture
def dp_domain(tmp_path: Path) -> Iterator[rds.Domain]:
    domain = rds.Domain.create("DP Hospital", path=tmp_path / "domain")
    domain.publish(
        "patients",
        patients(),
        bounds={"age": (0, 120), "los_days": (0, 100)},
        categories={"ward": ["cardio", "onco", "neuro"]},
        policy=rds.Policy(epsilon_budget=1.0),
    )
    yield domain
    domain.close()


@pytest.fixture
def ada(dp_domain: rds.Domain) -> rds.Session:
    creds = dp_domain.add_scientist(ADA)
    return rds.connect(dp_domain, email=creds.email, password=creds.password)


@pytest.fixture
def bob(dp_domain: rds.Domain) -> rds.Session:
    creds = dp_domain.add_scientist("bob@uni.example.org")
    return rds.connect(dp_domain, email=creds.email, password=creds.password)


def _events(domain: rds.Domain, request_id: str) -> list[str]:
    return [e.event for e in domain.ledger.entries() if e.data.get("request") == request_id]


def test_a_cancelled_request_is_withdrawn_for_both_roles(
    dp_domain: rds.Domain, ada: rds.Session
) -> None:
    req = ada.dataset("patients").request(mean_age, reason="age profile")
    assert req.status == "awaiting review"
    req.cancel()
    assert req.status == "withdrawn"
    req.cancel()  # again: harmless
    assert req.status == "withdrawn"
    with pytest.raises(rds.RequestStateError, match="withdrawn"):
        req.result(timeout=5, progress=False)
    owner = dp_domain.request(req.id)
    assert owner.status == "withdrawn"
    with pytest.raises(rds.RequestStateError, match="withdrew"):
        owner.run()
    with pytest.raises(rds.RequestStateError, match="withdrew"):
        owner.approve()
    with pytest.raises(rds.RequestStateError, match="withdrew"):
        owner.deny("too late")
    assert [r.listed_status for r in dp_domain.requests] == ["withdrawn"]
    assert _events(dp_domain, req.id).count("withdrawn") == 1
    assert "ran" not in _events(dp_domain, req.id)
    (entry,) = dp_domain.ledger.events(event="withdrawn", request=req.id)
    assert entry.actor == ADA


def test_a_decided_request_cannot_be_cancelled(dp_domain: rds.Domain, ada: rds.Session) -> None:
    released = ada.dataset("patients").request(mean_age, reason="age profile")
    owner = dp_domain.request(released.id)
    owner.run()
    owner.approve()
    with pytest.raises(rds.RequestStateError, match="already released"):
        released.cancel()
    assert released.status == "released"
    denied = ada.dataset("patients").request(mean_age, reason="again")
    dp_domain.request(denied.id).deny("once is enough")
    with pytest.raises(rds.RequestStateError, match="already denied"):
        denied.cancel()
    assert dp_domain.request(denied.id).status == "denied"


def test_the_server_refuses_a_withdrawal_of_a_decided_request(
    dp_domain: rds.Domain, ada: rds.Session
) -> None:
    # The scientist's own client checks first; the server decides (a race, a plain client).
    req = ada.dataset("patients").request(mean_age, reason="age profile")
    dp_domain.request(req.id).deny("no")
    with pytest.raises(rds.RequestStateError, match="already denied"):
        ada._conn.withdraw(req.id)
    assert dp_domain.request(req.id).status == "denied"


def test_another_scientist_cannot_cancel_it(
    dp_domain: rds.Domain, ada: rds.Session, bob: rds.Session
) -> None:
    req = ada.dataset("patients").request(mean_age, reason="age profile")
    with pytest.raises(rds.InvalidInput):
        bob.request(req.id)  # not even readable
    with pytest.raises(rds.InvalidInput, match="of yours") as theirs:
        bob._conn.withdraw(req.id)
    with pytest.raises(rds.InvalidInput, match="of yours") as nobodys:
        bob._conn.withdraw("0" * 32)
    assert str(theirs.value).replace(req.id, "X") == str(nobodys.value).replace("0" * 32, "X")
    assert req.status == "awaiting review"
    assert dp_domain.request(req.id).status == "submitted"


def _syft_call(conn: Any, path: str, kwargs: dict[str, Any], args: list[Any] | None = None) -> Any:
    from syft.client.api import SyftAPICall

    api = conn._client.api
    call = SyftAPICall(
        server_uid=api.server_uid, path=path, args=args or [], kwargs=kwargs, blocking=True
    )
    return api.make_call(call)


def test_a_plain_syft_client_gets_only_the_pinned_call(
    dp_domain: rds.Domain, ada: rds.Session, bob: rds.Session
) -> None:
    req = ada.dataset("patients").request(mean_age, reason="age profile")
    for kwargs, args in [
        ({"request_id": req.id, "tags": ["rds-stage:review"]}, None),  # no extra arguments
        ({"request_id": req.id.upper()}, None),
        ({"request_id": ["x"]}, None),
        ({}, [req.id]),
    ]:
        result = _syft_call(bob._conn, "rds.withdraw_request", kwargs, args)
        assert type(result).__name__ == "SyftError", (kwargs, args)
        assert "rds refuses" in result.message
    # Scientists still cannot write tags themselves, their own request's or anyone's.
    from syft.types.uid import UID

    syft_req = dp_domain._conn._get(req.id)
    refused = _syft_call(ada._conn, "request.set_tags", {"request": syft_req, "tags": []})
    assert type(refused).__name__ == "SyftError" and "rds refuses" in refused.message
    refused = _syft_call(bob._conn, "request.apply", {"uid": UID(req.id)})
    assert type(refused).__name__ == "SyftError" and "rds refuses" in refused.message
    assert dp_domain.request(req.id).status == "submitted"


def test_an_owner_who_raced_the_withdrawal_writes_nothing_the_scientist_reads(
    dp_domain: rds.Domain, ada: rds.Session
) -> None:
    """The owner's side may have read the request just before the withdrawal (a race): the
    server refuses its stage write (which would replace the tags and show a check verdict)
    and its release."""
    req = ada.dataset("patients").request(mean_age, reason="age profile")
    owner = dp_domain.request(req.id)
    owner.run()
    req.cancel()
    before = dp_domain._conn._get(req.id).tags
    with pytest.raises(rds.DomainError, match="withdrew"):
        dp_domain._conn.set_stage(req.id, "review", checks="fail")  # would replace the tags
    with pytest.raises(rds.DomainError, match="withdrew"):
        dp_domain._conn.deposit(req.id, b"whatever")
    assert dp_domain._conn._get(req.id).tags == before
    assert not any(t.startswith("rds-checks:") for t in before)
    assert req.status == "withdrawn"
    assert ada._conn.fetch_result(req.id) is None


def test_dp_cancelled_before_it_ran_reserves_nothing(
    dp_domain: rds.Domain, ada: rds.Session
) -> None:
    req = ada.dataset("patients").sql(QUERY, epsilon=0.5, reason="wards")
    assert ada.budget("patients").pending == pytest.approx(0.5)
    req.cancel()
    owner = dp_domain.budget("patients", ADA)
    assert owner.spent == owner.pending == 0 and owner.remaining == pytest.approx(1.0)
    with pytest.raises(rds.RequestStateError):
        dp_domain.request(req.id).run()
    assert "epsilon_reserved" not in _events(dp_domain, req.id)
    # The scientist cannot know whether it ran: their own tally counts it as spent.
    assert ada.budget("patients").spent == pytest.approx(0.5)
    assert ada.budget("patients").pending == 0


def test_dp_cancelled_after_its_noise_was_drawn_stays_spent(
    dp_domain: rds.Domain, ada: rds.Session
) -> None:
    """No fresh draw for free: the answer was drawn, so its ε is spent, released or not."""
    req = ada.dataset("patients").sql(QUERY, epsilon=0.5, reason="wards")
    owner = dp_domain.request(req.id)
    assert owner.run().ok
    assert dp_domain.budget("patients", ADA).pending == pytest.approx(0.5)
    req.cancel()
    budget = dp_domain.budget("patients", ADA)
    assert budget.spent == pytest.approx(0.5) and budget.pending == 0
    assert budget.remaining == pytest.approx(0.5)
    events = _events(dp_domain, req.id)
    assert events.count("epsilon_spent") == 1 and "epsilon_refunded" not in events
    with pytest.raises(rds.RequestStateError):
        dp_domain.request(req.id).approve()
    dp_domain.budget("patients", ADA)  # reading again settles nothing twice
    assert _events(dp_domain, req.id).count("epsilon_spent") == 1
    assert ada.budget("patients").spent == pytest.approx(0.5)


def test_dp_reservation_whose_run_never_started_is_refunded(
    dp_domain: rds.Domain, ada: rds.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    req = ada.dataset("patients").sql(QUERY, epsilon=0.5, reason="wards")
    owner = dp_domain.request(req.id)
    with jail_cannot_start(monkeypatch):
        assert owner.run().fault == "domain"  # ε reserved, no noise drawn
    assert dp_domain.budget("patients", ADA).pending == pytest.approx(0.5)
    req.cancel()
    assert dp_domain.request(req.id).status == "withdrawn"
    budget = dp_domain.budget("patients", ADA)
    assert budget.spent == budget.pending == 0 and budget.remaining == pytest.approx(1.0)
    events = _events(dp_domain, req.id)
    assert events.count("epsilon_refunded") == 1 and "epsilon_spent" not in events
    dp_domain.request(req.id).status  # noqa: B018 - a second read settles nothing again
    assert _events(dp_domain, req.id).count("epsilon_refunded") == 1


def test_the_desk_lists_it_as_withdrawn(dp_domain: rds.Domain, ada: rds.Session) -> None:
    req = ada.dataset("patients").request(mean_age, reason="age profile")
    req.cancel()
    desk = dp_domain.review(refresh_every=None)
    try:
        assert "withdrawn" in [value for _label, value in desk.filter.options]
        desk.filter.value = "waiting"
        assert req.id not in list(desk.selector.options or [])
        desk.filter.value = "withdrawn"
        assert desk.selector.value == req.id
    finally:
        desk.close()


def _wait_for(check: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.3)


@pytest.mark.slow
def test_served_over_http(tmp_path: Path) -> None:
    """A served domain: the worker records the withdrawal and settles the ε itself."""
    from rds.domain import serve
    from tests.conftest import free_port

    path = tmp_path / "served"
    with rds.Domain.create("Served", path=path) as domain:
        domain.publish(
            "patients",
            patients(),
            bounds={"age": (0, 120)},
            categories={"ward": ["cardio", "onco", "neuro"]},
            policy=rds.Policy(epsilon_budget=1.0),
        )
        ada_creds = domain.add_scientist(ADA)
        bob_creds = domain.add_scientist("bob@uni.example.org")
    url = serve.start(path, port=free_port())
    try:
        ada = rds.connect(url, email=ada_creds.email, password=ada_creds.password)
        bob = rds.connect(url, email=bob_creds.email, password=bob_creds.password)
        plain = ada.dataset("patients").request(mean_age, reason="age profile")
        dp = ada.dataset("patients").sql(QUERY, epsilon=0.5, reason="wards")
        _wait_for(lambda: dp.status == "awaiting review" and plain.status == "awaiting review")
        with pytest.raises(rds.InvalidInput, match="of yours"):
            bob._conn.withdraw(dp.id)
        with rds.Domain.open(path) as owner:
            assert owner.request(dp.id).run().ok  # the owner drew the noisy answer
            plain.cancel()
            dp.cancel()
            assert plain.status == dp.status == "withdrawn"
            # The worker settles the reservation without the owner reading anything.
            _wait_for(lambda: "epsilon_spent" in _events(owner, dp.id))
            assert _events(owner, dp.id).count("withdrawn") == 1
            budget = owner.budget("patients", ADA)
            assert budget.spent == pytest.approx(0.5) and budget.pending == 0
            with pytest.raises(rds.RequestStateError, match="withdrew"):
                owner.request(dp.id).approve()
            with pytest.raises(rds.RequestStateError, match="withdrew"):
                owner.request(plain.id).run()
            assert {r.listed_status for r in owner.requests} == {"withdrawn"}
            assert _events(owner, plain.id).count("withdrawn") == 1  # noted by the reads
        with pytest.raises(rds.RequestStateError, match="withdrawn"):
            dp.result(timeout=5, progress=False)
    finally:
        serve.stop(path)


def test_the_scientist_views_say_withdrawn(ada: rds.Session) -> None:
    from rds.scientist.views import request_html, steps_html

    req = ada.dataset("patients").request(mean_age, reason="age profile")
    req.cancel()
    assert "withdrawn" in steps_html("withdrawn") and "released" not in steps_html("withdrawn")
    assert "withdrawn" in request_html(req)
    assert ada.requests[-1].summary()["status"] == "withdrawn"
