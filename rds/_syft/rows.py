"""rds's own read of the request table: indexed, batched, without rebuilding syft objects.

syft 0.9.5 answers ``request.get_all`` by rebuilding every stored ``Request`` (pydantic
objects, nested links) and then resolves each one's code and status with a round trip of
its own; its ``notification.filter_by_obj`` (run by every approval) rebuilds every stored
notification. Both grow with the domain's history. This module serves one extra call,
``rds.request_rows`` (``ROWS``), at the same dispatch point and under the same allow-list
as syft's calls (``RDSDatasite``), and replaces that notification scan with a lookup:

- ``since``: only requests stored at or after a cursor (syft's indexed ``_created_at``
  column; the answer carries the next cursor), for a worker that looks for new requests;
- ``ids``: given requests, by primary key;
- ``code``: with each request's submitted text (``UserCode.raw_code``), which never
  changes, so a client asks for it once per request.

Each row is read from the stored JSON (plain values only), under syft's own permission
filter for the caller's role: a scientist reads exactly the requests, code and statuses
``request.get_all`` and ``notifications.resolve_object`` would give them.
"""

from __future__ import annotations

import re
from typing import Any

ROWS = "rds.request_rows"
#: Most ids one call may name (a listing asks in pages of this many).
MAX_IDS = 1000
_HEX = re.compile(r"^[0-9a-f]{32}$")
_CURSOR = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?$")


class BadArguments(ValueError):
    """The call's arguments are not what rds's client sends."""


def check_arguments(args: Any, kwargs: Any) -> dict[str, Any]:
    """The call's arguments, validated (a scientist may send anything)."""
    if args or not isinstance(kwargs, dict):
        raise BadArguments("rds.request_rows takes keyword arguments only.")
    extra = set(kwargs) - {"since", "ids", "code", "communication_protocol"}
    if extra:
        raise BadArguments(f"rds.request_rows takes no {sorted(extra)}.")
    since, ids, code = kwargs.get("since"), kwargs.get("ids"), kwargs.get("code", False)
    if since is not None and not (isinstance(since, str) and _CURSOR.match(since)):
        raise BadArguments("since= is a cursor from an earlier answer.")
    if ids is not None:
        if not isinstance(ids, list) or len(ids) > MAX_IDS:
            raise BadArguments(f"ids= is a list of at most {MAX_IDS} request ids.")
        if not all(isinstance(i, str) and _HEX.match(i) for i in ids):
            raise BadArguments("ids= holds request ids (32 hex digits).")
    if not isinstance(code, bool):
        raise BadArguments("code= is True or False.")
    return {"since": since, "ids": ids, "code": code}


def request_rows(
    server: Any,
    credentials: Any,
    *,
    since: str | None = None,
    ids: list[str] | None = None,
    code: bool = False,
) -> dict[str, Any]:
    """``{"rows": [...], "cursor": str | None}``: the requests ``credentials`` may read.

    Each row: ``id``, ``code_id``, ``scientist``, ``submitted_at`` (UTC timestamp),
    ``status`` (``"pending"``, ``"approved"``, ``"denied"``), ``tags``, ``deny_reason``
    (denied ones) and, with ``code``, ``raw_code``.
    """
    import sqlalchemy as sa
    from syft.types.uid import UID

    stash = server.services.request.stash
    role = server.get_role_for_credentials(credentials=credentials)
    query = stash.query().with_permissions(credentials, role)
    table = stash.table
    stmt = query.stmt.with_only_columns(table.c.id, table.c.fields, table.c._created_at)
    if since is not None:
        stmt = stmt.where(table.c._created_at >= sa.text(":since").bindparams(since=since))
    if ids is not None:
        stmt = stmt.where(table.c.id.in_([UID(i) for i in ids]))
    stmt = stmt.order_by(table.c._created_at, table.c.id)
    with stash.sessionmaker() as session:
        found = session.execute(stmt).all()
    rows = [_row(fields) for _id, fields, _created in found]
    cursor = max((str(c) for *_rest, c in found if c is not None), default=since)
    if code:
        texts = _code_texts(server, credentials, role, [r["code_id"] for r in rows])
        for row in rows:
            row["raw_code"] = texts.get(row["code_id"])
    for row in rows:
        if row["status"] == "denied":
            row["deny_reason"] = _deny_reason(server, credentials, row.pop("status_id"))
        else:
            row.pop("status_id")
    return {"rows": rows, "cursor": cursor}


def _row(fields: dict[str, Any]) -> dict[str, Any]:
    changes = fields.get("changes") or []
    code_id = status_id = None
    for change in changes:
        if change.get("__canonical_name__") == "UserCodeStatusChange":
            code_id = (change.get("linked_user_code") or {}).get("object_uid")
            status_id = (change.get("linked_obj") or {}).get("object_uid")
            break
    return {
        "id": fields["id"],
        "code_id": code_id,
        "status_id": status_id,
        "scientist": str(fields.get("requesting_user_email") or fields.get("requesting_user_name")),
        "submitted_at": float(fields.get("request_time") or 0.0),
        "status": _status(changes, fields.get("history") or []),
        "tags": [str(t) for t in fields.get("tags") or []],
        "deny_reason": None,
    }


def _status(changes: list[dict[str, Any]], history: list[dict[str, Any]]) -> str:
    """syft's ``Request.get_status`` for a high-side request, from the stored fields."""
    if not history:
        return "pending"
    state: dict[str, bool] = {}
    for entry in history:
        state[str(entry.get("change_id"))] = bool(entry.get("applied"))
    applied = all(state.values()) and len(state) == len(changes)
    return "approved" if applied else "denied"


def _code_texts(server: Any, credentials: Any, role: Any, code_ids: list[Any]) -> dict[str, str]:
    from syft.types.uid import UID

    wanted = [UID(c) for c in code_ids if isinstance(c, str) and _HEX.match(c)]
    if not wanted:
        return {}
    stash = server.services.user_code.stash
    table = stash.table
    stmt = stash.query().with_permissions(credentials, role).stmt
    stmt = stmt.with_only_columns(table.c.fields).where(table.c.id.in_(wanted))
    with stash.sessionmaker() as session:
        found = session.execute(stmt).all()
    return {f["id"]: f.get("raw_code") for (f,) in found if isinstance(f.get("raw_code"), str)}


def _deny_reason(server: Any, credentials: Any, status_id: Any) -> str | None:
    from syft.types.uid import UID

    if not (isinstance(status_id, str) and _HEX.match(status_id)):
        return None
    stash = server.services.user_code_status.stash
    try:
        status = stash.get_by_uid(credentials, UID(status_id)).unwrap()
    except Exception:
        return None
    reason = status.first_denial_reason
    return reason if isinstance(reason, str) and reason else None


def install_notification_lookup() -> None:
    """Replace syft's ``filter_by_obj`` (every notification rebuilt, per approval) with a
    query on the linked object's id, under the same permission filter; same answer."""
    from syft.service.notification.notification_service import NotificationService
    from syft.types.errors import SyftException
    from syft.types.result import as_result

    if getattr(NotificationService.filter_by_obj, "_rds_indexed", False):
        return

    @as_result(SyftException)
    def filter_by_obj(self: Any, context: Any, obj_uid: Any) -> Any:
        import sqlalchemy as sa

        stash = self.stash
        table = stash.table
        query = stash.query().with_permissions(context.credentials, context.role)
        target = sa.func.json_extract(table.c.fields, "$.linked_obj.object_uid")
        stmt = query.stmt.where(target == obj_uid.no_dash).order_by(table.c._created_at)
        with stash.sessionmaker() as session:
            row = session.execute(stmt).first()
        if row is None:
            raise SyftException(public_message="Could not get notifications!!")
        return stash.row_as_obj(row)

    filter_by_obj._rds_indexed = True
    NotificationService.filter_by_obj = filter_by_obj
