"""Nothing a scientist can observe of an unreleased request depends on private data.

Two requests whose private runs take 0.01 s and 6 s (the length chosen by a private value,
as an attacker would) look the same to the scientist, field by field of syft's own request
object, until the owner decides; the owner's runs change nothing the scientist can read.
"""

from __future__ import annotations

from typing import Any

import rds

# Sleeps for seconds only if one patient's age (a private value) is above a threshold.
TIMED = """
def timed(df):
    import time
    time.sleep(6.0 if df["age"].iloc[0] > {threshold} else 0.01)
    return 1
"""


def _view(session: rds.Session, request_id: str) -> dict[str, Any]:
    """Everything syft lets the scientist read of their own request, minus its identity."""
    from syft.types.uid import UID

    client = session._conn._client
    req = client.api.services.request.get_by_uid(UID(request_id))
    return {
        "status": str(req.status),
        "tags": list(req.tags),
        "updated_at": req.updated_at,
        "updated_date": getattr(req, "updated_date", None),
        "history": [str(h) for h in req.history],
        "approving_user": req.approving_user_verify_key,
    }


def _submit(session: rds.Session, threshold: float) -> rds.Request:
    namespace: dict[str, Any] = {}
    source = TIMED.format(threshold=threshold)
    ds = session.dataset("patients")
    import linecache

    filename = f"<timed-{threshold}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), namespace)
    return ds.request(namespace["timed"], reason="timing")


def test_run_length_is_invisible_until_a_decision(
    domain: rds.Domain, session: rds.Session, private_frame: Any
) -> None:
    first_age = float(private_frame["age"].iloc[0])
    slow = _submit(session, threshold=first_age - 1)  # true on the private data: sleeps 6 s
    fast = _submit(session, threshold=first_age + 1)
    before = {r.id: _view(session, r.id) for r in (slow, fast)}
    assert before[slow.id]["tags"] == before[fast.id]["tags"] == ["rds-stage:review"]

    durations = {}
    for req in (slow, fast):
        preview = domain.request(req.id).run()
        assert preview.ok
        durations[req.id] = preview.duration
        assert req.status == "awaiting review"
    assert durations[slow.id] > 5 > 1 > durations[fast.id]  # the owner sees the difference

    after = {r.id: _view(session, r.id) for r in (slow, fast)}
    assert after == before  # not a field, not a timestamp moved while the runs happened
    assert slow.verdict is None and fast.verdict is None

    for req in (slow, fast):
        domain.request(req.id).deny("not today")
    assert slow.status == fast.status == "denied"
