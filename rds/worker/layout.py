"""Where a domain keeps each kind of state inside its directory."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Layout:
    """Paths inside one domain directory.

    Everything a domain needs to come back after ``kill -9`` lives here: ``domain.json``
    (name, server id), ``secrets/`` (server signing key, ledger key and admin password, mode
    0600), ``syft/`` (syft's SQLite and blobs: metadata, mocks, users, requests, released
    results), ``private/`` (the private data, never given to syft), ``runs/`` (owner-only
    previews of sandboxed runs), ``ledger.jsonl`` and ``ledger.pub`` (the public key that
    verifies the ledger's signatures).
    """

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "domain.json"

    @property
    def secrets(self) -> Path:
        return self.root / "secrets"

    @property
    def identity(self) -> Path:
        return self.secrets / "identity.json"

    @property
    def admin(self) -> Path:
        return self.secrets / "admin.json"

    @property
    def syft_state(self) -> Path:
        return self.root / "syft"

    @property
    def private(self) -> Path:
        return self.root / "private"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def ledger(self) -> Path:
        return self.root / "ledger.jsonl"

    @property
    def ledger_key(self) -> Path:
        """The worker's Ed25519 key that signs the ledger (0600, owner only)."""
        return self.secrets / "ledger.key"

    @property
    def ledger_public(self) -> Path:
        """The public half of ``ledger_key``: anyone may verify the ledger with it."""
        return self.root / "ledger.pub"

    @property
    def server_file(self) -> Path:
        return self.root / "server.json"

    @property
    def lock(self) -> Path:
        return self.root / ".lock"

    @property
    def log(self) -> Path:
        return self.root / "server.log"


def write_private(path: Path, text: str) -> None:
    """Write ``text`` readable by the owner only (0600), atomically."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
