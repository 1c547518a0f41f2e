"""The audit log: hash chain, signatures, attacks without the key, adoption, the CLI."""

from __future__ import annotations

import hashlib
import itertools
import json
import stat
import subprocess
import sys
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from rds.cli import main
from rds.errors import LedgerError
from rds.ledger import (
    Ledger,
    create_key_pair,
    fingerprint,
    load_private_key,
    load_public_key,
    open_signing,
    write_public_key,
)
from rds.worker.layout import Layout

GENESIS = "0" * 64
OWNER = "owner@x.example.org"


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def _fill(path: Path, key: Ed25519PrivateKey, n: int = 5) -> Ledger:
    """A signed ledger of ``n`` entries, with ``ledger.pub`` beside it."""
    ledger = Ledger(path, key=key)
    for i in range(n):
        ledger.append("ran", actor=OWNER, request=f"r{i}")
    write_public_key(key.public_key(), path.with_name("ledger.pub"))
    return ledger


def _budget_ledger(path: Path, key: Ed25519PrivateKey) -> Ledger:
    ledger = Ledger(path, key=key)
    ledger.append("domain_created", actor=OWNER, name="H")
    for request in ("r1", "r2"):
        ledger.append("epsilon_reserved", actor=OWNER, request=request, epsilon=0.5)
        ledger.append("epsilon_spent", actor=OWNER, request=request, epsilon=0.5)
    ledger.append("approved", actor=OWNER, request="r2")
    return ledger


# -- what an attacker who can write the file (but has no key) can do -----------------------
def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _write(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(row, sort_keys=True) + "\n" for row in rows))


def _hash(row: dict[str, Any]) -> str:
    body = {k: row[k] for k in ("seq", "time", "event", "actor", "data", "prev")}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _rechain(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Renumber and re-hash every row, as the old unsigned ledger allowed undetected."""
    prev = GENESIS
    for seq, row in enumerate(rows, start=1):
        row["seq"], row["prev"] = seq, prev
        row["hash"] = prev = _hash(row)
    return rows


def _verifier(path: Path) -> Ledger:
    return Ledger(path, public_key=load_public_key(path.with_name("ledger.pub")))


def test_chain_verifies_and_links(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    ledger = _fill(tmp_path / "l.jsonl", key)
    entries = ledger.entries()
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert all(b.prev == a.hash for a, b in itertools.pairwise(entries))
    assert all(len(e.sig) == 128 for e in entries)
    assert ledger.verify() == 5
    assert _verifier(ledger.path).verify() == 5  # the public key alone suffices


def test_reading_needs_no_key_writing_and_verifying_do(
    tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    path = tmp_path / "l.jsonl"
    _fill(path, key, 2)
    reader = Ledger(path)
    assert [e.data["request"] for e in reader.events(event="ran")] == ["r0", "r1"]
    with pytest.raises(LedgerError, match="read-only"):
        reader.append("ran", actor=OWNER)
    with pytest.raises(LedgerError, match="public key"):
        reader.verify()
    assert len(reader.entries()) == 2


@pytest.mark.parametrize("attack", ["edit", "delete", "reorder", "truncate_hash", "garbage"])
def test_tampering_is_detected(tmp_path: Path, key: Ed25519PrivateKey, attack: str) -> None:
    path = tmp_path / "l.jsonl"
    _fill(path, key)
    lines = path.read_text().splitlines()
    if attack == "edit":
        row = json.loads(lines[2])
        row["data"]["request"] = "someone-else"
        lines[2] = json.dumps(row)
        expected = r"entry 3 .* altered"
    elif attack == "delete":
        del lines[1]
        expected = r"entry 3 .* position 2: lines are missing"
    elif attack == "reorder":
        lines[1], lines[2] = lines[2], lines[1]
        expected = r"entry 3 .* position 2"
    elif attack == "truncate_hash":
        row = json.loads(lines[3])
        row["hash"] = "0" * 64
        lines[3] = json.dumps(row)
        expected = r"entry 4 .* altered"
    else:
        lines[3] = "{not json"
        expected = r"line 4 is not a valid entry"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(LedgerError, match=expected):
        _verifier(path).verify()
    cli = subprocess.run(
        [sys.executable, "-m", "rds.cli", "ledger", "verify", str(path)],
        capture_output=True,
        text=True,
    )
    assert cli.returncode == 2 and "rds:" in cli.stderr and "Ledger OK" not in cli.stdout


def test_rechained_edit_is_detected(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    path = tmp_path / "l.jsonl"
    _fill(path, key)
    rows = _rows(path)
    rows[2]["data"]["request"] = "someone-else"
    _write(path, _rechain(rows))
    with pytest.raises(LedgerError) as info:
        _verifier(path).verify()
    message = str(info.value)
    assert f"Ledger entry 3 ('ran' at {rows[2]['time']}) has a bad signature" in message
    assert fingerprint(key) in message


def test_rechained_actor_change_is_detected(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    path = tmp_path / "l.jsonl"
    _budget_ledger(path, key)
    write_public_key(key.public_key(), path.with_name("ledger.pub"))
    rows = _rows(path)
    assert rows[5]["event"] == "approved"
    rows[5]["actor"] = "policy:auto_release"  # re-attribute the owner's decision
    _write(path, _rechain(rows))
    with pytest.raises(LedgerError, match=r"entry 6 \('approved' at .*\) has a bad signature"):
        _verifier(path).verify()


@pytest.mark.parametrize("event", ["epsilon_reserved", "epsilon_spent"])
def test_refunding_epsilon_by_deleting_an_entry_is_detected(
    tmp_path: Path, key: Ed25519PrivateKey, event: str
) -> None:
    path = tmp_path / "l.jsonl"
    _budget_ledger(path, key)
    write_public_key(key.public_key(), path.with_name("ledger.pub"))
    rows = _rows(path)
    gone = next(i for i, row in enumerate(rows) if row["event"] == event)
    following = rows[gone + 1]["event"]
    del rows[gone]
    _write(path, _rechain(rows))
    with pytest.raises(
        LedgerError, match=rf"entry {gone + 1} \('{following}' at .*\) has a bad signature"
    ):
        _verifier(path).verify()


def test_entry_forged_with_another_key_is_detected(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    path = tmp_path / "l.jsonl"
    _fill(path, key, 3)
    Ledger(path, key=Ed25519PrivateKey.generate()).append("approved", actor=OWNER, request="r0")
    with pytest.raises(LedgerError, match=r"entry 4 \('approved' at .*\) has a bad signature"):
        _verifier(path).verify()


@pytest.mark.parametrize("sig", [None, "", "zz", "00" * 64])
def test_unsigned_entry_is_detected(
    tmp_path: Path, key: Ed25519PrivateKey, sig: str | None
) -> None:
    path = tmp_path / "l.jsonl"
    _fill(path, key, 3)
    rows = _rows(path)
    forged = {
        "seq": 4,
        "time": rows[-1]["time"],
        "event": "epsilon_refunded",
        "actor": OWNER,
        "data": {"request": "r1"},
        "prev": rows[-1]["hash"],
    }
    forged["hash"] = _hash(forged)
    if sig is not None:
        forged["sig"] = sig
    _write(path, [*rows, forged])
    problem = "is unsigned" if not sig else "has a bad signature"
    with pytest.raises(LedgerError, match=rf"entry 4 \('epsilon_refunded' at .*\) {problem}"):
        _verifier(path).verify()


def test_signatures_copied_between_entries_are_detected(
    tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    path = tmp_path / "l.jsonl"
    _fill(path, key)
    rows = _rows(path)
    rows[1]["sig"], rows[2]["sig"] = rows[2]["sig"], rows[1]["sig"]
    _write(path, rows)
    with pytest.raises(LedgerError, match=r"entry 2 .* bad signature"):
        _verifier(path).verify()
    # ...nor does a signature taken from another ledger signed by the same key
    other = tmp_path / "other.jsonl"
    _fill(other, key)
    rows = _rows(path)
    rows[1]["sig"] = _rows(other)[1]["sig"]
    _write(path, rows)
    with pytest.raises(LedgerError, match=r"entry 2 .* bad signature"):
        _verifier(path).verify()


def test_correction_is_a_new_entry(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    path = tmp_path / "l.jsonl"
    ledger = _fill(path, key, 3)
    before = path.read_text()
    ledger.append("corrected", actor=OWNER, seq=2, note="r1 was run twice")
    after = path.read_text()
    assert after.startswith(before) and after.count("\n") == 4
    assert _verifier(path).verify() == 4
    assert not hasattr(ledger, "delete") and not hasattr(ledger, "rewrite")


def test_cli_on_a_tampered_domain(
    tmp_path: Path, key: Ed25519PrivateKey, capsys: pytest.CaptureFixture[str]
) -> None:
    layout = Layout(tmp_path / "domain")
    create_key_pair(layout.ledger_key, layout.ledger_public, key=key)
    _fill(layout.ledger, key, 3)
    with pytest.raises(SystemExit) as ok:
        main(["ledger", "verify", str(layout.root)])
    out = capsys.readouterr().out
    assert ok.value.code == 0
    assert f"Ledger OK: 3 entries, hash chain and signatures intact (key {fingerprint(key)})" in out

    rows = _rows(layout.ledger)
    rows[1]["data"]["request"] = "r9"
    _write(layout.ledger, _rechain(rows))
    with pytest.raises(SystemExit) as bad:
        main(["ledger", "verify", str(layout.root)])
    err = capsys.readouterr().err
    assert bad.value.code == 2
    assert f"rds: Ledger entry 2 ('ran' at {rows[1]['time']}) has a bad signature" in err

    cli = subprocess.run(
        [sys.executable, "-m", "rds.cli", "ledger", "verify", str(layout.root)],
        capture_output=True,
        text=True,
    )
    assert cli.returncode == 2 and "entry 2" in cli.stderr and cli.stdout == ""


def test_cli_public_key_option_and_missing_key(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    path = tmp_path / "audit" / "copy.jsonl"
    path.parent.mkdir()
    _fill(path, key, 2)
    elsewhere = tmp_path / "owner.pub"
    path.with_name("ledger.pub").rename(elsewhere)

    def verify(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "rds.cli", "ledger", "verify", str(path), *extra],
            capture_output=True,
            text=True,
        )

    missing = verify()
    assert missing.returncode == 2 and "--public-key" in missing.stderr
    given = verify("--public-key", str(elsewhere))
    assert given.returncode == 0 and "Ledger OK: 2 entries" in given.stdout
    write_public_key(Ed25519PrivateKey.generate().public_key(), elsewhere)
    wrong = verify("--public-key", str(elsewhere))
    assert wrong.returncode == 2 and "entry 1" in wrong.stderr
    nothing = subprocess.run(
        [sys.executable, "-m", "rds.cli", "ledger", "verify", str(tmp_path / "none")],
        capture_output=True,
        text=True,
    )
    assert nothing.returncode == 2 and "No ledger" in nothing.stderr


def test_key_files(tmp_path: Path) -> None:
    private, public = tmp_path / "secrets" / "ledger.key", tmp_path / "ledger.pub"
    key = create_key_pair(private, public)
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    raw = key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    text = public.read_bytes()
    assert b"PRIVATE" not in text and raw not in text and raw.hex().encode() not in text
    assert fingerprint(load_public_key(public)) == fingerprint(key)
    assert fingerprint(load_private_key(private)) == fingerprint(key)
    assert len(fingerprint(key)) == 16
    with pytest.raises(LedgerError, match="never overwritten"):
        create_key_pair(private, public)
    assert fingerprint(load_private_key(private)) == fingerprint(key)
    with pytest.raises(LedgerError, match="not a readable PEM key"):
        load_private_key(public)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["ledger.key", "ledger.pub", "secrets"]
    x25519 = tmp_path / "x25519.key"
    x25519.write_bytes(
        X25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(LedgerError, match="not hold an Ed25519 private key"):
        load_private_key(x25519)


# -- a ledger written by an older rds, before entries were signed --------------------------
def _old_ledger(path: Path, n: int = 4) -> list[str]:
    rows = [
        {
            "seq": 0,
            "time": f"2024-01-0{i + 1}T00:00:00.000000+00:00",
            "event": "ran",
            "actor": OWNER,
            "data": {"request": f"r{i}"},
            "prev": "",
        }
        for i in range(n)
    ]
    _write(path, _rechain(rows))
    return path.read_text().splitlines()


def _open(root: Path) -> Ledger:
    return open_signing(
        root / "ledger.jsonl",
        key_path=root / "secrets" / "ledger.key",
        public_path=root / "ledger.pub",
        actor=OWNER,
    )


def test_adopting_an_old_unsigned_ledger(tmp_path: Path) -> None:
    old = _old_ledger(tmp_path / "ledger.jsonl")
    ledger = _open(tmp_path)
    assert stat.S_IMODE((tmp_path / "secrets" / "ledger.key").stat().st_mode) == 0o600
    entries = ledger.entries()
    assert [e.event for e in entries] == ["ran"] * 4 + ["ledger_signing_started"]
    assert entries[-1].data == {"adopted": 4} and entries[-1].actor == OWNER
    assert _verifier(ledger.path).verify() == 5
    for line, entry in zip(old, entries[:4], strict=True):  # content and hashes unchanged
        assert json.loads(line) == {k: v for k, v in entry.as_dict().items() if k != "sig"}
    ledger.append("ran", actor=OWNER, request="r4")
    again = _open(tmp_path)
    assert again.verify() == 6 and len(again.events(event="ledger_signing_started")) == 1


def test_old_ledger_with_a_broken_chain_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    lines = _old_ledger(path)
    row = json.loads(lines[1])
    row["data"]["request"] = "someone-else"
    lines[1] = json.dumps(row, sort_keys=True)
    path.write_text("\n".join(lines) + "\n")
    before = path.read_text()
    with pytest.raises(LedgerError, match=r"Refusing to sign .* entry 2 .* altered"):
        _open(tmp_path)
    assert path.read_text() == before and not (tmp_path / "secrets" / "ledger.key").exists()


def test_stripped_signatures_are_never_readopted(tmp_path: Path) -> None:
    ledger = _open(tmp_path)
    for i in range(3):
        ledger.append("ran", actor=OWNER, request=f"r{i}")
    rows = _rows(ledger.path)
    rows[1]["data"]["request"] = "someone-else"
    for row in rows:
        del row["sig"]
    _write(ledger.path, _rechain(rows))
    reopened = _open(tmp_path)  # the key exists: nothing is re-signed
    with pytest.raises(LedgerError, match=r"entry 1 .* is unsigned"):
        reopened.verify()
    (tmp_path / "secrets" / "ledger.key").unlink()
    _fill(ledger.path, Ed25519PrivateKey.generate(), 1)
    with pytest.raises(LedgerError, match=r"key .* is missing"):
        _open(tmp_path)


def _adopt_and_append(root: str, who: int) -> None:
    ledger = _open(Path(root))
    for i in range(10):
        ledger.append("ran", actor=f"proc{who}", i=i)


def test_concurrent_opens_adopt_once(tmp_path: Path) -> None:
    _old_ledger(tmp_path / "ledger.jsonl", 3)
    ctx = get_context("spawn")
    procs = [ctx.Process(target=_adopt_and_append, args=(str(tmp_path), w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0] * 4
    ledger = _open(tmp_path)
    assert ledger.verify() == 3 + 1 + 40
    assert len(ledger.events(event="ledger_signing_started")) == 1


# -- semantics the ε budget relies on -------------------------------------------------------
def test_once_key_records_an_event_once(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    ledger = Ledger(tmp_path / "l.jsonl", key=key)
    first = ledger.append("submitted", actor="a", once_key="req-1", request="req-1")
    again = ledger.append("submitted", actor="a", once_key="req-1", request="req-1")
    assert first == again and len(ledger.entries()) == 1


def _writer(path: str, key_path: str, who: int) -> None:
    ledger = Ledger(Path(path), key=load_private_key(Path(key_path)))
    for i in range(25):
        ledger.append("ran", actor=f"proc{who}", i=i)


def test_concurrent_processes_keep_the_chain(tmp_path: Path) -> None:
    path, key_path = tmp_path / "l.jsonl", tmp_path / "secrets" / "ledger.key"
    key = create_key_pair(key_path, tmp_path / "ledger.pub")
    ctx = get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(path), str(key_path), w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert Ledger(path, key=key).verify() == 100


def test_ledger_file_is_owner_only(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    ledger = _fill(tmp_path / "l.jsonl", key, 1)
    assert ledger.path.stat().st_mode & 0o077 == 0


def test_to_frame_is_one_line_per_entry(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl", key=Ed25519PrivateKey.generate())
    ledger.append("published", actor="owner@x.org", dataset="patients", rows=400)
    ledger.append("approved", actor="owner@x.org", request="0123456789abcdef", note="ok")
    ledger.append("denied", actor="owner@x.org", request="fedcba9876543210", reason="r" * 90)
    frame = ledger.to_frame()
    assert list(frame["event"]) == ["published", "approved", "denied"]
    assert list(frame.columns[:4]) == ["seq", "time", "event", "actor"]
    assert frame.loc[0, "dataset"] == "patients" and frame.loc[0, "detail"] == "rows=400"
    assert frame.loc[1, "request"] == "01234567" and frame.loc[1, "detail"] == "note=ok"
    assert len(frame.loc[2, "detail"]) < 80  # long values are cut to keep one line
    assert list(ledger.to_frame(event="approved")["seq"]) == [2]
    assert list(ledger.to_frame(last=1)["event"]) == ["denied"]
