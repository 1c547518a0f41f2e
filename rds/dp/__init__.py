"""Differential privacy: which queries are accepted, the SQL they become, the noise (OpenDP)
and the ε budget kept in the ledger."""
