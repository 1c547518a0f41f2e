"""``make demo``'s domain: seeded with real data, served over HTTP, credentials owner-only."""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

import rds
from rds.demo import SCIENTIST_EMAIL
from rds.domain import serve
from rds.profiles import ProfileStore
from rds.worker.layout import write_private
from tests.conftest import NOTEBOOKS, free_port, patients, run_notebook


def test_demo_seeds_and_serves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "demo"
    port = free_port()
    monkeypatch.setenv("RDS_CONFIG_DIR", str(tmp_path / "config"))  # the child inherits it
    out = subprocess.run(
        [sys.executable, "-m", "rds.demo", "--path", str(path), "--port", str(port), "--no-lab"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    try:
        assert out.returncode == 0, out.stderr
        url = f"http://127.0.0.1:{port}"
        assert f"serving at {url}" in out.stdout
        assert "[3/3] transactions: 1,000,000 rows" in out.stdout
        creds_file = path / "scientist.json"
        assert str(creds_file.resolve()) in out.stdout
        assert creds_file.stat().st_mode & 0o077 == 0
        creds = json.loads(creds_file.read_text())
        session = rds.connect(url, email=creds["email"], password=creds["password"])
        listing = session.datasets.to_frame().set_index("name")
        assert listing.loc["breast_cancer", "rows"] == 569
        assert listing.loc["diabetes", "rows"] == 442
        assert listing.loc["transactions", "rows"] == 1_000_000
        assert session.dataset("diabetes").schema.set_index("name").loc["age", "bounds"] == [0, 120]
        # Saved as profiles for connect(profile=...) and the Remote Data panel.
        assert "'demo' (scientist) and 'demo-owner'" in out.stdout
        assert rds.connect(profile="demo").dataset("diabetes").rows == 442
        assert ProfileStore().get("demo-owner").path == str(path.resolve())
        # The tour notebook JupyterLab opens on, against this demo domain, as make demo sets it.
        monkeypatch.setenv("RDS_DEMO_URL", url)
        monkeypatch.setenv("RDS_DEMO_DIR", str(path))
        monkeypatch.setenv("RDS_DEMO_CREDENTIALS", str(creds_file))
        text = run_notebook(NOTEBOOKS / "demo-tour.ipynb", tmp_path)
        assert "Regional spending profile" in text
        assert "sandboxed=True" in text
        assert "central" in text and "north" in text
        assert "scientist sees: awaiting review" in text  # exact SQL waits for the owner
        assert (
            "grocery" in text and "avg_amount_ci_low" in text
        )  # released by the owner; DP by policy
        assert "<Budget transactions: ε spent 0.5" in text
    finally:
        serve.stop(path)


def _accepts(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize(
    ("signum", "via_parent"),
    [(signal.SIGTERM, False), (signal.SIGINT, False), (signal.SIGTERM, True)],
    ids=["SIGTERM", "SIGINT", "SIGTERM-to-its-parent"],
)
def test_a_signal_stops_jupyterlab_and_the_domain(
    tmp_path: Path, signum: int, via_parent: bool
) -> None:
    """Also when the signal goes to the demo's parent, as ``make demo`` is, which dies of it
    without passing it on (a shell that waits for the demo stands in for make here)."""
    # A small domain where the demo's would be: the demo finds it seeded and serves it.
    path = tmp_path / "demo"
    with rds.Domain.create("Demo Hospital", path=path) as domain:
        domain.publish("patients", patients(), description="Synthetic admissions")
        creds = domain.add_scientist(SCIENTIST_EMAIL)
    write_private(
        path / "scientist.json", json.dumps({"email": creds.email, "password": creds.password})
    )
    port, lab_port = free_port(), free_port()
    env = {
        **os.environ,
        "RDS_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "jupyter-runtime"),
    }
    argv = [sys.executable, "-m", "rds.demo", "--path", str(path), "--port", str(port)]
    log = tmp_path / "demo.log"
    with log.open("w") as out:
        command = [*argv, "--lab-port", str(lab_port)]
        if via_parent:  # "; exit $?" keeps sh as the demo's parent instead of exec-ing it
            command = ["sh", "-c", shlex.join(command) + "; exit $?"]
        parent = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 300
        while not (_accepts(port) and _accepts(lab_port) and "serving at" in log.read_text()):
            assert parent.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        if via_parent:
            (demo_process,) = psutil.Process(parent.pid).children()
        children = psutil.Process(parent.pid).children(recursive=True)
        argvs = [" ".join(c.cmdline()) for c in children]
        assert any("jupyter" in a and f"--port {lab_port}" in a for a in argvs), argvs
        assert any("rds.domain.serve" in a for a in argvs), argvs
        assert any("rds._syft.http_main" in a for a in argvs), argvs

        parent.send_signal(signum)
        if via_parent:
            parent.wait(30)  # sh dies of it; the demo gets its SIGTERM from the kernel
            demo_process.wait(120)  # not our child: psutil cannot tell its exit code
        else:
            assert parent.wait(120) == 0, log.read_text()
        assert "Demo stopped" in log.read_text()
        assert not _accepts(port), "the domain still serves"
        assert not _accepts(lab_port), "JupyterLab still serves"
        assert not (path / "server.json").exists()
        _, alive = psutil.wait_procs(children, timeout=5)
        assert not [
            (p.pid, " ".join(p.cmdline())) for p in alive if p.status() != psutil.STATUS_ZOMBIE
        ]
    finally:
        if parent.poll() is None:
            parent.kill()
        for child in psutil.Process().children(recursive=True):
            if "rds.demo" in " ".join(child.cmdline()):
                child.kill()
        serve.stop(path)
