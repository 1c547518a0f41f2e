"""The audit log: hash chain, tamper detection, concurrent writers, ``rds ledger verify``."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from multiprocessing import get_context
from pathlib import Path

import pytest

from rds.errors import LedgerError
from rds.ledger import Ledger


def _fill(path: Path, n: int = 5) -> Ledger:
    ledger = Ledger(path)
    for i in range(n):
        ledger.append("ran", actor="owner@x.example.org", request=f"r{i}")
    return ledger


def test_chain_verifies_and_links(tmp_path: Path) -> None:
    ledger = _fill(tmp_path / "l.jsonl")
    entries = ledger.entries()
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert all(b.prev == a.hash for a, b in itertools.pairwise(entries))
    assert ledger.verify() == 5


@pytest.mark.parametrize("attack", ["edit", "delete", "reorder", "truncate_hash"])
def test_tampering_is_detected(tmp_path: Path, attack: str) -> None:
    path = tmp_path / "l.jsonl"
    _fill(path)
    lines = path.read_text().splitlines()
    if attack == "edit":
        row = json.loads(lines[2])
        row["data"]["request"] = "someone-else"
        lines[2] = json.dumps(row)
    elif attack == "delete":
        del lines[1]
    elif attack == "reorder":
        lines[1], lines[2] = lines[2], lines[1]
    else:
        row = json.loads(lines[3])
        row["hash"] = "0" * 64
        lines[3] = json.dumps(row)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(LedgerError):
        Ledger(path).verify()
    cli = subprocess.run(
        [sys.executable, "-m", "rds.cli", "ledger", "verify", str(path)],
        capture_output=True,
        text=True,
    )
    assert cli.returncode == 2 and "rds:" in cli.stderr


def test_cli_verify_ok(tmp_path: Path) -> None:
    _fill(tmp_path / "ledger.jsonl", 3)
    cli = subprocess.run(
        [sys.executable, "-m", "rds.cli", "ledger", "verify", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert cli.returncode == 0 and "3 entries" in cli.stdout


def test_once_key_records_an_event_once(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.jsonl")
    first = ledger.append("submitted", actor="a", once_key="req-1", request="req-1")
    again = ledger.append("submitted", actor="a", once_key="req-1", request="req-1")
    assert first == again and len(ledger.entries()) == 1


def _writer(path: str, who: int) -> None:
    ledger = Ledger(Path(path))
    for i in range(25):
        ledger.append("ran", actor=f"proc{who}", i=i)


def test_concurrent_processes_keep_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    ctx = get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(path), w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert Ledger(path).verify() == 100


def test_ledger_file_is_owner_only(tmp_path: Path) -> None:
    ledger = _fill(tmp_path / "l.jsonl", 1)
    assert ledger.path.stat().st_mode & 0o077 == 0
