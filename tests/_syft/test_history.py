"""Staying fast as history grows (issue 14), without timing anything.

One request's path — a DP request submitted, auto-released by policy, polled and fetched —
must do the same work on a domain with 10 earlier requests as on one with 60: the same
number of syft round trips, of stored objects rebuilt (syft's ``row_as_obj``: what made
each call slower as history grew) and of whole-table reads (``get_all``). So must the
worker's poll, once it has seen what is there. The owner's listing reads each request
once, in one round trip plus one for the code it has not read before.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import rds
from rds._syft import rows
from tests.conftest import patients

QUERY = "SELECT ward, COUNT(*) AS n FROM patients GROUP BY ward"
PYTHON = "def f(patients):\n    return 1\n"


class Tally:
    """syft round trips, rebuilt stored objects and whole-table reads, per stash."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from syft.store.db.stash import ObjectStash

        from rds._syft.datasite import datasite_class

        self.calls: Counter[str] = Counter()
        self.rebuilt: Counter[str] = Counter()
        self.get_all: Counter[str] = Counter()
        server = datasite_class()
        handle = server.handle_api_call_with_unsigned_result
        row_as_obj, get_all = ObjectStash.row_as_obj, ObjectStash.get_all
        tally = self

        def counted_call(site: Any, api_call: Any, *args: Any, **kwargs: Any) -> Any:
            tally.calls[api_call.message.path] += 1
            return handle(site, api_call, *args, **kwargs)

        def counted_row(stash: Any, row: Any) -> Any:
            tally.rebuilt[type(stash).__name__] += 1
            return row_as_obj(stash, row)

        def counted_get_all(stash: Any, *args: Any, **kwargs: Any) -> Any:
            tally.get_all[type(stash).__name__] += 1
            return get_all(stash, *args, **kwargs)

        monkeypatch.setattr(server, "handle_api_call_with_unsigned_result", counted_call)
        monkeypatch.setattr(ObjectStash, "row_as_obj", counted_row)
        monkeypatch.setattr(ObjectStash, "get_all", counted_get_all)

    def clear(self) -> None:
        self.calls.clear()
        self.rebuilt.clear()
        self.get_all.clear()

    def snapshot(self) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
        return dict(self.calls), dict(self.rebuilt), dict(self.get_all)


@pytest.fixture(scope="module")
def grown(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A DP-releasing domain, a scientist, and a crowd who sends Python requests."""
    domain = rds.Domain.create("History", path=tmp_path_factory.mktemp("history") / "d")
    domain.publish(
        "patients",
        patients(),
        bounds={"age": (0, 120), "los_days": (0, 100)},
        categories={"ward": ["cardio", "onco", "neuro"]},
        policy=rds.Policy(epsilon_budget=100.0, auto_release="dp"),
    )
    ada = domain.add_scientist("ada@uni.example.org")
    crowd = domain.add_scientist("crowd@uni.example.org")
    session = rds.connect(domain, email=ada.email, password=ada.password)
    others = rds.connect(domain, email=crowd.email, password=crowd.password)
    yield {"domain": domain, "session": session, "others": others}
    domain.close()


def _grow_to(grown: dict[str, Any], total: int) -> None:
    """Submit the crowd's Python requests (straight through the connection) up to ``total``."""
    others: rds.Session = grown["others"]
    records = others._conn.datasets()
    meta = {"v": 1, "kind": "python", "function": "f", "datasets": ["patients"]}
    meta |= {"dataset": "patients", "reason": "history"}
    while len(others._conn.requests()) < total:
        others._conn.submit(source=PYTHON, datasets=records, meta=meta)


def _dp_path(grown: dict[str, Any], tally: Tally) -> Any:
    session: rds.Session = grown["session"]
    ds = session.dataset("patients")
    ds.mock  # noqa: B018 - the mock is fetched once per session, not per request
    tally.clear()
    req = ds.sql(QUERY, epsilon=0.1, reason="history")
    assert req.status == "released"
    assert len(req.result(timeout=60, poll=0.05, progress=False)) == 3
    return tally.snapshot()


def test_one_dp_request_does_the_same_work_after_10_or_60_earlier_requests(
    grown: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    tally = Tally(monkeypatch)
    _grow_to(grown, 10)
    _dp_path(grown, tally)  # warms what a session reads once (datasets, mocks, code)
    small = _dp_path(grown, tally)
    _grow_to(grown, 60)
    _dp_path(grown, tally)  # the earlier DP request is now one more of the scientist's own
    large = _dp_path(grown, tally)
    calls, rebuilt, whole_tables = large
    assert calls == small[0], "round trips grew with history"
    assert rebuilt == small[1], "syft rebuilt more stored objects with more history"
    assert whole_tables == small[2], "more whole-table reads with more history"
    assert rebuilt.get("RequestStash", 0) < 60  # ... not a scan of the 60 in any case
    assert "request.get_all" not in calls


def test_the_worker_poll_reads_only_what_is_new(
    grown: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker lists ``request_stubs()`` every second: after the first listing, each
    one reads the rows stored since its cursor (a few seconds' margin), not all of them."""
    import time

    from rds._syft import client

    domain: rds.Domain = grown["domain"]
    _grow_to(grown, 30)
    monkeypatch.setattr(client, "_CURSOR_MARGIN", 0.0)  # syft stores seconds: the margin
    conn = client.Connection(domain._conn._client, email=domain._conn.email)
    first = conn.request_stubs()
    time.sleep(1.1)  # a new second of syft's _created_at (not a timing assertion)
    _grow_to(grown, len(grown["others"]._conn.requests()) + 1)  # one more
    read: list[int] = []
    request_rows = rows.request_rows

    def counted(*args: Any, **kwargs: Any) -> Any:
        found = request_rows(*args, **kwargs)
        read.append(len(found["rows"]))
        return found

    monkeypatch.setattr(rows, "request_rows", counted)
    tally = Tally(monkeypatch)
    again = conn.request_stubs()
    assert {s.id for s in first} < {s.id for s in again}
    assert tally.calls == {rows.ROWS: 1}
    assert set(tally.rebuilt) <= {"UserStash"}  # the caller's role, per call
    # The new request and those stored in the first listing's last second (20 a second
    # at most: a submission takes longer than 50 ms), not the 30 before.
    assert 1 <= read[0] <= 21


def test_the_owner_listing_reads_each_request_once_in_two_round_trips(
    grown: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    domain: rds.Domain = grown["domain"]
    _grow_to(grown, 30)
    owner = rds.Domain.__new__(rds.Domain)  # the same domain through a new connection
    owner.__dict__.update(domain.__dict__)
    from rds._syft.client import Connection

    owner._conn = Connection(domain._conn._client, email=domain._conn.email)
    tally = Tally(monkeypatch)
    listed = owner.requests
    assert len(listed) >= 30
    assert tally.calls == {rows.ROWS: 2}  # the rows, then the code of those not read yet
    assert set(tally.rebuilt) <= {"UserStash"} and not tally.get_all
    tally.clear()
    assert [r.id for r in owner.requests] == [r.id for r in listed]
    assert tally.calls == {rows.ROWS: 1}  # code never changes: read once


def test_rds_own_read_keeps_syft_permissions_and_refuses_odd_arguments(
    grown: dict[str, Any],
) -> None:
    """``rds.request_rows`` shows a scientist their own requests only (ids of someone
    else's read as absent), refuses a guest, and takes only the arguments rds sends."""
    from syft.client.api import SyftAPICall

    domain: rds.Domain = grown["domain"]
    _grow_to(grown, 3)
    session: rds.Session = grown["session"]
    ds = session.dataset("patients")
    mine = ds.sql(QUERY, epsilon=0.1, reason="permissions")
    others: rds.Session = grown["others"]
    theirs = {r["id"] for r in others._conn._rows()["rows"]}
    assert theirs and mine.id not in theirs
    assert {r["scientist"] for r in others._conn._rows()["rows"]} == {others.email}
    assert others._conn._rows(ids=[mine.id], code=True)["rows"] == []
    with pytest.raises(rds.errors.InvalidInput):
        others._conn.request(mine.id)
    everything = {r["id"] for r in domain._conn._rows()["rows"]}
    assert mine.id in everything and theirs <= everything

    client = others._conn._client
    for kwargs in (
        {"ids": ["not-an-id"]},
        {"ids": [mine.id] * (rows.MAX_IDS + 1)},
        {"since": "1970'; DROP TABLE Request; --"},
        {"code": "yes"},
        {"owner": True},
    ):
        call = SyftAPICall(
            server_uid=client.api.server_uid, path=rows.ROWS, args=[], kwargs=kwargs, blocking=True
        )
        refused = client.api.make_call(call)
        assert type(refused).__name__ == "SyftError", kwargs
    guest = domain._server.get_guest_client(verbose=False)
    call = SyftAPICall(
        server_uid=domain._server.id, path=rows.ROWS, args=[], kwargs={}, blocking=True
    )
    assert "rds refuses" in guest.api.make_call(call).message
