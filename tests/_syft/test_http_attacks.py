"""A plain syft client over HTTP, with no account or a scientist's, tries what syft allows.

Everything that reached into the server before rds sealed it: uploading a ``pathlib.Path``
and calling its methods, allow-listed library functions (``numpy.load`` with pickles),
registration, role changes, settings, other users' objects. All refused, and nothing in the
domain directory changes.
"""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

import rds


@pytest.fixture
def served(served_module: tuple[Path, str]) -> tuple[Path, str]:
    """One served domain for the module: every attack must leave it unchanged (each test
    compares its fingerprint before and after), so the tests need not start one each."""
    return served_module


def _fingerprint(root: Path) -> dict[str, str]:
    """Hashes of every file of the domain outside syft's own state and the logs."""
    skip = {"syft", "server.log", "server.json", ".lock"}
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.relative_to(root).parts[0] not in skip
    }


def _outcome(attack: Callable[[], Any]) -> str:
    try:
        result = attack()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return f"returned {type(result).__name__}: {getattr(result, 'message', result)}"


def _login(url: str, creds: rds.Credentials | None) -> Any:
    import syft as sy

    parts = urlsplit(url)
    base, port = f"{parts.scheme}://{parts.hostname}", parts.port
    if creds is None:
        return sy.login_as_guest(url=base, port=port, verbose=False)
    return sy.login(url=base, port=port, email=creds.email, password=creds.password)


def _attacks(client: Any, domain_dir: Path) -> dict[str, Callable[[], Any]]:
    import numpy as np
    import syft as sy

    services = client.api.services
    private = next((domain_dir / "private").rglob("*.parquet"), domain_dir / "private")

    def upload_path() -> Any:
        return sy.ActionObject.from_obj(private).send(client)

    def execute_read_bytes() -> Any:
        from syft.service.action.action_object import Action
        from syft.types.uid import UID, LineageID

        action = Action(
            path="pathlib.PosixPath",
            op="read_bytes",
            remote_self=LineageID(UID()),
            args=[],
            kwargs={},
        )
        return services.action.execute(action)

    def numpy_load() -> Any:
        return client.api.lib.numpy.load(str(domain_dir / "x.npy"), allow_pickle=True)

    def register() -> Any:
        return client.register(
            name="mallory",
            email="mallory@evil.example",
            password="pw12345678",
            password_verify="pw12345678",
        )

    return {
        "upload a pathlib.Path": upload_path,
        "action.execute read_bytes": execute_read_bytes,
        "numpy.load(allow_pickle=True)": numpy_load,
        "save a numpy array into the server": lambda: sy.ActionObject.from_obj(np.arange(3)).send(
            client
        ),
        "register an account": register,
    }


@pytest.mark.parametrize("who", ["guest", "scientist"])
def test_plain_syft_client_is_refused_everything_beyond_rds(
    served: tuple[Path, str], who: str
) -> None:
    path, url = served
    creds = None
    if who == "scientist":
        with rds.Domain.open(path) as owner:
            creds = owner.add_scientist(f"{who}@uni.example.org")
    before = _fingerprint(path)
    client = _login(url, creds)
    for name, attack in _attacks(client, path).items():
        outcome = _outcome(attack)
        # syft's client hides endpoints the role lacks; RAW below sends such calls anyway.
        hidden = "no submodule or method" in outcome or "has no attribute" in outcome
        refused = "rds refuses" in outcome or hidden or "404" in outcome
        assert refused, f"{who}: {name} was not refused: {outcome[:300]}"
    # The same calls sent raw (a client that does not list an endpoint can still send it).
    from syft.client.api import SyftAPICall

    for raw in RAW:
        call = SyftAPICall(
            server_uid=client.api.server_uid, path=raw, args=[], kwargs={}, blocking=True
        )
        result = client.api.make_call(call)
        assert "rds refuses" in getattr(result, "message", ""), f"{who}: raw {raw}: {result!r}"
    assert _fingerprint(path) == before


RAW = (
    "action.execute",
    "action.set",
    "code.call",
    "code.submit",
    "api.call",
    "user.update",
    "user.get_all",
    "user.delete",
    "settings.update",
    "migration.reset_and_restore",
    "worker_pool.launch",
    "blob_storage.write_to_disk",
    "settings.get",
    "notifications.get_all",
    "worker_pool.get_all",
)


def test_unmounted_syft_routes_answer_404(served: tuple[Path, str]) -> None:
    from syft.server.routes import make_routes

    from rds._syft import allowlist

    _, url = served

    class _Stub:  # make_routes only reads attributes when a route is called
        pass

    routes = make_routes(worker=_Stub()).routes  # type: ignore[arg-type]
    assert isinstance(routes, list)
    paths = {getattr(r, "path", "") for r in routes}
    assert paths >= allowlist.ROUTES
    assert {"/register", "/forgot_password", "/reset_password"} <= paths
    for route in paths - allowlist.ROUTES:
        target = url + "/api/v2" + route.replace("{peer_uid}", "x").replace("{url_path}", "eA")
        for method in ("GET", "POST", "PUT"):
            request = urllib.request.Request(target, data=b"{}", method=method)
            with pytest.raises(urllib.error.HTTPError) as caught:
                urllib.request.urlopen(request, timeout=10)
            assert caught.value.code in {404, 405}, f"{method} {route}: {caught.value.code}"
    with urllib.request.urlopen(url + "/api/v2/metadata", timeout=10) as answer:
        assert answer.status == 200


def test_no_openapi_schema_is_served(served: tuple[Path, str]) -> None:
    _, url = served
    for path in ("/openapi.json", "/docs", "/redoc"):
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(url + path, timeout=10)
        assert caught.value.code == 404
