"""Resource limits: for one sandboxed run, and for a served domain's worker."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from rds.errors import InvalidInput


@dataclass(frozen=True, kw_only=True)
class SandboxLimits:
    """What one private run may consume before it is stopped.

    Parameters
    ----------
    cpu_seconds
        CPU time of each process in the sandbox (``RLIMIT_CPU``).
    memory_mb
        Address space of each process in the sandbox (``RLIMIT_AS``), in MiB. It covers the
        interpreter with pandas, pyarrow and duckdb (about 420 MiB), the memory-mapped
        datasets and the computation; importing torch needs about 1.2 GiB more. An SQL
        query gets 60% of what is left as DuckDB's ``memory_limit``.
    wall_seconds
        Wall-clock time of the whole run; the sandbox is killed when it runs out.
    output_mb
        Largest result, and largest stdout, stderr or scratch file, in MiB.
    max_processes
        Processes *and threads* the sandbox may have at once (stops fork bombs).
    scratch_mb
        Size of the sandbox's writable scratch space (a tmpfs: it uses memory, never the
        host's disk, and vanishes with the run).

    Examples
    --------
    >>> SandboxLimits(cpu_seconds=60, memory_mb=2048).scratch_mb
    256
    """

    cpu_seconds: float = 300
    memory_mb: int = 4096
    wall_seconds: float = 600
    output_mb: int = 64
    max_processes: int = 64
    scratch_mb: int = 256

    def __post_init__(self) -> None:
        _check_positive(self)


@dataclass(frozen=True, kw_only=True)
class WorkerLimits:
    """How a served domain's worker shares its runs among scientists.

    Requests wait in one first-in-first-out queue per scientist; whenever a run ends, the
    next one is taken from the scientist served least recently, so one scientist's many
    heavy requests delay another's by at most one run (see ``rds.worker.process``).

    Parameters
    ----------
    pool_size
        Requests run at once (each in its own sandbox, with its own ``SandboxLimits``).
    max_waiting_per_scientist
        Undecided requests one scientist may have; newer ones are denied at once with a
        reason that says so.
    dp_seconds, dp_seconds_per_million_rows
        A differentially private answer released by policy goes out exactly
        ``dp_seconds + rows / 1e6 * dp_seconds_per_million_rows`` after the worker picks the
        request up (``rows``: the dataset's published row count), however long the run
        took. A run that has not finished by then, or failed, is stopped and the answer
        for no rows (pure noise) goes out at that moment instead; the owner's ledger says
        so. How long a run takes, and whether it fits its memory, depend on the private
        rows; with a fixed release time neither reaches the scientist.

    Examples
    --------
    >>> rds.Domain.create("hospital", path="d", worker_limits=WorkerLimits(pool_size=4))
    """

    pool_size: int = 2
    max_waiting_per_scientist: int = 20
    dp_seconds: float = 4.0
    dp_seconds_per_million_rows: float = 8.0

    def __post_init__(self) -> None:
        _check_positive(self)

    def dp_allowance(self, rows: int) -> float:
        """Seconds from pickup to the release of a DP answer over ``rows`` published rows.

        Examples
        --------
        >>> WorkerLimits().dp_allowance(1_000_000)
        12.0
        """
        return self.dp_seconds + max(rows, 0) / 1e6 * self.dp_seconds_per_million_rows


def _check_positive(limits: SandboxLimits | WorkerLimits) -> None:
    """Every field a positive, finite number (an integer where the field says ``int``)."""
    owner = type(limits).__name__
    for field in fields(limits):
        value = getattr(limits, field.name)
        integral = field.type in ("int", int)
        if isinstance(value, bool) or not isinstance(value, int if integral else (int, float)):
            kind = "an integer" if integral else "a number"
            raise InvalidInput(f"{owner}.{field.name} must be {kind}, not {value!r}.")
        if not math.isfinite(value) or value <= 0:
            raise InvalidInput(f"{owner}.{field.name} must be positive and finite, not {value!r}.")
