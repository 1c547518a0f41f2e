"""An append-only, hash-chained audit log: one JSON object per line.

Each entry carries the SHA-256 of the previous one, so editing, reordering or removing a
line breaks the chain from there on and ``verify`` says where. Appends take an exclusive
``flock`` so an owner's notebook and the domain's server process can both write.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rds.errors import LedgerError

GENESIS = "0" * 64


@dataclass(frozen=True)
class Entry:
    """One ledger line."""

    seq: int
    time: str
    event: str
    actor: str
    data: dict[str, Any]
    prev: str
    hash: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "time": self.time,
            "event": self.event,
            "actor": self.actor,
            "data": self.data,
            "prev": self.prev,
            "hash": self.hash,
        }


def _digest(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


class Ledger:
    """The audit log of one domain.

    Examples
    --------
    >>> ledger = Ledger(tmp / "ledger.jsonl")
    >>> ledger.append("published", actor="owner@example.org", dataset="patients").seq
    1
    >>> ledger.verify()
    1
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def append(
        self,
        event: str,
        *,
        actor: str,
        once_key: str | None = None,
        guard: Callable[[list[Entry]], None] | None = None,
        **data: Any,
    ) -> Entry:
        """Add an entry.

        With ``once_key``, an entry of the same event whose data has that key already wins.
        ``guard`` is called with every entry while the ledger is locked, before the new one
        is written; if it raises, nothing is written. Check-then-append decisions (such as
        "does this spend fit the budget?") are therefore atomic across threads and processes.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "r+", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.seek(0)
            entries = list(_parse(handle))
            for entry in entries:
                if (
                    once_key is not None
                    and entry.event == event
                    and entry.data.get("once") == once_key
                ):
                    return entry
            last = entries[-1] if entries else None
            if guard is not None:
                guard(entries)
            if once_key is not None:
                data["once"] = once_key
            body: dict[str, Any] = {
                "seq": (last.seq + 1) if last else 1,
                "time": datetime.now(UTC).isoformat(timespec="microseconds"),
                "event": event,
                "actor": actor,
                "data": data,
                "prev": last.hash if last else GENESIS,
            }
            entry = Entry(**body, hash=_digest(body))
            handle.write(json.dumps(entry.as_dict(), sort_keys=True, default=str) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
            return entry

    def entries(self) -> list[Entry]:
        """Every entry, oldest first (not verified; see ``verify``)."""
        if not self.path.exists():
            return []
        with self.path.open(encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_SH)
            return list(_parse(handle))

    def events(self, **match: Any) -> list[Entry]:
        """Entries whose event and data fields equal ``match`` (``event=`` filters events)."""
        event = match.pop("event", None)
        return [
            e
            for e in self.entries()
            if (event is None or e.event == event)
            and all(e.data.get(k) == v for k, v in match.items())
        ]

    def verify(self) -> int:
        """Check the whole chain; return the number of entries or raise ``LedgerError``."""
        prev, count = GENESIS, 0
        for entry in self.entries():
            count += 1
            body = entry.as_dict()
            claimed = body.pop("hash")
            if entry.seq != count:
                raise LedgerError(f"Entry {count} has sequence number {entry.seq}: lines missing.")
            if entry.prev != prev:
                raise LedgerError(f"Entry {count} does not follow entry {count - 1}: chain broken.")
            if _digest(body) != claimed:
                raise LedgerError(f"Entry {count} was altered after it was written.")
            prev = claimed
        return count


def _parse(handle: Any) -> Iterator[Entry]:
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            yield Entry(**raw)
        except (ValueError, TypeError) as exc:
            raise LedgerError(f"Ledger line {number} is not a valid entry: {exc}") from None
