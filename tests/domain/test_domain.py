"""Domain creation, secure defaults and persistence (invariants 2, 6, 8)."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import rds


def test_secrets_are_random_and_owner_only(tmp_path: Path) -> None:
    a = rds.Domain.create("Same Name", path=tmp_path / "a")
    b = rds.Domain.create("Same Name", path=tmp_path / "b")
    try:
        for d in (a, b):
            for secret in (d.layout.admin, d.layout.identity, d.layout.ledger_key):
                assert stat.S_IMODE(secret.stat().st_mode) == 0o600
            assert stat.S_IMODE(d.layout.secrets.stat().st_mode) == 0o700
            admin = json.loads(d.layout.admin.read_text())
            assert admin["password"] != "changethis" and len(admin["password"]) >= 24
        keys = [json.loads(d.layout.identity.read_text()) for d in (a, b)]
        assert a.layout.ledger_key.read_bytes() != b.layout.ledger_key.read_bytes()
        assert b"PRIVATE" not in a.layout.ledger_public.read_bytes()
        assert keys[0]["signing_key"] != keys[1]["signing_key"]
        assert keys[0]["server_id"] != keys[1]["server_id"]
    finally:
        a.close()
        b.close()


def test_no_default_credentials(domain: rds.Domain) -> None:
    for email, password in (
        ("info@openmined.org", "changethis"),
        (domain.owner, "changethis"),
    ):
        with pytest.raises(rds.AuthenticationFailed):
            rds.connect(domain, email=email, password=password)


def test_state_survives_reopen(tmp_path: Path, private_frame: pd.DataFrame) -> None:
    path = tmp_path / "d"
    d = rds.Domain.create("H", path=path)
    d.publish("patients", private_frame, description="x")
    creds = d.add_scientist("bob@lab.example.org")
    session = rds.connect(d, email=creds.email, password=creds.password)

    def n(df):
        return len(df)

    req = session.dataset("patients").request(n, reason="count")
    d.close()

    reopened = rds.Domain.open(path)
    try:
        assert list(reopened.datasets["name"]) == ["patients"]
        [owner_req] = reopened.requests
        assert owner_req.id == req.id and owner_req.status == "submitted"
        owner_req.run()
        owner_req.approve()
        again = rds.connect(reopened, email=creds.email, password=creds.password)
        assert again.dataset("patients").rows == len(private_frame)
        assert reopened.request(req.id).status == "released"
    finally:
        reopened.close()


def test_open_twice_in_process_is_refused(domain: rds.Domain) -> None:
    with pytest.raises(rds.DomainError, match="another process"):
        rds.Domain.open(domain.layout.root)


def test_create_refuses_existing_and_open_refuses_missing(
    domain: rds.Domain, tmp_path: Path
) -> None:
    with pytest.raises(rds.DomainError, match="already holds"):
        rds.Domain.create("again", path=domain.layout.root)
    with pytest.raises(rds.DomainError, match="No domain"):
        rds.Domain.open(tmp_path / "nothing-here")


def test_private_data_never_enters_syft(domain: rds.Domain, private_frame: pd.DataFrame) -> None:
    """Every byte syft stores is scanned for private values (invariant 2)."""
    stored = b"".join(p.read_bytes() for p in domain.layout.syft_state.rglob("*") if p.is_file())
    assert stored, "syft stored nothing at all?"
    for secret in private_frame["patient_id"].head(50):
        assert secret.encode() not in stored
    # The private store does hold them (so the scan above would have found them).
    private = (domain.layout.private / "patients" / "data.parquet").read_bytes()
    assert b"P-SECRET-00000" in private


def _verify_cli(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rds.cli", "ledger", "verify", str(path)],
        capture_output=True,
        text=True,
    )


def test_ledger_is_signed_and_an_older_domain_is_adopted(tmp_path: Path) -> None:
    """Invariant 8: a domain signs its ledger; one made before signing is adopted on open."""
    path = tmp_path / "d"
    with rds.Domain.create("H", path=path) as d:
        assert d.ledger.verify() == 1
        layout = d.layout
    assert "Ledger OK: 1 entries, hash chain and signatures intact" in _verify_cli(path).stdout
    # What an older rds left behind: the same hash chain, no signatures, no key.
    rows = [json.loads(line) for line in layout.ledger.read_text().splitlines()]
    layout.ledger.write_text(
        "".join(json.dumps({k: v for k, v in r.items() if k != "sig"}) + "\n" for r in rows)
    )
    layout.ledger_key.unlink()
    layout.ledger_public.unlink()
    with rds.Domain.open(path) as reopened:
        events = [(e.event, e.data.get("adopted")) for e in reopened.ledger.entries()]
        assert events == [("domain_created", None), ("ledger_signing_started", 1)]
        assert reopened.ledger.verify() == 2
    assert stat.S_IMODE(layout.ledger_key.stat().st_mode) == 0o600
    assert _verify_cli(path).returncode == 0
    # Without the key, re-attributing the domain's creation cannot be hidden.
    rows = [json.loads(line) for line in layout.ledger.read_text().splitlines()]
    rows[0]["actor"] = "mallory@example.org"
    layout.ledger.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cli = _verify_cli(path)
    assert cli.returncode == 2 and "entry 1 ('domain_created'" in cli.stderr
