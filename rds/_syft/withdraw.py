"""A scientist withdraws one of their own undecided requests: rds's own call, in the server.

syft 0.9.5 gives a scientist no way to take a request back (``request.set_tags`` and every
other request write are the admin's). rds serves one extra call, ``rds.withdraw_request``
(``PATH``), at the dispatch point where every call is checked (``RDSDatasite``), on the
scientist's allow-list and with its arguments pinned (``check_arguments``: one request id,
nothing else). The server itself, not the caller, decides what happens:

- the request is read under syft's permission filter for the caller *and* must name the
  caller as its requester; any other request (another scientist's, or none) gets the same
  answer as an id that does not exist, so the call is no oracle for other people's ids;
- it must be undecided (no change applied or undone yet): a released or denied request
  cannot be withdrawn, and the answer says which it is (the caller can read that anyway);
- the server adds the tag ``rds-withdrawn`` (``TAG``) to the request's tags. Withdrawing
  twice is harmless: the second call changes nothing.

The owner's side reads the tag (``RequestRecord.withdrawn``) and takes it from there (the
ledger, the ε reservation). So that no owner write can lose or race a withdrawal, the admin
calls that write a request (``GUARDED``: ``request.set_tags``, which replaces all tags, and
``request.apply``, which approves) run under the same lock as a withdrawal and are refused
on a withdrawn request: a request is either released or withdrawn, never both, and an owner
who raced the withdrawal writes nothing the scientist can read (not even the check verdict
``set_stage`` writes just before a release).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

PATH = "rds.withdraw_request"
TAG = "rds-withdrawn"
#: Admin calls that write a request, serialised with withdrawals (see the module docstring).
GUARDED = frozenset({"request.set_tags", "request.apply"})
LOCK = threading.Lock()
_PROTOCOL = "communication_protocol"  # syft's client adds it to every call
_HEX = re.compile(r"^[0-9a-f]{32}$")
_UNKNOWN = "No request with id {id!r} of yours on this domain."


class Refused(ValueError):
    """The withdrawal is refused; the message is for the scientist."""


def check_arguments(args: Any, kwargs: Any) -> str:
    """The request id the call names, or ``Refused`` (a scientist may send anything)."""
    if args or not isinstance(kwargs, dict) or set(kwargs) - {"request_id", _PROTOCOL}:
        raise Refused(f"{PATH} takes one keyword argument, request_id=.")
    request_id = kwargs.get("request_id")
    if not (isinstance(request_id, str) and _HEX.match(request_id)):
        raise Refused(f"{PATH}: request_id= is a request id (32 hex digits).")
    return request_id


def withdraw(server: Any, credentials: Any, request_id: str) -> str:
    """Mark the caller's undecided request withdrawn; return ``"withdrawn"`` or ``"already"``.

    Raises ``Refused`` for a request that is not the caller's (or does not exist) and for
    one already decided.
    """
    from syft.types.uid import UID

    stash = server.services.request.stash
    with LOCK:
        try:
            request = stash.get_by_uid(credentials, UID(request_id)).unwrap()
        except Exception:
            raise Refused(_UNKNOWN.format(id=request_id)) from None
        if request.requesting_user_verify_key != credentials:
            raise Refused(_UNKNOWN.format(id=request_id))
        tags = [str(t) for t in request.tags or []]
        if TAG in tags:
            return "already"
        if request.history:  # a change was applied (released) or undone (denied)
            raise Refused(_decided(request))
        request.tags = [*tags, TAG]
        stash.update(server.verify_key, request).unwrap()
        return "withdrawn"


def guarded(server: Any, path: str, args: Any, kwargs: Any, call: Callable[[], Any]) -> Any:
    """Run the admin ``call`` (one of ``GUARDED``) under the withdrawal lock.

    Returns ``Refused`` instead of calling when the request is withdrawn.
    """
    with LOCK:
        request_id = _target(path, args, kwargs)
        if request_id is not None and _is_withdrawn(server, request_id):
            return Refused(
                "The scientist withdrew this request; nothing more is written to it "
                "(rds.RequestStateError on the owner's side)."
            )
        return call()


def _target(path: str, args: Any, kwargs: Any) -> Any:
    """The UID of the request an admin call writes, or None."""
    if path == "request.set_tags":
        request = kwargs.get("request", args[0] if args else None)
        return getattr(request, "id", None)
    return kwargs.get("uid", args[0] if args else None)


def _is_withdrawn(server: Any, uid: Any) -> bool:
    try:
        request = server.services.request.stash.get_by_uid(server.verify_key, uid).unwrap()
    except Exception:
        return False
    return TAG in (request.tags or [])


def _decided(request: Any) -> str:
    released = bool(request.history) and all(bool(h.applied) for h in request.history)
    state = "released" if released else "denied"
    return f"This request is already {state}: only a request still waiting can be withdrawn."
