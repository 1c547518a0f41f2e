"""``make demo``'s domain: seeded with real data, served over HTTP, credentials owner-only."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import rds
from rds.domain import serve
from rds.profiles import ProfileStore
from tests.conftest import NOTEBOOKS, free_port, run_notebook


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
