"""The only package that imports syft (DESIGN.md invariant 7).

``server`` builds and serves the datasite from an identity kept in the domain directory,
``guard`` closes syft's in-server execution paths, ``client`` logs in and speaks in rds
records, ``submission`` writes and reads the request text. syft is imported inside
functions: ``import syft`` takes seconds and the rest of rds must import without it.
"""


def preload() -> None:
    """Import syft now (seconds), so that a later login does not wait for it.

    Inside IPython, syft's import patches the shell for the whole kernel: every HTML output
    is sanitised through its formatters and its completer is replaced, which costs about 2 s
    of the first ``rds.connect`` and changes what the user's own notebook shows (STYLE.md
    rule 12). rds shows no syft object, so syft is imported with IPython hidden from it
    (``IPython.get_ipython`` answering ``None`` for the import only) and patches nothing.
    Every rds path to syft (a login, building a server) comes through here first.
    """
    import sys

    if "syft" in sys.modules:
        return
    ipython = sys.modules.get("IPython")
    if ipython is None:
        import syft

        return
    real = getattr(ipython, "get_ipython")  # noqa: B009 - a module attribute mypy cannot see
    setattr(ipython, "get_ipython", lambda: None)  # noqa: B010
    try:
        import syft  # noqa: F401
    finally:
        setattr(ipython, "get_ipython", real)  # noqa: B010
