"""Reading a long ledger parses only what was appended since (issue 14), and never hides
another writer's entries or an edit in place."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from rds.errors import LedgerError
from rds.ledger import Ledger
from rds.ledger import ledger as ledger_module


def test_reads_parse_only_the_new_lines_and_see_other_writers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = Ed25519PrivateKey.generate()
    path = tmp_path / "ledger.jsonl"
    mine, theirs = Ledger(path, key=key), Ledger(path, key=key)  # two processes' views
    for i in range(50):
        mine.append("submitted", actor="a@x.org", once_key=f"r{i}")
    assert len(mine.entries()) == 50
    full_reads: list[int] = []
    parse = ledger_module._parse

    def counted(handle):  # type: ignore[no-untyped-def]
        full_reads.append(1)
        return parse(handle)

    monkeypatch.setattr(ledger_module, "_parse", counted)
    for i in range(20):
        mine.append("ran", actor="a@x.org", request=f"r{i}")
    theirs.entries()  # first read by this object: in full
    theirs.append("approved", actor="b@x.org", request="r1")
    assert len(full_reads) == 1
    seen = mine.entries()  # mine reads the other's entry as an appended line
    assert len(full_reads) == 1 and seen[-1].event == "approved" and len(seen) == 71
    assert mine.append("submitted", actor="a@x.org", once_key="r3").seq == 4  # once: found
    assert mine.verify() == 71  # verify always reads everything


def test_an_edit_in_place_is_read_in_full(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    path = tmp_path / "ledger.jsonl"
    ledger = Ledger(path, key=key)
    for i in range(5):
        ledger.append("epsilon_spent", actor="a@x.org", request=f"r{i}", epsilon=0.5)
    assert len(ledger.entries()) == 5
    text = path.read_text()
    path.write_text(text.replace('"epsilon": 0.5', '"epsilon": 0.1'))  # same size, same file
    assert [e.data["epsilon"] for e in ledger.entries()] == [0.1] * 5
    with pytest.raises(LedgerError, match="altered"):
        ledger.verify()
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:2]))  # the tail cut off
    assert len(ledger.entries()) == 2
