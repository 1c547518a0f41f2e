"""The owner replaces and withdraws datasets; requests already made keep working or are
refused with a reason, and every change is in the ledger."""

from __future__ import annotations

import pandas as pd
import pytest

import rds
from tests.conftest import patients


def mean_age(df):
    return float(df["age"].mean())


def test_replace_publishes_a_new_version_that_waiting_requests_run_on(
    domain: rds.Domain, session: rds.Session
) -> None:
    old = domain.store.read("patients")
    ran = session.dataset("patients").request(mean_age, reason="before")
    waiting = session.dataset("patients").request(mean_age, reason="waiting")
    domain.request(ran.id).run()  # previewed on version 1
    newer = patients(n=500, seed=11)
    meta = domain.replace("patients", newer, note="2025 data added")
    assert meta["version"] == 2 and meta["rows"] == 500
    assert domain.dataset_version("patients") == 2
    # What was declared carries over: description and bounds.
    assert meta["description"] == "Synthetic admissions"
    assert next(c for c in meta["schema"] if c["name"] == "age")["bounds"] == [0, 120]
    # A preview of version 1 cannot be released; run again, on version 2.
    with pytest.raises(rds.RequestStateError, match="replaced by a new version"):
        domain.request(ran.id).approve()
    assert domain.request(ran.id).run().result == pytest.approx(float(newer["age"].mean()))
    domain.request(ran.id).approve()
    assert ran.result(timeout=30, progress=False) == pytest.approx(float(newer["age"].mean()))
    preview = domain.request(waiting.id).run()
    assert preview.result == pytest.approx(float(newer["age"].mean()))
    # The scientist sees the new version; the old one is archived, not lost.
    assert domain.datasets.loc[0, "rows"] == 500
    (event,) = domain.ledger.events(event="replaced")
    assert event.data["version"] == 2 and event.data["note"] == "2025 data added"
    archived = domain.layout.root / event.data["archived"]
    pd.testing.assert_frame_equal(
        pd.read_parquet(archived / "patients" / "data.parquet"), old, check_dtype=False
    )


def test_replace_refuses_data_that_breaks_what_was_declared_and_changes_nothing(
    domain: rds.Domain,
) -> None:
    bad = patients().assign(age=lambda f: f["age"] + 200)  # outside the bounds kept
    with pytest.raises(rds.InvalidInput, match="outside the declared bounds"):
        domain.replace("patients", bad)
    assert domain.dataset_version("patients") == 1
    assert len(domain.store.read("patients")) == 400
    with pytest.raises(rds.DatasetNotFound):
        domain.replace("nope", patients())
    with pytest.raises(rds.InvalidInput, match=r"domain\.replace"):
        domain.publish("patients", patients())


def test_unpublish_denies_waiting_requests_with_a_reason(
    domain: rds.Domain, session: rds.Session
) -> None:
    released = session.dataset("patients").request(mean_age, reason="released")
    domain.request(released.id).run()
    domain.request(released.id).approve()
    waiting = session.dataset("patients").request(mean_age, reason="waiting")
    denied = domain.unpublish("patients", note="consent withdrawn")
    assert denied == [waiting.id]
    with pytest.raises(rds.RequestDenied, match="withdrew the dataset 'patients'"):
        waiting.result(timeout=30, progress=False)
    assert released.result(timeout=30, progress=False) > 0  # released results stay readable
    assert "patients" not in list(domain.datasets["name"])
    session.refresh()  # read the listing now, not after its 5 s cache
    with pytest.raises(rds.DatasetNotFound):
        session.dataset("patients")
    (event,) = domain.ledger.events(event="unpublished")
    assert event.data["denied"] == [waiting.id] and event.data["note"] == "consent withdrawn"
    assert (domain.layout.root / event.data["archived"] / "patients" / "data.arrow").exists()
    # The name is free again.
    domain.publish("patients", patients(n=100))
    assert domain.dataset_version("patients") == 1
