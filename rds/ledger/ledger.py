"""An append-only, hash-chained, signed audit log: one JSON object per line.

Each entry carries the SHA-256 of the previous one (``prev``), the SHA-256 of its own content
(``hash``: seq, time, event, actor, data and prev) and an Ed25519 signature of that hash by
the domain's ledger key (``sig``). Editing, reordering or removing a line breaks the chain,
and re-chaining the lines after it, changing who is named as the ``actor``, or writing a new
entry needs the private key: ``verify`` names the first entry that does not hold. Reading
needs no key; verifying needs only the public one.

There is no API to rewrite or delete an entry: a correction is a new signed entry that says
what it corrects. The one rewrite is ``open_signing`` adopting a ledger written by an older,
unsigning rds, once, when the key is created. What ``verify`` cannot see is the tail being
cut off: the first N entries of a ledger are themselves a valid ledger. That shows only once
the latest head (seq and hash) is published somewhere the writer of the file cannot change.

Appends take an exclusive ``flock`` so an owner's notebook and the domain's server process
can both write.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from rds.errors import LedgerError

if TYPE_CHECKING:
    import pandas as pd
from rds.ledger.keys import (
    create_key_pair,
    fingerprint,
    load_private_key,
    sync_directory,
    write_public_key,
)

GENESIS = "0" * 64
# What is signed is this prefix and the 32 bytes of the entry's hash, so that a signature made
# by the same key for another purpose can never pass for a ledger entry's.
SIGNED_PREFIX = b"rds ledger entry v1\n"


@dataclass(frozen=True)
class Entry:
    """One ledger line. ``sig`` is empty only in a ledger written before signing began."""

    seq: int
    time: str
    event: str
    actor: str
    data: dict[str, Any]
    prev: str
    hash: str
    sig: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {**self.body(), "hash": self.hash, "sig": self.sig}

    def body(self) -> dict[str, Any]:
        """What ``hash`` covers."""
        return {
            "seq": self.seq,
            "time": self.time,
            "event": self.event,
            "actor": self.actor,
            "data": self.data,
            "prev": self.prev,
        }


class Ledger:
    """The audit log of one domain.

    ``key`` signs appends; without it the ledger is read-only. ``verify`` checks signatures
    with the public half of ``key``, else with ``public_key``.

    Examples
    --------
    >>> ledger = Ledger(tmp / "ledger.jsonl", key=Ed25519PrivateKey.generate())
    >>> ledger.append("published", actor="owner@example.org", dataset="patients").seq
    1
    >>> ledger.verify()
    1
    """

    def __init__(
        self,
        path: Path,
        *,
        key: Ed25519PrivateKey | None = None,
        public_key: Ed25519PublicKey | None = None,
    ) -> None:
        self.path = Path(path)
        self._key = key
        self.public_key = key.public_key() if key is not None else public_key
        # What this object last read: (file identity, bytes read, entries). Appends only
        # add lines, so the next read parses what was added since (see ``_read``).
        self._seen: tuple[tuple[int, int, int], int, list[Entry]] | None = None

    def append(
        self,
        event: str,
        *,
        actor: str,
        once_key: str | None = None,
        guard: Callable[[list[Entry]], None] | None = None,
        **data: Any,
    ) -> Entry:
        """Add a signed entry.

        With ``once_key``, an entry of the same event whose data has that key already wins.
        ``guard`` is called with every entry while the ledger is locked, before the new one
        is written; if it raises, nothing is written. Check-then-append decisions (such as
        "does this spend fit the budget?") are therefore atomic across threads and processes.
        """
        if self._key is None:
            raise LedgerError(
                f"The ledger {self.path} was opened read-only (no signing key); "
                "open it with Ledger(path, key=...) to append."
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _locked(self.path, exclusive=True) as handle:
            entries = self._read(handle)
            for entry in entries:
                if (
                    once_key is not None
                    and entry.event == event
                    and entry.data.get("once") == once_key
                ):
                    return entry
            if guard is not None:
                guard(entries)
            if once_key is not None:
                data["once"] = once_key
            entry = _seal(self._key, entries[-1] if entries else None, event, actor, data)
            handle.write(_line(entry))
            handle.flush()
            os.fsync(handle.fileno())
            if self._seen is not None:
                written = os.fstat(handle.fileno())
                ident = (written.st_dev, written.st_ino, written.st_mtime_ns)
                self._seen = (ident, written.st_size, [*self._seen[2], entry])
            return entry

    def entries(self) -> list[Entry]:
        """Every entry, oldest first (not verified; see ``verify``)."""
        if not self.path.exists():
            return []
        with _locked(self.path, exclusive=False) as handle:
            return self._read(handle)

    def _read(self, handle: IO[str]) -> list[Entry]:
        """Every entry, under the caller's lock, parsing only the lines appended since this
        object last read the same file (a ledger of thousands of entries is read on every
        append). Anything else — another file (a rewrite), a shorter one, added lines that
        do not continue the chain read before — is read again in full. ``verify`` always
        reads in full."""
        info = os.fstat(handle.fileno())
        ident = (info.st_dev, info.st_ino, info.st_mtime_ns)
        seen = self._seen
        same_file = seen is not None and seen[0][:2] == ident[:2]
        # Same size but written since: not an append (an edit in place); read in full.
        if (
            seen is not None
            and same_file
            and (seen[1] < info.st_size or (seen[1] == info.st_size and seen[0][2] == ident[2]))
        ):
            handle.seek(seen[1])
            try:
                tail = [Entry(**json.loads(line)) for line in handle.read().splitlines() if line]
            except (ValueError, TypeError):  # read in full, which names the bad line
                tail = None
            last = seen[2][-1] if seen[2] else None
            if tail is None:
                pass
            elif not tail or (
                last is not None and tail[0].prev == last.hash and tail[0].seq == last.seq + 1
            ):
                entries = [*seen[2], *tail]
                self._seen = (ident, info.st_size, entries)
                return list(entries)
        entries = list(_parse(handle))
        self._seen = (ident, info.st_size, entries)
        return list(entries)

    def events(self, **match: Any) -> list[Entry]:
        """Entries whose event and data fields equal ``match`` (``event=`` filters events)."""
        event = match.pop("event", None)
        return [
            e
            for e in self.entries()
            if (event is None or e.event == event)
            and all(e.data.get(k) == v for k, v in match.items())
        ]

    def to_frame(self, *, last: int | None = None, **match: Any) -> pd.DataFrame:
        """One line per entry: ``seq``, ``time``, ``event``, ``actor``, ``dataset``,
        ``request`` (its first 8 characters), ``scientist`` and ``detail`` (the rest of the
        entry's data as ``key=value``); ``match`` filters as ``events`` does, ``last`` keeps
        the newest entries only.

        Examples
        --------
        >>> domain.ledger.to_frame(event="approved", last=20)
        """
        entries = self.events(**match) if match else self.entries()
        if last is not None:
            entries = entries[-last:] if last > 0 else []
        return entries_frame(entries)

    def verify(self) -> int:
        """Check the chain and every signature; return the number of entries.

        Raises ``LedgerError`` naming the first entry that does not hold (its seq, event
        and time, and what is wrong), or the first line that is not an entry at all.
        """
        if self.public_key is None:
            raise LedgerError(
                "Verifying the ledger's signatures needs its public key: "
                "Ledger(path, public_key=load_public_key(domain / 'ledger.pub'))."
            )
        if not self.path.exists():
            return _check([], self.public_key)
        with _locked(self.path, exclusive=False) as handle:
            return _check(list(_parse(handle)), self.public_key)


def entries_frame(entries: list[Entry]) -> pd.DataFrame:
    """``entries`` one line each, as ``Ledger.to_frame`` shows them."""
    import pandas as pd

    shown = ("dataset", "request", "scientist", "once")
    rows = [
        {
            "seq": e.seq,
            "time": e.time.replace("T", " ")[:19],
            "event": e.event,
            "actor": e.actor,
            "dataset": e.data.get("dataset"),
            "request": str(e.data["request"])[:8] if e.data.get("request") else None,
            "scientist": e.data.get("scientist"),
            "detail": ", ".join(
                f"{k}={_short(v)}" for k, v in e.data.items() if k not in shown and v is not None
            ),
        }
        for e in entries
    ]
    columns = ["seq", "time", "event", "actor", "dataset", "request", "scientist", "detail"]
    return pd.DataFrame(rows, columns=columns)


def _short(value: Any, width: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


def open_signing(path: Path, *, key_path: Path, public_path: Path, actor: str) -> Ledger:
    """Open the ledger ``path`` for appending with the key in ``key_path``.

    The first time (no key yet) the key pair is created. A ledger already there was written
    by an older rds that did not sign: it is adopted once, in one atomic rewrite under the
    ledger's lock: its hash chain is verified (``LedgerError`` if broken), every entry is
    signed, and a ``ledger_signing_started`` entry by ``actor`` records how many
    (``adopted``). A signed ledger whose key is missing is refused: a new key cannot vouch
    for it. Once the key exists, nothing is ever re-signed.
    """
    path, key_path, public_path = Path(path), Path(key_path), Path(public_path)
    if not key_path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with _locked(path, exclusive=True) as handle:
            if not key_path.exists():  # else another process adopted it while we waited
                _adopt(path, list(_parse(handle)), key_path, public_path, actor)
    key = load_private_key(key_path)
    if not public_path.exists():
        write_public_key(key.public_key(), public_path)
    return Ledger(path, key=key)


def _adopt(path: Path, entries: list[Entry], key_path: Path, public_path: Path, actor: str) -> None:
    if any(entry.sig for entry in entries):
        raise LedgerError(
            f"The ledger {path} is signed but its key {key_path} is missing. Restore the key "
            "from a backup; a new key cannot vouch for the entries the old one signed."
        )
    try:
        _check(entries, None)
    except LedgerError as exc:
        raise LedgerError(
            f"Refusing to sign the older, unsigned ledger {path}: {exc} "
            "Restore it from a backup first."
        ) from None
    key = Ed25519PrivateKey.generate()
    if not entries:
        create_key_pair(key_path, public_path, key=key)
        return
    signed = [replace(entry, sig=_sign(key, entry.hash)) for entry in entries]
    started = _seal(key, signed[-1], "ledger_signing_started", actor, {"adopted": len(signed)})
    create_key_pair(key_path, public_path, key=key)
    _rewrite(path, [*signed, started])


def _seal(
    key: Ed25519PrivateKey, last: Entry | None, event: str, actor: str, data: dict[str, Any]
) -> Entry:
    body: dict[str, Any] = {
        "seq": (last.seq + 1) if last else 1,
        "time": datetime.now(UTC).isoformat(timespec="microseconds"),
        "event": event,
        "actor": actor,
        "data": data,
        "prev": last.hash if last else GENESIS,
    }
    digest = _digest(body)
    return Entry(**body, hash=digest, sig=_sign(key, digest))


def _digest(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _sign(key: Ed25519PrivateKey, digest: str) -> str:
    return key.sign(SIGNED_PREFIX + bytes.fromhex(digest)).hex()


def _signed_by(public: Ed25519PublicKey, entry: Entry) -> bool:
    try:
        public.verify(bytes.fromhex(entry.sig), SIGNED_PREFIX + bytes.fromhex(entry.hash))
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _check(entries: list[Entry], public: Ed25519PublicKey | None) -> int:
    """Verify the chain (and, with ``public``, the signatures); return the count."""
    prev = GENESIS
    for count, entry in enumerate(entries, start=1):
        if entry.seq != count:
            problem = f"is at position {count}: lines are missing or out of order before it"
        elif entry.prev != prev:
            problem = f"does not follow entry {count - 1}: chain broken"
        elif _digest(entry.body()) != entry.hash:
            problem = "was altered after it was written: its hash does not match its content"
        elif public is not None and not entry.sig:
            problem = "is unsigned: the domain's worker did not write it"
        elif public is not None and not _signed_by(public, entry):
            problem = (
                f"has a bad signature: it was not signed by the ledger key {fingerprint(public)}"
                " (altered, re-chained or forged)"
            )
        else:
            prev = entry.hash
            continue
        raise LedgerError(f"Ledger entry {entry.seq} ({entry.event!r} at {entry.time}) {problem}.")
    return len(entries)


@contextmanager
def _locked(path: Path, *, exclusive: bool) -> Iterator[IO[str]]:
    """The ledger file, flocked; reopened if ``_rewrite`` replaced it while we waited."""
    while True:
        if exclusive:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        else:
            fd = os.open(path, os.O_RDONLY)
        with os.fdopen(fd, "r+" if exclusive else "r", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            if _same_file(handle, path):
                yield handle
                return


def _same_file(handle: IO[str], path: Path) -> bool:
    try:
        now = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(handle.fileno())
    return (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino)


def _rewrite(path: Path, entries: list[Entry]) -> None:
    """Replace the ledger with ``entries`` in one step (the caller holds its lock)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            # Lock the new file before it is visible so nobody appends to it before we are done.
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.write("".join(_line(entry) for entry in entries))
            handle.flush()
            os.fsync(handle.fileno())
            os.replace(tmp, path)
            sync_directory(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def _line(entry: Entry) -> str:
    return json.dumps(entry.as_dict(), sort_keys=True, default=str) + "\n"


def _parse(handle: IO[str]) -> Iterator[Entry]:
    handle.seek(0)
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            yield Entry(**raw)
        except (ValueError, TypeError) as exc:
            raise LedgerError(f"Ledger line {number} is not a valid entry: {exc}") from None
