"""Run a scientist's function or SQL query on private data inside a bubblewrap jail.

Limits and how each is enforced:

- ``cpu_seconds``: ``RLIMIT_CPU`` (SIGXCPU, then SIGKILL one second later).
- ``memory_mb``: ``RLIMIT_AS``; the jail uses Arrow's system allocator and two malloc arenas
  so that address space tracks memory actually used.
- ``max_processes``: ``RLIMIT_NPROC``, counted per user inside the jail's user namespace;
  as root the jail first drops to an unprivileged uid so the limit applies (see ``_jail``).
- ``wall_seconds``: a timer kills bwrap; its pid namespace takes every jailed process down.
- ``output_mb``: the encoded result is checked before it is written, and ``RLIMIT_FSIZE``
  caps every file the jail writes, stdout and stderr included.

The limits apply from the moment the jail takes its job, after its imports. Every run has
a jail of its own, which ends with it; to save the interpreter's start-up, the next jail is
started in the background and waits for its job (``_warm``). Without a waiting
jail, with a different ``BWRAP``, or unsandboxed, the run starts its jail itself.

Examples
--------
>>> result = run_python("def f(df):\\n    return df.age.mean()\\n", "f", datasets=[ds_dir])
>>> result.ok, result.value()
(True, 52.3)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path

from rds.errors import InvalidInput, SandboxUnavailable
from rds.sandbox import _warm
from rds.sandbox._spawn import Jail, JailConfig
from rds.sandbox.limits import SandboxLimits
from rds.sandbox.result import Ended, RunResult, read_outcome
from rds.sandbox.sql import check_table_names

__all__ = ["BWRAP", "RunResult", "bwrap_available", "run_python", "run_sql"]

#: The bubblewrap executable; read at call time so tests can point it elsewhere.
BWRAP: str | None = shutil.which("bwrap")

#: Descriptors one job can carry (SCM_MAX_FD = 253, less result, status, stdout, stderr).
MAX_DATASETS = 249


def bwrap_available() -> bool:
    """True if bubblewrap is installed and can create its namespaces here."""
    return BWRAP is not None and _probe(BWRAP)


@lru_cache(maxsize=4)
def _probe(bwrap: str) -> bool:
    argv = [bwrap, "--unshare-user", "--unshare-pid", "--unshare-net", "--ro-bind", "/", "/"]
    try:
        done = subprocess.run([*argv, "true"], capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def run_python(
    source: str,
    function_name: str,
    *,
    datasets: Sequence[Path],
    limits: SandboxLimits = SandboxLimits(),  # noqa: B008 - frozen, so sharing it is safe
    allow_unsandboxed: bool = False,
) -> RunResult:
    """Run ``function_name`` from ``source`` on the datasets' private tables.

    Parameters
    ----------
    source
        One top-level ``def`` (decorators removed); ``pd`` and ``np`` are predefined.
    function_name
        The function to call, with one DataFrame per dataset.
    datasets
        Dataset directories, each holding a ``data.arrow`` written by ``write_table``
        (at most ``MAX_DATASETS``).
    limits
        What the run may consume.
    allow_unsandboxed
        Without bubblewrap, run anyway as a plain subprocess with only the resource limits:
        the code can then read and write whatever this user can.

    Returns
    -------
    RunResult
        Failures, limit hits included, come back as ``ok=False``; nothing is raised.

    Raises
    ------
    SandboxUnavailable
        If bubblewrap is missing and ``allow_unsandboxed`` is false.
    InvalidInput
        If the arguments are unusable (no such dataset, not an identifier, ...).
    """
    if not isinstance(source, str) or not isinstance(function_name, str):
        raise InvalidInput("run_python() takes the function's source and name as str.")
    if not function_name.isidentifier():
        raise InvalidInput(f"{function_name!r} is not a Python function name.")
    job = {"kind": "python", "source": source, "function": function_name}
    return _run_job(job, _data_files(datasets), limits, allow_unsandboxed)


def run_sql(
    sql: str,
    *,
    tables: Mapping[str, Path],
    limits: SandboxLimits = SandboxLimits(),  # noqa: B008 - frozen, so sharing it is safe
    allow_unsandboxed: bool = False,
) -> RunResult:
    """Run one SQL query with DuckDB on private tables, in the jail (see ``sql.execute``).

    Parameters
    ----------
    sql
        One query; it reads the tables by the names given in ``tables``, and nothing else.
    tables
        The name the query uses for each table, and the dataset directory holding its
        ``data.arrow`` (at most ``MAX_DATASETS``).
    limits
        What the run may consume; DuckDB's own memory limit is set below ``memory_mb``.
    allow_unsandboxed
        As for ``run_python``: without bubblewrap, run with only the resource limits.

    Returns
    -------
    RunResult
        ``value()`` is the result as a DataFrame. Failures come back as ``ok=False``, with
        ``error_type`` ``"SQLError"`` for a query DuckDB refused or could not run, or
        ``"LimitExceeded:<limit>"``.

    Raises
    ------
    SandboxUnavailable
        If bubblewrap is missing and ``allow_unsandboxed`` is false.
    InvalidInput
        If the arguments are unusable (a name that is not an SQL identifier, no such
        dataset, ...).

    Examples
    --------
    >>> run = run_sql("SELECT ward, count(*) AS n FROM patients GROUP BY ward",
    ...               tables={"patients": store / "patients"})
    >>> run.value()
         ward  n
    0  cardio  2
    1    onco  3
    """
    if not isinstance(sql, str):
        raise InvalidInput("run_sql() takes the query as a str.")
    if not isinstance(tables, Mapping):
        raise InvalidInput("run_sql() takes tables as a mapping of name to dataset directory.")
    check_table_names(list(tables))
    job = {"kind": "sql", "sql": sql, "tables": list(tables)}
    return _run_job(job, _data_files(tables.values()), limits, allow_unsandboxed)


def _data_files(datasets: Iterable[Path]) -> list[Path]:
    """Each dataset directory's ``data.arrow``, checked."""
    files = [Path(d) / "data.arrow" for d in datasets]
    if len(files) > MAX_DATASETS:
        raise InvalidInput(f"One run takes at most {MAX_DATASETS} datasets, not {len(files)}.")
    for file in files:
        if not file.is_file():
            raise InvalidInput(f"{file.parent} is not a dataset directory (no data.arrow).")
    return files


def _run_job(
    job: Mapping[str, object], files: list[Path], limits: SandboxLimits, allow_unsandboxed: bool
) -> RunResult:
    """Run ``job`` on ``files`` in a warm jail if one waits, else in a fresh one."""
    bwrap = BWRAP
    sandboxed = bwrap is not None and _probe(bwrap)
    if not sandboxed and not allow_unsandboxed:
        raise SandboxUnavailable(
            "bubblewrap is not available, so private code cannot be sandboxed. Install the "
            "Debian package bubblewrap (apt-get install bubblewrap), or pass "
            "allow_unsandboxed=True knowing the code then runs with only resource limits "
            "and can read and write anything this user can."
        )
    config = JailConfig.for_run(bwrap if sandboxed else None, limits)
    pool = _warm.POOL
    with pool.running():
        warm = pool.take(config) if sandboxed else None
        if warm is not None:
            # If the warm jail died before it took the job, no code ran: start a fresh one.
            with contextlib.suppress(_NotTaken):
                return _Run(warm, limits, cold=False).execute(job, files)
        return _Run(Jail.start(config), limits, cold=True).execute(job, files)


class _NotTaken(Exception):
    """A warm jail ended before it took its job: none of the job's code ran."""


class _Run:
    """One execution in one jail: its files, the hand-over, limits and what came back."""

    def __init__(self, jail: Jail, limits: SandboxLimits, *, cold: bool) -> None:
        self.jail = jail
        self.limits = limits
        self.cold = cold
        self.workdir = jail.workdir
        self.files: dict[str, int] = {}

    def _create(self, name: str) -> int:
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        return os.open(self.workdir / name, flags, 0o600)

    def execute(self, job: Mapping[str, object], tables: list[Path]) -> RunResult:
        """Run the job on ``tables`` in the jail and read what came back.

        Raises
        ------
        _NotTaken
            If a warm jail ended before it took the job.
        """
        try:
            self.files = {n: self._create(n) for n in ("result", "status", "stdout", "stderr")}
            data_fds = [os.open(t, os.O_RDONLY | os.O_CLOEXEC) for t in tables]
            full = {
                **job,
                "datasets": len(tables),
                "threads": self.jail.config.threads,
                "limits": asdict(self.limits),
            }
            try:
                ended = self._supervise(full, [*self.files.values(), *data_fds])
            finally:
                for fd in [*data_fds, *self.files.values()]:
                    _close(fd)
            self._add_boot_log()
            return read_outcome(self.workdir, self.limits, ended)
        finally:
            self.jail.close()

    def _supervise(self, job: dict[str, object], fds: list[int]) -> Ended:
        lock = threading.Lock()
        state = {"finished": False, "timed_out": False}
        process = self.jail.process

        def kill() -> None:
            with lock:
                if not state["finished"]:
                    state["timed_out"] = True
                    self.jail.kill()

        # The wall clock starts with the hand-over: a warm jail's imports are not the run's.
        start = time.monotonic()
        timer = threading.Timer(self.limits.wall_seconds, kill)
        timer.daemon = True
        timer.start()
        try:
            before = self.jail.hand_over(job, fds)
            if before is None and not self.cold:
                self.jail.kill()
            # Wait without reaping so the timer can never signal a recycled process group.
            with contextlib.suppress(ChildProcessError):  # reaped by a SIGCHLD-ignoring host
                os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
            with lock:
                state["finished"] = True
        finally:
            timer.cancel()
        duration = time.monotonic() - start
        if before is None and not self.cold and not state["timed_out"]:
            raise _NotTaken
        # Not taken: the jail ended before any of the code ran (the domain's failure). Killed
        # by the wall clock while still starting (a cold jail slower than a DP allowance) is
        # a timeout like any other, answered as the run's timeouts are.
        taken = before is not None or state["timed_out"]
        sandboxed = self.jail.config.bwrap is not None
        try:
            _, status, usage = os.wait4(process.pid, 0)
        except ChildProcessError:  # nothing to learn from the exit; the status file decides
            process.returncode = 0
            return Ended(0, 0.0, state["timed_out"], duration, sandboxed, taken)
        process.returncode = os.waitstatus_to_exitcode(status)
        if not sandboxed:
            _killpg(process.pid)  # stragglers of an unsandboxed run
        cpu = max(0.0, usage.ru_utime + usage.ru_stime - (before or 0.0))
        return Ended(status, cpu, state["timed_out"], duration, sandboxed, taken)

    def _add_boot_log(self) -> None:
        """Append what bwrap and the interpreter printed before the job to the run's stderr."""
        log = self.jail.boot_log()
        if log:
            with (self.workdir / "stderr").open("ab") as handle:
                handle.write(log)


def _killpg(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _close(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)
