"""The only package that imports syft (DESIGN.md invariant 7).

``server`` builds and serves the datasite from an identity kept in the domain directory,
``guard`` closes syft's in-server execution paths, ``client`` logs in and speaks in rds
records, ``submission`` writes and reads the request text. syft is imported inside
functions: ``import syft`` takes seconds and the rest of rds must import without it.
"""


def preload() -> None:
    """Import syft now (seconds), so that a later login does not wait for it."""
    import syft  # noqa: F401
