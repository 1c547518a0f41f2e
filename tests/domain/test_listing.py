"""``domain.requests``: a list as before, with ``.waiting`` and ``.where(...)`` filters."""

from __future__ import annotations

import pytest

import rds


def mean_age(df):
    return df["age"].mean()


def test_waiting_and_where_filter_the_listing(domain: rds.Domain, session: rds.Session) -> None:
    other = domain.add_scientist("bo@uni.example.org")
    bo = rds.connect(domain, email=other.email, password=other.password)
    ds = session.dataset("patients")
    first = ds.request(mean_age, reason="listing one")
    second = ds.request(mean_age, reason="listing two")
    theirs = bo.dataset("patients").sql(
        "SELECT ward, COUNT(*) AS n FROM patients GROUP BY ward", reason="listing three"
    )
    domain.request(first.id).deny("Not this one.")

    listed = domain.requests
    assert isinstance(listed, list) and [r.id for r in listed][-3:] == [
        first.id,
        second.id,
        theirs.id,
    ]
    assert {r.id for r in listed.waiting} == {second.id, theirs.id}
    assert [r.id for r in listed.where(status="denied")] == [first.id]
    mine = listed.where(status="submitted", scientist=session.email, dataset="patients")
    assert [r.id for r in mine] == [second.id]
    assert [r.id for r in listed.where(kind="sql")] == [theirs.id]
    assert [r.id for r in listed.waiting.where(scientist=[other.email, "x@y.org"])] == [theirs.id]
    assert listed.where(dataset="nothing") == []
    with pytest.raises(rds.errors.InvalidInput, match="Unknown status"):
        listed.where(status="pending")
    with pytest.raises(rds.errors.InvalidInput):
        listed.where(scientist=[1])  # type: ignore[list-item]
