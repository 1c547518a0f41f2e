"""The domain's signed, hash-chained audit log and its Ed25519 key pair."""

from rds.ledger.keys import (
    create_key_pair,
    fingerprint,
    load_private_key,
    load_public_key,
    write_public_key,
)
from rds.ledger.ledger import Entry, Ledger, entries_frame, open_signing

__all__ = [
    "Entry",
    "Ledger",
    "create_key_pair",
    "entries_frame",
    "fingerprint",
    "load_private_key",
    "load_public_key",
    "open_signing",
    "write_public_key",
]
