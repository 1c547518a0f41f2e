"""Invariant 1: syft's API is deny-by-default, per role, at its dispatch point.

Every endpoint the installed syft registers is called as a guest, a scientist and the
admin through the real dispatch (in-process here; over HTTP in test_http_attacks.py), and
must be refused unless rds's allow-list grants it to that role.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import rds
from rds._syft import allowlist

ENDPOINTS = Path(__file__).with_name("syft_endpoints.txt")


def _reviewed() -> dict[str, str]:
    marks = {}
    for line in ENDPOINTS.read_text().splitlines():
        if line and not line.startswith("#"):
            mark, path = line.split()
            marks[path] = mark
    return marks


def _registered() -> set[str]:
    from syft.service.service import ServiceConfigRegistry

    return set(ServiceConfigRegistry.get_registered_configs())


def _call(client: Any, server: Any, path: str, *, blocking: bool = True) -> Any:
    from syft.client.api import SyftAPICall

    call = SyftAPICall(server_uid=server.id, path=path, args=[], kwargs={}, blocking=blocking)
    return client.api.make_call(call)


def _refused(result: Any) -> bool:
    return type(result).__name__ == "SyftError" and "rds refuses" in result.message


def test_every_installed_syft_endpoint_has_been_reviewed(domain: rds.Domain) -> None:
    reviewed = _reviewed()
    registered = _registered()
    assert not registered - set(reviewed), (
        f"syft defines endpoints nobody decided about: {sorted(registered - set(reviewed))}; "
        "add them to syft_endpoints.txt (and to rds/_syft/allowlist.py if rds needs them)"
    )
    assert not set(reviewed) - registered, f"gone from syft: {sorted(set(reviewed) - registered)}"
    for path, mark in reviewed.items():
        decided = "S" if path in allowlist.SCIENTIST else "A" if path in allowlist.ADMIN else "-"
        assert mark == decided, f"{path}: reviewed as {mark}, allow-list says {decided}"
    # rds's own calls (rds.*: served by RDSDatasite itself) are not syft endpoints.
    assert {p for p in allowlist.ADMIN if not p.startswith("rds.")} - {"metadata"} <= registered


def test_each_role_is_refused_everything_it_is_not_granted(
    domain: rds.Domain, scientist: rds.Credentials
) -> None:
    server = domain._server
    guest = server.get_guest_client(verbose=False)
    clients = {
        "GUEST": guest,
        "DATA_SCIENTIST": guest.login(email=scientist.email, password=scientist.password),
        "ADMIN": domain._conn._client,
    }
    registered = sorted(_registered())
    for role, client in clients.items():
        granted = allowlist.allowed_calls(role)
        for path in registered:
            result = _call(client, server, path)
            if path in granted:
                # Granted; the pinned readers still refuse arguments rds never sends.
                refused = _refused(result) and "for anything but" not in result.message
                assert not refused, f"{role} was refused {path}, which rds needs"
            else:
                assert _refused(result), f"{role} could call {path}: {result!r}"[:300]
    # syft's job queue (non-blocking calls) is closed even for granted paths.
    assert _refused(_call(clients["ADMIN"], server, "dataset.get_all", blocking=False))


def test_no_role_can_run_code_in_the_server(domain: rds.Domain, scientist: rds.Credentials) -> None:
    closed = {"action.execute", "code.call", "api.call", "code.submit", "user.register"}
    closed |= {"action.set", "settings.update", "worker_pool.launch"}
    for role in ("GUEST", "DATA_SCIENTIST"):
        assert not closed & allowlist.allowed_calls(role)
    # A scientist may set their own new password (an invitation's first use), nothing else.
    assert "user.update" in allowlist.PINNED
    assert "user.update" not in allowlist.allowed_calls("GUEST")
    assert not {"action.execute", "code.call", "api.call"} & allowlist.allowed_calls("ADMIN")


def test_a_call_signed_for_another_server_is_not_forwarded(
    domain: rds.Domain, scientist: rds.Credentials
) -> None:
    from syft.client.api import SyftAPICall
    from syft.types.uid import UID

    client = domain._server.get_guest_client(verbose=False).login(
        email=scientist.email, password=scientist.password
    )
    call = SyftAPICall(server_uid=UID(), path="dataset.get_all", args=[], kwargs={}, blocking=True)
    result = client.api.make_call(call)
    assert type(result).__name__ == "SyftError" and "forward" in result.message


@pytest.mark.parametrize("role", ["GUEST", "NONE", "DATA_OWNER", "unknown"])
def test_roles_rds_never_grants_get_only_metadata(role: str) -> None:
    assert allowlist.allowed_calls(role) == frozenset({"metadata"})


def test_generic_readers_are_pinned_to_what_rds_reads(domain: rds.Domain) -> None:
    """migration._get_object and notifications.resolve_object let the caller choose the kind
    of object; syft lets scientists read each other's User rows (signing key included)."""
    from syft.client.api import SyftAPICall
    from syft.service.user.user import User
    from syft.service.user.user_service import UserService
    from syft.store.linked_obj import LinkedObject

    ada = domain.add_scientist("ada@uni.example.org")
    eve = domain.add_scientist("eve@uni.example.org")
    server = domain._server
    users = server.services.user.stash.get_all(server.verify_key).unwrap()
    ada_uid = next(u.id for u in users if u.email == ada.email)  # as if it had leaked
    client = server.get_guest_client(verbose=False).login(email=eve.email, password=eve.password)

    def call(path: str, **kwargs: Any) -> Any:
        message = SyftAPICall(
            server_uid=server.id, path=path, args=[], kwargs=kwargs, blocking=True
        )
        return client.api.make_call(message)

    stolen = call("migration._get_object", uid=ada_uid, object_type=User)
    assert _refused(stolen), stolen
    link = LinkedObject(
        server_uid=server.id, service_type=UserService, object_type=User, object_uid=ada_uid
    )
    assert _refused(call("notifications.resolve_object", linked_obj=link))
