"""Disclosure checks: which SQL may be sent, SDC rules per cell, leakage in outputs, static
code notes, and the ``CheckReport`` every result carries."""
