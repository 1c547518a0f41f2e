"""The domain served over HTTP, with owner and scientist in separate processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

import rds
from rds.domain import serve
from tests.conftest import free_port

SCIENTIST = textwrap.dedent(
    """
    import json, sys
    import rds
    url, email, password = sys.argv[1:4]
    session = rds.connect(url, email=email, password=password)
    ds = session.dataset("patients")

    def ward_counts(df):
        return df["ward"].value_counts().sort_index().to_dict()

    req = ds.request(ward_counts, reason="ward sizes")
    print(json.dumps({"id": req.id}), flush=True)
    print(json.dumps({"result": req.result(timeout=120, poll=0.2, progress=False)}), flush=True)
    """
)


def _scientist_process(url: str, creds: rds.Credentials, tmp: Path) -> subprocess.Popen[str]:
    script = tmp / "scientist.py"
    script.write_text(SCIENTIST)
    return subprocess.Popen(
        [sys.executable, str(script), url, creds.email, creds.password],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _read_json(proc: subprocess.Popen[str]) -> dict:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise AssertionError(
            f"scientist process said nothing: {proc.stderr.read() if proc.stderr else ''}"
        )
    return dict(json.loads(line))


def test_end_to_end_over_http(
    served_module: tuple[Path, str], private_frame: pd.DataFrame, tmp_path: Path
) -> None:
    path, url = served_module
    assert url.startswith("http://127.0.0.1:")
    owner = rds.Domain.open(path)  # attaches to the running server as its admin
    assert not owner.embedded and owner.url == url
    creds = owner.add_scientist("eve@lab.example.org")
    proc = _scientist_process(url, creds, tmp_path)
    try:
        submitted = _read_json(proc)
        # The server process records the submission without the owner doing anything.
        deadline = time.monotonic() + 20
        while not owner.ledger.events(event="submitted", request=submitted["id"]):
            assert time.monotonic() < deadline, "server did not record the submission"
            time.sleep(0.2)
        req = owner.request(submitted["id"])
        assert req.scientist == "eve@lab.example.org" and req.reason == "ward sizes"
        assert req.run().ok
        req.approve()
        released = _read_json(proc)
        assert released["result"] == private_frame["ward"].value_counts().sort_index().to_dict()
        _plain_syft_call_is_refused(url, creds)
    finally:
        proc.kill()
        owner.close()


def _plain_syft_call_is_refused(url: str, creds: rds.Credentials) -> None:
    """Invariant 1 over HTTP: the request is approved in syft, yet syft will not run it."""
    import syft as sy
    from syft.types.errors import SyftException

    host, port = url.rsplit(":", 1)
    client = sy.login(url=host, port=int(port), email=creds.email, password=creds.password)
    asset = client.datasets.get_all()[0].assets[0]
    with pytest.raises(SyftException, match=r"rds refuses .code.call."):
        client.code.ward_counts(df=asset)


def test_restart_after_kill_keeps_everything(served: tuple[Path, str]) -> None:
    path, url = served
    owner = rds.Domain.open(path)
    creds = owner.add_scientist("kim@lab.example.org")
    session = rds.connect(url, email=creds.email, password=creds.password)

    def total_los(df):
        return float(df["los_days"].sum())

    released = session.dataset("patients").request(total_los, reason="released one")
    denied = session.dataset("patients").request(total_los, reason="denied one")
    pending = session.dataset("patients").request(total_los, reason="pending one")
    owner.request(released.id).run()
    owner.request(released.id).approve()
    owner.request(denied.id).deny("not today")
    value = released.result(timeout=30, progress=False)

    pid = json.loads((path / "server.json").read_text())["pid"]
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.5)
    url = serve.start(path, port=int(url.rsplit(":", 1)[1]))

    owner = rds.Domain.open(path)
    session = rds.connect(url, email=creds.email, password=creds.password)
    assert session.datasets.names == ["patients"]
    statuses = {r.id: r.status for r in owner.requests}
    assert statuses == {released.id: "released", denied.id: "denied", pending.id: "submitted"}
    again = session.request(released.id)
    assert again.function == "total_los" and again.dataset == "patients"
    assert again.result(timeout=10, progress=False) == value
    with pytest.raises(rds.RequestDenied, match="not today"):
        session.request(denied.id).result(timeout=10, progress=False)
    other = owner.add_scientist("other@lab.example.org")
    nosy = rds.connect(url, email=other.email, password=other.password)
    with pytest.raises(rds.InvalidInput):
        nosy.request(released.id)
    assert owner.ledger.verify() > 0


def test_server_binds_loopback_without_cors(served_module: tuple[Path, str]) -> None:
    _, url = served_module
    port = int(url.rsplit(":", 1)[1])
    request = urllib.request.Request(
        f"{url}/api/v2/metadata", headers={"Origin": "http://evil.example"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert "access-control-allow-origin" not in {k.lower() for k in response.headers}
    # The listening socket is bound to 127.0.0.1 only (read from the kernel, so this holds
    # even on a machine with no other interface to probe).
    assert _listening_addresses(port) == {"0100007F"}
    # Nothing listens on the machine's other addresses.
    others = {
        info[4][0]
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
        if not info[4][0].startswith("127.")
    }
    for address in others:
        with socket.socket() as s, pytest.raises(OSError):
            s.settimeout(1)
            s.connect((address, port))


def _listening_addresses(port: int) -> set[str]:
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


def test_cli_start_stop(tmp_path: Path) -> None:
    path = tmp_path / "cli-domain"
    port = free_port()
    started = subprocess.run(
        [
            sys.executable,
            "-m",
            "rds.cli",
            "domain",
            "start",
            "Clinic",
            "--path",
            str(path),
            "--port",
            str(port),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert started.returncode == 0, started.stderr
    assert f"http://127.0.0.1:{port}" in started.stdout
    status = subprocess.run(
        [sys.executable, "-m", "rds.cli", "domain", "status", "--path", str(path)],
        capture_output=True,
        text=True,
    )
    assert "serving" in status.stdout
    stopped = subprocess.run(
        [sys.executable, "-m", "rds.cli", "domain", "stop", "--path", str(path)],
        capture_output=True,
        text=True,
    )
    assert stopped.returncode == 0 and not (path / "server.json").exists()
    # The port is free again and the directory can be opened in-process.
    with rds.Domain.open(path) as d:
        assert d.embedded and d.name == "Clinic"


def test_port_in_use_is_a_clear_error(served_module: tuple[Path, str], tmp_path: Path) -> None:
    _, url = served_module
    port = int(url.rsplit(":", 1)[1])
    with rds.Domain.create("Other", path=tmp_path / "other"):
        pass
    with pytest.raises(rds.DomainError, match="port in use"):
        serve.start(tmp_path / "other", port=port, timeout=60)
