"""Invariant 1: the syft server never executes submitted code, even once approved."""

from __future__ import annotations

from pathlib import Path

import pytest

import rds


def _marker_function(marker: Path) -> str:
    return f"def touch(df):\n    open({str(marker)!r}, 'w').write('executed')\n    return 1\n"


def test_plain_syft_client_cannot_run_an_approved_function(
    domain: rds.Domain, scientist: rds.Credentials, tmp_path: Path
) -> None:
    import syft as sy
    from syft.types.errors import SyftException

    marker = tmp_path / "ran-in-server"
    guest = domain._server.get_guest_client(verbose=False)
    client = guest.login(email=scientist.email, password=scientist.password)
    asset = client.datasets.get_all()[0].assets[0]
    namespace: dict = {}
    source = _marker_function(marker)
    import linecache

    linecache.cache["<attack>"] = (len(source), None, source.splitlines(True), "<attack>")
    exec(compile(source, "<attack>", "exec"), namespace)
    fn = sy.syft_function_single_use(df=asset)(namespace["touch"])
    client.code.request_code_execution(fn)

    # The owner approves the syft request the way syft's docs say (deposit a result).
    admin = domain._conn._client
    admin.requests.get_all()[0].deposit_result(b"released", approve=True)

    # The scientist now calls the approved function directly through syft...
    with pytest.raises(SyftException, match=r"rds refuses .code.call.|never execute"):
        client.code.touch(df=asset)
    # ...and so does the owner.
    with pytest.raises(SyftException, match=r"rds refuses .code.call.|never execute"):
        admin.code.touch(df=asset)
    assert not marker.exists()


def test_released_rds_request_cannot_be_rerun_through_syft(
    domain: rds.Domain, session: rds.Session
) -> None:
    def count_rows(df):
        return len(df)

    req = session.dataset("patients").request(count_rows, reason="row count")
    owner_req = domain.request(req.id)
    owner_req.run()
    owner_req.approve()
    assert req.result(timeout=30, progress=False) == 400
    # The request is approved in syft now; syft would run it in-server if asked. It refuses.
    syft_client = session._conn._client
    asset = syft_client.datasets.get_all()[0].assets[0]
    with pytest.raises(Exception, match=r"rds refuses .code.call.|never execute"):
        syft_client.code.count_rows(df=asset)
