"""The domain's hash-chained audit log."""

from rds.ledger.ledger import Entry, Ledger

__all__ = ["Entry", "Ledger"]
