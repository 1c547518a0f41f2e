"""Every Remote Data route, through a real Jupyter server, against a real served domain."""

from __future__ import annotations

import asyncio
import json
import socket
import stat
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPResponse

import rds
from rds.panel.handlers import ROUTES

Fetch = Callable[..., Awaitable[HTTPResponse]]


def mean_age(df):
    return float(df["age"].mean())


async def _json(jp_fetch: Fetch, *parts: str, **kwargs: Any) -> Any:
    response = await jp_fetch("rds", *parts, **kwargs)
    return json.loads(response.body) if response.body else None


async def _error(jp_fetch: Fetch, *parts: str, **kwargs: Any) -> tuple[int, str]:
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch("rds", *parts, **kwargs)
    body = info.value.response.body if info.value.response is not None else b"{}"
    return info.value.code, json.loads(body)["error"]


async def _connect(jp_fetch: Fetch, hospital: dict[str, Any], name: str = "hospital") -> Any:
    body = {k: hospital[k] for k in ("url", "email", "password")} | {"name": name}
    return await _json(jp_fetch, "profiles", method="POST", body=json.dumps(body))


async def test_every_route_refuses_a_request_without_the_token(
    jp_fetch: Fetch, jp_base_url: str, jp_http_port: int, profiles_dir: Path
) -> None:
    await jp_fetch("api", "status")  # the server is up (and jp_fetch carries the token)
    client = AsyncHTTPClient()
    for pattern, handler in ROUTES:
        path = pattern.replace("([^/]+)", "x")
        for verb in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            if not hasattr(handler, verb.lower()):
                continue
            body = "{}" if verb in ("POST", "PUT", "PATCH") else None
            response = await client.fetch(
                f"http://127.0.0.1:{jp_http_port}{jp_base_url}rds/{path}",
                method=verb,
                body=body,
                raise_error=False,
            )
            assert response.code == 403, (verb, path, response.code)


def test_no_route_lacks_the_authenticated_decorator(recwarn: pytest.WarningsRecorder) -> None:
    """As the extension template's check: Jupyter warns about unauthenticated handlers."""
    from jupyter_server.serverapp import ServerApp
    from jupyter_server.utils import JupyterServerAuthWarning

    app = ServerApp(
        allow_unauthenticated_access=False,
        jpserver_extensions={"rds": True},
        reraise_server_extension_failures=True,
    )
    app.initialize(argv=[], find_extensions=False, new_httpserver=False)
    assert "rds_service" in app.web_app.settings  # the extension did load
    problems = [str(w.message) for w in recwarn if w.category is JupyterServerAuthWarning]
    assert problems == []


async def test_connect_list_and_remove_a_profile(
    jp_fetch: Fetch, hospital: dict[str, Any], profiles_dir: Path
) -> None:
    assert await _json(jp_fetch, "profiles") == {"profiles": []}
    created = await _connect(jp_fetch, hospital)
    profile = created["profile"]
    assert profile["name"] == "hospital" and profile["url"] == hospital["url"]
    assert "password" not in profile
    assert profile["status"]["reachable"] is True

    listed = (await _json(jp_fetch, "profiles"))["profiles"]
    status = listed[0]["status"]
    assert status["reachable"] and status["version"] == "0.9.5" and status["latency_ms"] > 0
    assert hospital["password"] not in json.dumps(listed)
    # The file behind it: 0600, and the kernel API reads the same profile.
    file = profiles_dir / "profiles.json"
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert rds.connect(profile="hospital").dataset("patients").rows == 400

    response = await jp_fetch("rds", "profiles", "hospital", method="DELETE")
    assert response.code == 204
    assert await _json(jp_fetch, "profiles") == {"profiles": []}


async def test_bad_profiles_are_refused_with_a_reason(
    jp_fetch: Fetch, hospital: dict[str, Any], profiles_dir: Path
) -> None:
    wrong = {k: hospital[k] for k in ("url", "email")} | {"name": "h", "password": "nope"}
    code, error = await _error(jp_fetch, "profiles", method="POST", body=json.dumps(wrong))
    assert code == 400 and "password" in error.lower()
    bad_name = {k: hospital[k] for k in ("url", "email", "password")} | {"name": "../etc"}
    code, error = await _error(jp_fetch, "profiles", method="POST", body=json.dumps(bad_name))
    assert code == 400 and "profile name" in error
    code, error = await _error(jp_fetch, "profiles", method="POST", body="not json")
    assert code == 400 and "JSON" in error
    code, error = await _error(jp_fetch, "profiles", "nobody", "datasets")
    assert code == 404 and "nobody" in error
    assert not (profiles_dir / "profiles.json").exists()  # nothing saved on failure


async def test_datasets_mock_and_requests(
    jp_fetch: Fetch, hospital: dict[str, Any], profiles_dir: Path
) -> None:
    await _connect(jp_fetch, hospital)
    datasets = (await _json(jp_fetch, "profiles", "hospital", "datasets"))["datasets"]
    [patients] = datasets
    assert patients["name"] == "patients" and patients["rows"] == 400
    assert patients["description"] == "Synthetic admissions <b>not bold</b>"  # data, not HTML
    columns = {c["name"]: c for c in patients["schema"]}
    assert columns["age"]["bounds"] == [0, 120]
    assert columns["ward"]["categories"] == ["cardio", "onco", "neuro"]
    assert columns["los_days"]["bounds"] is None
    assert patients["epsilon"] == {"budget": 2.0, "spent": 0.0, "pending": 0.0, "remaining": 2.0}
    assert "release" in patients["policy"]

    mock = await _json(jp_fetch, "profiles", "hospital", "datasets", "patients", "mock",
                       params={"rows": "5"})  # fmt: skip
    assert mock["columns"] == ["patient_id", "age", "ward", "los_days"]
    assert len(mock["rows"]) == 5 and mock["total_rows"] > 5
    assert not any("P-SECRET" in str(row[0]) for row in mock["rows"])  # a mock, not the data
    code, error = await _error(jp_fetch, "profiles", "hospital", "datasets", "nope", "mock")
    assert code == 404 and "nope" in error
    code, _ = await _error(jp_fetch, "profiles", "hospital", "datasets", "patients", "mock",
                           params={"rows": "100000"})  # fmt: skip
    assert code == 400

    session = rds.connect(profile="hospital")
    req = session.dataset("patients").request(mean_age, reason="age profile")
    dp = session.dataset("patients").sql(
        "SELECT ward, COUNT(*) AS n FROM patients GROUP BY ward", epsilon=0.5, reason="n"
    )
    dp.result(timeout=60, progress=False)
    await asyncio.sleep(2.1)  # past the listing cache
    listed = (await _json(jp_fetch, "profiles", "hospital", "requests"))["requests"]
    by_id = {r["id"]: r for r in listed}
    assert by_id[req.id]["status"] == "awaiting review" and by_id[req.id]["what"] == "mean_age()"
    assert by_id[req.id]["reason"] == "age profile" and by_id[req.id]["verdict"] is None
    assert by_id[dp.id]["status"] == "released" and by_id[dp.id]["verdict"] == "pass"
    await asyncio.sleep(5.1)
    datasets = (await _json(jp_fetch, "profiles", "hospital", "datasets"))["datasets"]
    assert datasets[0]["epsilon"]["remaining"] == pytest.approx(1.5)


async def test_owner_profile_counts_pending_requests(
    jp_fetch: Fetch, hospital: dict[str, Any], profiles_dir: Path
) -> None:
    domain = rds.Domain.open(hospital["path"], save_as="mine")
    session = rds.connect(hospital["url"], email=hospital["email"], password=hospital["password"])
    before = (await _json(jp_fetch, "profiles", "mine", "pending"))["pending"]
    session.dataset("patients").request(mean_age, reason="one more")
    await asyncio.sleep(2.1)
    assert (await _json(jp_fetch, "profiles", "mine", "pending"))["pending"] == before + 1
    [owner] = (await _json(jp_fetch, "profiles"))["profiles"]
    assert owner["kind"] == "owner" and owner["path"] == str(Path(hospital["path"]).resolve())
    assert owner["status"]["reachable"] is True
    code, error = await _error(jp_fetch, "profiles", "mine", "datasets")
    assert code == 400 and "owner" in error
    domain.close()


async def test_a_down_domain_shows_as_down_and_never_blocks_the_server(
    jp_fetch: Fetch, profiles_dir: Path
) -> None:
    # A "domain" that accepts connections and never answers: the worst case for a panel.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    port = silent.getsockname()[1]
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    closed_port = dead.getsockname()[1]
    dead.close()
    from rds.profiles import Profile, ProfileStore

    store = ProfileStore()
    for name, p in (("silent", port), ("closed", closed_port)):
        url = f"http://127.0.0.1:{p}"
        store.save(Profile(name, kind="scientist", url=url, email="a@b.example", password="x"))
    try:
        listing = asyncio.ensure_future(_json(jp_fetch, "profiles"))
        started = time.monotonic()
        await jp_fetch("api", "status")  # answered while the probes wait on the silent domain
        assert time.monotonic() - started < 1.0 and not listing.done()
        profiles = {p["name"]: p for p in (await listing)["profiles"]}
        assert profiles["silent"]["status"]["reachable"] is False
        assert profiles["closed"]["status"]["reachable"] is False
        assert "no answer" in profiles["closed"]["status"]["error"]
        code, error = await _error(jp_fetch, "profiles", "closed", "datasets")
        assert code == 502 and str(closed_port) in error
    finally:
        silent.close()


async def test_a_domain_that_stops_after_login_answers_502_then_recovers(
    jp_fetch: Fetch, tmp_path: Path, profiles_dir: Path
) -> None:
    from rds.domain import serve
    from tests.conftest import free_port, patients

    path = tmp_path / "brief"
    with rds.Domain.create("Brief", path=path) as domain:
        domain.publish("t", patients(), description="x")
        creds = domain.add_scientist("ada@uni.example.org")
    port = free_port()
    url = serve.start(path, port=port)
    hospital = {"url": url, "email": creds.email, "password": creds.password}
    try:
        await _connect(jp_fetch, hospital, name="brief")
        assert (await _json(jp_fetch, "profiles", "brief", "datasets"))["datasets"][0][
            "name"
        ] == "t"
        serve.stop(path)
        await asyncio.sleep(5.1)  # past the listing cache
        code, error = await _error(jp_fetch, "profiles", "brief", "datasets")
        assert code == 502 and error  # JSON, with a reason: never an HTML 500
        url = serve.start(path, port=port)  # back on the same address: the panel recovers
        datasets = (await _json(jp_fetch, "profiles", "brief", "datasets"))["datasets"]
        assert [d["name"] for d in datasets] == ["t"]
    finally:
        serve.stop(path)


def test_the_service_is_plain_python() -> None:
    """Only the handlers are web code: the service and the core never import tornado."""
    import subprocess
    import sys

    code = "import sys, rds.panel.service; print('tornado' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_calls_that_arrive_during_a_login_wait_for_it(
    hospital: dict[str, Any], profiles_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The panel's first calls to a domain come together: one attachment serves them all."""
    import threading

    from rds.domain.domain import Domain
    from rds.panel.service import RemoteDataService

    rds.Domain.open(hospital["path"], save_as="mine").close()
    opened = []
    real_open = Domain.open.__func__  # type: ignore[attr-defined]

    def counting_open(cls: type[Domain], *args: Any, **kwargs: Any) -> Domain:
        opened.append(args)
        return real_open(cls, *args, **kwargs)

    monkeypatch.setattr(Domain, "open", classmethod(counting_open))
    service = RemoteDataService()
    answers: list[int] = []
    calls = [
        threading.Thread(target=lambda: answers.append(service.pending("mine"))) for _ in "abc"
    ]
    for call in calls:
        call.start()
    for call in calls:
        call.join(timeout=120)
    assert len(answers) == 3 and len(set(answers)) == 1
    assert len(opened) == 1


def test_jupyter_start_imports_syft_in_the_background() -> None:
    """So that the panel's first call to a domain pays for the login only."""
    import subprocess
    import sys

    code = (
        "import sys; from rds.panel.service import RemoteDataService; "
        "print('syft' in sys.modules); RemoteDataService().warm_up().join(); "
        "print('syft' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]


async def test_a_bug_is_a_500_not_a_domain_that_is_down(
    jp_fetch: Fetch, profiles_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """syft's and the network's failures reach the panel as rds errors (a down domain is a
    502); anything else is a bug, answered 500 with its type, and logged."""
    from rds.panel.service import RemoteDataService

    def broken(self: RemoteDataService) -> list[dict[str, Any]]:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(RemoteDataService, "profiles", broken)
    code, error = await _error(jp_fetch, "profiles")
    assert code == 500 and "ZeroDivisionError" in error and "log" in error


def test_the_adapter_translates_a_domain_that_went_away(hospital: dict[str, Any]) -> None:
    """Every operation of a connection crosses the seam: a transport failure after login is
    DomainUnreachable, whichever operation met it."""
    from rds._syft.client import Connection

    conn = Connection.login(hospital["url"], email=hospital["email"], password=hospital["password"])
    from syft.types.server_url import ServerURL

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now: the domain "went away" after the login
    conn._client.connection.url = ServerURL.from_url(f"http://127.0.0.1:{port}")
    with pytest.raises(rds.DomainUnreachable, match="stopped answering"):
        conn.datasets()
