"""The ledger's Ed25519 key pair: create it, load it, name it.

The private key (PKCS#8 PEM) is written once, readable by its owner only (0600), and never
overwritten: a new key could not vouch for entries the old one signed. The public key
(SubjectPublicKeyInfo PEM) is what anyone verifying the ledger needs.

Examples
--------
>>> key = create_key_pair(tmp / "secrets" / "ledger.key", tmp / "ledger.pub")
>>> fingerprint(load_public_key(tmp / "ledger.pub")) == fingerprint(key)
True
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from rds.errors import LedgerError


def create_key_pair(
    private_path: Path, public_path: Path, *, key: Ed25519PrivateKey | None = None
) -> Ed25519PrivateKey:
    """Write a new key pair (``key``, or a fresh one) and return the private key.

    Raises ``LedgerError`` if ``private_path`` exists: a key is never replaced.
    """
    key = key or Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        _write(Path(private_path), pem, mode=0o600, exclusive=True)
    except FileExistsError:
        raise LedgerError(
            f"A ledger key already exists at {private_path}; it is never overwritten."
        ) from None
    write_public_key(key.public_key(), public_path)
    return key


def write_public_key(key: Ed25519PublicKey, path: Path) -> None:
    """Write the public key (PEM) to ``path``, atomically; it holds nothing secret."""
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    _write(Path(path), pem, mode=0o644, exclusive=False)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The signing key in ``path``."""
    key = _load(Path(path), private=True)
    if not isinstance(key, Ed25519PrivateKey):
        raise LedgerError(f"{path} does not hold an Ed25519 private key.")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """The verifying key in ``path``."""
    key = _load(Path(path), private=False)
    if not isinstance(key, Ed25519PublicKey):
        raise LedgerError(f"{path} does not hold an Ed25519 public key.")
    return key


def fingerprint(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """16 hex digits of the SHA-256 of the raw public key, for people to compare."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def _load(path: Path, *, private: bool) -> object:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        kind = "private key" if private else "public key"
        raise LedgerError(f"No ledger {kind} at {path}.") from None
    try:
        if private:
            return serialization.load_pem_private_key(data, password=None)
        return serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise LedgerError(f"{path} is not a readable PEM key: {exc}") from None


def _write(path: Path, data: bytes, *, mode: int, exclusive: bool) -> None:
    """Write ``data`` to a temporary file and move it into place only once it is complete.

    ``exclusive`` links it into place, which fails with ``FileExistsError`` instead of
    replacing an existing file (two processes creating a key at once: one wins).
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if exclusive:
            os.link(tmp, path)
        else:
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    sync_directory(path.parent)


def sync_directory(path: Path) -> None:
    """fsync a directory so that a rename in it survives a crash."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
