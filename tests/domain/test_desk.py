"""The owner's review desk, driven as an owner would: select, run, approve or deny."""

from __future__ import annotations

import time

import pandas as pd
import pytest

import rds
from rds.domain.desk import ReviewDesk
from tests.conftest import jail_cannot_start

BY_WARD = "SELECT ward, COUNT(*) AS n FROM patients GROUP BY ward ORDER BY ward"
SMALL_CELLS = "SELECT ward, age, COUNT(*) AS n FROM patients GROUP BY ward, age"


def mean_age(df):
    return float(df["age"].mean())


def snoop(df):
    import os

    return os.listdir("/")


@pytest.fixture
def desk(domain: rds.Domain) -> ReviewDesk:
    d = domain.review(refresh_every=None)
    yield d
    d.close()


def _buttons(desk: ReviewDesk) -> dict[str, bool]:
    return {
        "mock": not desk.run_mock_button.disabled,
        "private": not desk.run_private_button.disabled,
        "approve": not desk.approve_button.disabled,
        "deny": not desk.deny_button.disabled,
    }


def test_full_approve_through_the_desk(
    domain: rds.Domain, session: rds.Session, desk: ReviewDesk, private_frame: pd.DataFrame
) -> None:
    req = session.dataset("patients").request(mean_age, reason="Age profile for the board")
    assert req.status == "awaiting review"  # embedded: picked up at submit
    desk.refresh_button.click()
    assert req.id[:8] in desk.queue.value
    desk.select(req.id)
    assert desk.selected is not None and desk.selected.id == req.id
    # The detail view: highlighted code, the reason, static notes, the policy.
    assert "Age profile for the board" in desk.detail.value
    assert "mean_age" in desk.detail.value and "<span" in desk.detail.value
    assert "Static notes" in desk.detail.value and "manual review" in desk.detail.value
    # Nothing to release before a private run; denying needs a reason first.
    assert _buttons(desk) == {"mock": True, "private": True, "approve": False, "deny": False}

    desk.run_mock_button.click()
    desk.wait()
    assert "Run on mock" in desk.message.value and "ok" in desk.message.value
    assert domain.ledger.events(event="ran_on_mock", request=req.id)
    assert req.status == "awaiting review"  # a mock run changes nothing the scientist sees

    desk.run_private_button.click()
    desk.wait()
    assert desk.progress_label.value.startswith("Finished in")
    assert "Preview on private data" in desk.preview.value
    assert f"{private_frame['age'].mean():.4f}"[:6] in desk.preview.value
    assert req.status == "awaiting review"
    assert _buttons(desk)["approve"]

    desk.justification.value = "Aggregate over 400 patients"
    desk.approve_button.click()
    assert "Released request" in desk.message.value
    assert req.result(timeout=30, progress=False) == pytest.approx(private_frame["age"].mean())
    (approved,) = domain.ledger.events(event="approved", request=req.id)
    assert approved.actor == domain.owner and approved.data["note"] == "Aggregate over 400 patients"
    assert domain.ledger.events(event="released", request=req.id)
    assert not any(_buttons(desk).values())  # decided: nothing left to do
    desk.tabs.selected_index = 1
    assert req.id[:8] in desk.history.value and "Aggregate over 400 patients" in desk.history.value
    # Below the decisions, every ledger event one line each (published, ran, released...).
    assert "Ledger" in desk.history.value and "ran_on_mock" in desk.history.value
    # The scientist's listing shows the verdict the release carried.
    (listed,) = [r for r in session.requests if r.id == req.id]
    assert listed.verdict == "pass"


def test_full_deny_through_the_desk(
    domain: rds.Domain, session: rds.Session, desk: ReviewDesk
) -> None:
    req = session.dataset("patients").request(snoop, reason="just looking <b>around</b>")
    desk.refresh()
    desk.select(req.id)
    assert "imports os" in desk.detail.value  # the static notes flag it
    assert "&lt;b&gt;around&lt;/b&gt;" in desk.detail.value
    assert desk.deny_button.disabled
    desk.reason.value = "Listing the file system is not an analysis."
    assert not desk.deny_button.disabled
    desk.deny_button.click()
    with pytest.raises(rds.RequestDenied, match="file system"):
        req.result(timeout=30, progress=False)
    assert req.status == "denied"
    (denied,) = domain.ledger.events(event="denied", request=req.id)
    assert denied.data["reason"] == "Listing the file system is not an analysis."
    assert "Listing the file system" in desk.history.value
    assert req.id[:8] not in desk.queue.value  # the default filter shows waiting ones
    desk.filter.value = "denied"
    assert req.id[:8] in desk.queue.value


def test_failed_checks_need_a_justification(
    domain: rds.Domain, session: rds.Session, desk: ReviewDesk
) -> None:
    req = session.dataset("patients").sql(SMALL_CELLS, reason="fine grid")
    desk.refresh()
    desk.select(req.id)
    desk.run_private_button.click()
    desk.wait()
    assert "threshold" in desk.preview.value
    assert desk.approve_button.disabled
    assert "justification" in desk.approve_button.tooltip
    desk.approve_button.click()  # refused: nothing happens
    assert req.status == "awaiting review"
    desk.justification.value = "Ethics board ref 2026-17"
    assert not desk.approve_button.disabled
    desk.approve_button.click()
    (approved,) = domain.ledger.events(event="approved", request=req.id)
    assert approved.data["justification"] == "Ethics board ref 2026-17"
    assert "threshold" in approved.data["failed_checks"]
    assert "Ethics board ref 2026-17" in desk.history.value


def test_dp_request_shows_its_cost_and_runs_once(
    domain: rds.Domain, session: rds.Session, desk: ReviewDesk
) -> None:
    domain.set_policy("patients", rds.Policy(epsilon_budget=2.0))
    ds = session.dataset("patients")
    req = ds.sql("SELECT COUNT(*) AS n FROM patients", epsilon=0.5, reason="how many")
    desk.refresh()
    desk.select(req.id)
    assert "Privacy cost" in desk.detail.value and "0.5" in desk.detail.value
    desk.run_private_button.click()
    desk.wait()
    assert desk.run_private_button.disabled  # the noise is drawn once
    assert "pending 0.5" in desk.detail.value


def test_queue_refreshes_by_itself(domain: rds.Domain, session: rds.Session) -> None:
    desk = domain.review(refresh_every=0.3)
    try:
        assert "No requests here" in desk.queue.value
        req = session.dataset("patients").request(mean_age, reason="arrives later")
        deadline = time.monotonic() + 20
        while req.id[:8] not in desk.queue.value and time.monotonic() < deadline:
            time.sleep(0.1)
        assert req.id[:8] in desk.queue.value
        assert desk.selected is not None and desk.selected.id == req.id
    finally:
        desk.close()


def test_the_desk_will_not_approve_a_domain_failure(
    domain: rds.Domain, session: rds.Session, desk: ReviewDesk, monkeypatch: pytest.MonkeyPatch
) -> None:
    req = session.dataset("patients").request(mean_age, reason="Age profile")
    desk.refresh_button.click()
    desk.select(req.id)
    with jail_cannot_start(monkeypatch):
        desk.run_private_button.click()
        desk.wait()
    assert "the sandbox did not start" in desk.preview.value
    desk.justification.value = "approve anyway"  # a justification does not unlock it
    assert _buttons(desk) == {"mock": True, "private": True, "approve": False, "deny": False}
    assert "domain's failure" in desk.approve_button.tooltip
