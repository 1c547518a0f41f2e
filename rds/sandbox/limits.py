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
    heavy requests delay another's by at most one run (see ``rds.domain.worker``).

    Parameters
    ----------
    pool_size
        Requests run at once (each in its own sandbox, with its own ``SandboxLimits``).
    max_waiting_per_scientist
        Undecided requests one scientist may have; newer ones are denied at once with a
        reason that says so.

    Examples
    --------
    >>> rds.Domain.create("hospital", path="d", worker_limits=WorkerLimits(pool_size=4))
    """

    pool_size: int = 2
    max_waiting_per_scientist: int = 20

    def __post_init__(self) -> None:
        _check_positive(self)


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
