"""Deny by default: the syft API calls and HTTP routes an rds domain accepts, per role.

syft 0.9.5 serves about 250 API endpoints, and its own role checks let a guest run methods
of uploaded objects inside the server (``action.execute``), let a scientist register users,
call custom API endpoints and more. An rds domain needs a handful: the lists below are
exactly what rds's own clients call (read off a trace of every rds test), and everything
else — the whole action-execution path, user code calls, registration, settings, workers,
projects, sync, custom endpoints — is refused at the point where syft dispatches every call
(``RDSDatasite.handle_api_call_with_unsigned_result``, both in-process and over HTTP).

A refusal is answered with syft's own error type (a plain syft client raises it as a
``SyftException``) with a message that says what rds allows, and is logged to the domain's
server log (``rds.syft`` logger) with the caller's role and key.

Scientists read metadata and mocks, submit requests, and read their own requests and
released results; syft's own permission checks still apply on top (a scientist reads only
objects syft lets them read). The admin list is what the worker and the owner's processes
use; user code calls are refused to everyone.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("rds.syft")

# Calls any login may make: syft's clients read these while connecting.
_CONNECT = frozenset({"metadata", "user.get_current_user", "metadata.get_metadata"})

# rds's own calls, served by RDSDatasite itself (not syft endpoints; see rds._syft.rows):
# reads under syft's permission filter, nothing executed.
RDS = frozenset({"rds.request_rows"})

# What rds's scientist client calls. Reads are filtered by syft's permissions (own requests,
# own released results, mocks); nothing here executes anything the caller sent.
SCIENTIST = (
    _CONNECT
    | RDS
    | frozenset(
        {
            "dataset.get_all",  # dataset metadata (rds's metadata rides in the asset description)
            "action.get_mock",  # a dataset's mock
            "action.exists",  # syft's client asks this while binding a function to assets
            "code.request_code_execution",  # submit: stores code text; never executed by syft
            "request.get_all",  # own requests
            "request.get_by_uid",  # one own request
            "notifications.resolve_object",  # syft resolves a request's linked code this way
            "migration._get_object",  # ... and this (a permission-checked read by id)
            "job.get_by_user_code_id",  # where a released result is
            "action.get",  # the released result (READ permission is granted at release)
            "action.has_storage_permission",
            "blob_storage.read",
            "rds.withdraw_request",  # rds's own: take back an own undecided request
            "user.update",  # one's own new password only (pinned below), for invitations
        }
    )
)

# What the worker and the owner's processes call (publishing, users, decisions).
ADMIN = SCIENTIST | frozenset(
    {
        "dataset.add",
        "dataset.delete",  # syft has no update: set_policy deletes and publishes again
        "action.set",  # a published mock; a released result
        "blob_storage.allocate",
        "blob_storage.write_to_disk",
        "user.create",
        "user.search",  # by email: reset a password, remove a scientist
        "user.delete",  # remove a scientist
        "request.set_tags",  # the scientist-visible stage
        "request.add_changes",  # deposit_result: attaches the result and approves
        "request.apply",
        "request.undo",  # deny
        "code.store_execution_output",
        "job.create_job_for_user_code_id",
        "job.update",
        "output.get_by_user_code_id",
    }
)

# A guest may only log in (an HTTP route, not an API call) and read the server's metadata.
GUEST = frozenset({"metadata"})

# syft's HTTP routes (under /api/v2) that rds serves; the rest (register, password reset,
# the peer streaming proxy) are not mounted.
ROUTES = frozenset({"/", "/metadata", "/metadata_capnp", "/api", "/api_call", "/login"})

# Allowed calls whose arguments choose *what kind* of object they read are pinned to the
# kinds rds's clients ask for: syft lets every scientist read other scientists' User
# records (signing key included) by id, and these two readers would hand them over.
PINNED = {
    "user.update": "a new password for one's own account",
    "migration._get_object": "a Request",
    "notifications.resolve_object": "a link to a request's code or its status",
    # Served by rds itself (rds._syft.withdraw), which also checks that the request is the
    # caller's own and undecided.
    "rds.withdraw_request": "one request_id= (32 hex digits)",
}

_PASSWORD_FIELDS = {"password"}

REFUSAL = (
    "rds refuses {path!r} for a {role}: an rds domain accepts only the calls rds's own "
    "client makes (see rds._syft.allowlist). Use rds.connect() and the rds API."
)


def allowed_calls(role: str) -> frozenset[str]:
    """The API paths a syft role (``ServiceRole`` name) may call."""
    if role == "ADMIN":
        return ADMIN
    if role == "DATA_SCIENTIST":
        return SCIENTIST
    return GUEST  # GUEST, NONE, and DATA_OWNER (a role rds never grants)


def refusal(role: Any, path: str, *, blocking: bool, caller: str) -> str | None:
    """Why ``role`` may not call ``path`` (logged), or ``None`` when it may.

    Non-blocking calls (syft's job queue) are refused to everyone: rds never queues work in
    the server.
    """
    name = str(getattr(role, "name", role))
    if blocking and path in allowed_calls(name):
        return None
    log.warning("refused syft call %r (blocking=%s) from %s %s", path, blocking, name, caller)
    shown = path if blocking else f"{path} (non-blocking)"
    return REFUSAL.format(path=shown, role=name.lower())


def argument_refusal(path: str, args: Any, kwargs: Any) -> str | None:
    """Why the arguments of an allowed call are refused, or ``None`` when they are fine."""
    if path not in PINNED:
        return None
    if path == "rds.withdraw_request":
        from rds._syft import withdraw

        try:
            withdraw.check_arguments(args, kwargs)
        except withdraw.Refused:
            fine = False
        else:
            fine = True
    elif path == "user.update":
        # Only a password: a scientist who could change their email, role or key could
        # take another account's name (and its ε history). syft refuses edits of others.
        # syft's client sends the update's fields as keyword arguments, beside the uid.
        fields = set(kwargs) - {"uid", "communication_protocol"}
        fine = not args and "uid" in kwargs and {"password"} <= fields <= _PASSWORD_FIELDS
    elif path == "migration._get_object":
        from syft.service.request.request import Request

        chosen = kwargs.get("object_type", args[1] if len(args) > 1 else None)
        fine = chosen is Request
    else:
        from syft.service.code.status_service import UserCodeStatusService
        from syft.service.code.user_code import UserCode, UserCodeStatusCollection
        from syft.service.code.user_code_service import UserCodeService
        from syft.store.linked_obj import LinkedObject

        link = kwargs.get("linked_obj", args[0] if args else None)
        fine = isinstance(link, LinkedObject) and (link.service_type, link.object_type) in {
            (UserCodeService, UserCode),
            (UserCodeStatusService, UserCodeStatusCollection),
        }
    if fine:
        return None
    log.warning("refused syft call %r with arguments outside what rds reads", path)
    return f"rds refuses {path!r} for anything but {PINNED[path]}."
