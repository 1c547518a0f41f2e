"""The program that runs inside the jail: wait for one job, run it, write a result and a status.

Run as ``python -m rds.sandbox._inner <fd>``, where ``fd`` is this end of a unix socket
pair. It first imports numpy, pandas, pyarrow and duckdb (a *warm* jail does this before
any job exists) and says ``ready``, then receives exactly one job on the socket: an 8-byte
length, then a small JSON document, one of::

    {"kind": "python", "source": "def f(df): ...", "function": "f",
     "datasets": 1, "threads": 2, "limits": {...SandboxLimits fields}}
    {"kind": "sql", "sql": "SELECT ...", "tables": ["patients"],
     "datasets": 1, "threads": 2, "limits": {...}}

with descriptors attached (``SCM_RIGHTS``), in this order: the result file, the status
file, the run's stdout and stderr files, then each dataset's ``data.arrow`` (the jail's
user may not be allowed to open it by path); for SQL, one per name in ``tables``, in that
order. ``threads`` is the size the jail's thread pools were started with (``JailConfig``).

It puts the run's stdout and stderr in place, answers with the CPU seconds it has used so
far (so the host can tell the run's own), closes the socket, applies the limits and only
then runs the scientist's code: a Python job calls the function with one DataFrame per
dataset; an SQL job runs the query with ``sql.execute`` over the Arrow tables, and its
result is the query's DataFrame. The encoded result goes to the result file and a JSON
status (``ok``, ``error``, ``error_type``) to the status file. Inside the jail only
``rds.errors`` and ``rds.sandbox`` exist, so this module imports nothing else from rds.
One job per process: it exits when the job is done.

Nothing written here is trusted by the host: the scientist's code runs in this process and
could write to these descriptors itself. The host validates the envelope and keeps only
``error_type`` values from a fixed list.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import json
import linecache
import math
import os
import resource
import socket
import sys
import traceback
from collections.abc import Iterator
from typing import Any

from rds.errors import LimitExceeded, ResultTypeRefused, SQLError

MIB = 1024 * 1024
# Room above output_mb for the result file's own writes; a result past output_mb is refused
# before it is written.
FSIZE_SLACK = MIB
SOURCE_NAME = "<request>"
ERROR_CHARS = 64 * 1024
HEADER = 8  # bytes of the job's length
MAX_FDS = 253  # SCM_MAX_FD: the most descriptors one message can carry
LIMITS = ("cpu", "memory", "processes", "wall", "output")
# DuckDB's memory_limit, as a share of the address space left when an SQL job starts. DuckDB
# counts its buffers, not its allocator's slack or untracked structures: a 100M-key GROUP BY
# limited to 2500 MiB grew the address space by 3260 MiB. The rest also holds the result's
# pandas and Arrow copies.
SQL_MEMORY_SHARE = 0.6
SQL_MIN_MEMORY_MB = 64


def main() -> None:
    channel = socket.socket(fileno=int(sys.argv[1]))
    tools = _prepare()
    try:
        channel.sendall(b"ready\n")
        job = _receive(channel)
        used = _cpu_used()
        _redirect(job)
        channel.sendall(f"{used:.3f}\n".encode())  # the host's cue that the job is taken
        channel.close()
    except Exception:  # the host went away or sent nothing usable: no code has run
        os._exit(2)
    main_pid = os.getpid()
    status: dict[str, Any]
    try:
        _apply_limits(job["limits"], used)
        status = _run(job, main_pid, tools)
    except BaseException as exc:  # the scientist's code may raise anything, SystemExit too
        if os.getpid() != main_pid:
            os._exit(1)  # a process forked by the scientist's code: it reports nothing
        try:
            status = _failure(exc, job["limits"])
        except Exception:  # an exception whose __str__ itself fails
            status = {"ok": False, "error": "(unprintable exception)", "error_type": "Exception"}
    _write_all(job["status_fd"], json.dumps(status).encode("utf-8"))
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # closed or full: nothing to save
            stream.flush()
    # Skip interpreter teardown: atexit hooks and finalizers of the scientist's objects
    # must not run after the status is written.
    os._exit(0)


def _prepare() -> dict[str, Any]:
    """Import what every job needs, and exercise it once, before any job exists.

    duckdb is imported, run once and a database started in every jail, whatever its job
    will be. Measured on 2 cores, a small SQL run takes 16 ms so (as long as a trivial
    Python run), 30 ms without the started database, 37 ms with the import alone and
    70 ms when the job imports duckdb. In exchange a jail is ready ~55 ms later and its
    resident memory grows from 107 to 150 MiB (10 MiB of that private; the rest is
    duckdb's library, shared through the page cache), and a Python job has ~85 MiB less of
    ``memory_mb`` (address space) and one thread less of ``max_processes`` (jemalloc's)
    to spend. Jails are not specialised by kind instead: with both kinds in use that
    doubles the waiting jails and makes the first run of each kind after the other cold.
    """
    import duckdb  # noqa: F401
    import numpy as np
    import pandas as pd
    import pyarrow.ipc  # noqa: F401

    from rds.sandbox.codec import encode
    from rds.sandbox.load import read_arrow, read_table
    from rds.sandbox.sql import execute, start_database

    # First calls load pandas', Arrow's and DuckDB's lazily loaded parts; no data is involved.
    sample = pd.DataFrame({"k": pd.Categorical(["a", "b", "a"]), "v": [1.0, 2.0, 3.0]})
    encode(sample.groupby("k", observed=True)["v"].agg(["count", "mean", "sum"]))
    encode(execute("SELECT k, count(*), avg(v) FROM t GROUP BY k", {"t": sample}, threads=1))
    return {
        "np": np,
        "pd": pd,
        "encode": encode,
        "read_table": read_table,
        "read_arrow": read_arrow,
        "execute": execute,
        # Starting a database takes ~10 ms: a fresh one waits for the job, which gets its
        # worker threads (they count against max_processes), memory limit and tables.
        "database": start_database(threads=1),
    }


def _receive(channel: socket.socket) -> dict[str, Any]:
    """The job, with the descriptors that came with it put in its fields."""
    head, fds, _, _ = socket.recv_fds(channel, HEADER, MAX_FDS, socket.MSG_CMSG_CLOEXEC)
    head += _recv_exactly(channel, HEADER - len(head))
    job = json.loads(_recv_exactly(channel, int.from_bytes(head, "big")))
    if job.get("kind") not in ("python", "sql") or len(fds) != 4 + job["datasets"]:
        raise ValueError("not a job this program runs")
    if job["kind"] == "sql" and len(job["tables"]) != job["datasets"]:
        raise ValueError("an SQL job needs one descriptor per table")
    job["result_fd"], job["status_fd"], job["stdout_fd"], job["stderr_fd"] = fds[:4]
    job["dataset_fds"] = fds[4:]
    return job


def _recv_exactly(channel: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = channel.recv(size - len(data))
        if not chunk:
            raise EOFError("the host closed the socket")
        data += chunk
    return data


def _redirect(job: dict[str, Any]) -> None:
    """Make the run's own stdout and stderr files descriptors 1 and 2."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    for fd, target in ((job["stdout_fd"], 1), (job["stderr_fd"], 2)):
        os.dup2(fd, target)
        os.close(fd)


def _cpu_used() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _run(job: dict[str, Any], main_pid: int, tools: dict[str, Any]) -> dict[str, Any]:
    limits = job["limits"]
    result = _run_python(job, tools) if job["kind"] == "python" else _run_sql(job, tools)
    if os.getpid() != main_pid:
        os._exit(0)
    payload = tools["encode"](result)
    if len(payload) > limits["output_mb"] * MIB:
        return _limit(
            "output",
            f"The result is {len(payload) / MIB:.1f} MiB encoded; the limit is "
            f"output_mb={limits['output_mb']}. Return an aggregate instead of raw rows, "
            "or raise the limit.",
        )
    _write_all(job["result_fd"], payload)
    return {"ok": True, "error": None, "error_type": None}


def _run_python(job: dict[str, Any], tools: dict[str, Any]) -> Any:
    frames = [tools["read_table"](fd) for fd in _taken(job["dataset_fds"])]
    function = _define(job["source"], job["function"], {"pd": tools["pd"], "np": tools["np"]})
    return function(*frames)


def _run_sql(job: dict[str, Any], tools: dict[str, Any]) -> Any:
    tables = [tools["read_arrow"](fd) for fd in _taken(job["dataset_fds"])]
    # DuckDB's limit sits below RLIMIT_AS, so that a query that needs too much fails with
    # DuckDB's own out-of-memory error rather than a refused allocation somewhere inside.
    budget = int((job["limits"]["memory_mb"] - _address_space_mb()) * SQL_MEMORY_SHARE)
    return tools["execute"](
        job["sql"],
        dict(zip(job["tables"], tables, strict=True)),
        threads=job["threads"],
        memory_mb=max(SQL_MIN_MEMORY_MB, budget),
        database=tools["database"],
    )


def _taken(fds: list[int]) -> Iterator[int]:
    """Each descriptor, closed once the caller has mapped its file."""
    for fd in fds:
        yield fd
        os.close(fd)


def _address_space_mb() -> int:
    """This process's mapped address space (``VmSize``, what ``RLIMIT_AS`` counts), in MiB."""
    with open("/proc/self/status", "rb") as status:
        for line in status:
            if line.startswith(b"VmSize:"):
                return int(line.split()[1]) // 1024
    return 0


def _apply_limits(limits: dict[str, Any], used: float) -> None:
    # RLIMIT_CPU counts the whole life of the process, imports included: count from here.
    cpu = math.ceil(used + limits["cpu_seconds"])
    memory = limits["memory_mb"] * MIB
    size = limits["output_mb"] * MIB + FSIZE_SLACK
    # The hard CPU limit (SIGKILL) backs up the soft one (SIGXCPU), which code can ignore.
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_NPROC, (limits["max_processes"],) * 2)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _define(source: str, name: str, extra: dict[str, Any]) -> Any:
    namespace: dict[str, Any] = {"__builtins__": builtins, "__name__": "__rds_request__", **extra}
    linecache.cache[SOURCE_NAME] = (len(source), None, source.splitlines(True), SOURCE_NAME)
    exec(compile(source, SOURCE_NAME, "exec"), namespace)  # noqa: S102 - the point of the jail
    function = namespace.get(name)
    if not callable(function):
        raise NameError(f"the submitted source does not define a function named {name!r}")
    return function


def _failure(exc: BaseException, limits: dict[str, Any]) -> dict[str, Any]:
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != SOURCE_NAME:
        tb = tb.tb_next
    # Start the traceback at the scientist's code; our own frames only add noise.
    text = "".join(traceback.format_exception(type(exc), exc, tb or exc.__traceback__))
    if len(text) > ERROR_CHARS:
        text = (
            text[: ERROR_CHARS // 2]
            + "\n[... traceback truncated ...]\n"
            + text[-ERROR_CHARS // 2 :]
        )
    if _is_memory_limit(exc):
        return _limit(
            "memory",
            f"The code ran out of memory (memory_mb={limits['memory_mb']} MiB of address "
            f"space per process).\n{text}",
        )
    if _is_process_limit(exc):
        return _limit(
            "processes",
            f"The code tried to start more than max_processes={limits['max_processes']} "
            f"processes or threads.\n{text}",
        )
    if isinstance(exc, OSError) and exc.errno == errno.EFBIG:
        return _limit(
            "output",
            f"The code wrote a file or output larger than output_mb={limits['output_mb']} "
            f"MiB.\n{text}",
        )
    if isinstance(exc, LimitExceeded) and exc.limit in LIMITS:  # DuckDB's memory_limit
        return _limit(exc.limit, str(exc))
    if isinstance(exc, SQLError):  # DuckDB's message says it all; the traceback is ours
        return {"ok": False, "error": str(exc), "error_type": "SQLError"}
    if isinstance(exc, ResultTypeRefused):
        return {"ok": False, "error": text, "error_type": "ResultTypeRefused"}
    return {"ok": False, "error": text, "error_type": _builtin_ancestor(type(exc))}


def _limit(which: str, message: str) -> dict[str, Any]:
    return {"ok": False, "error": message, "error_type": f"LimitExceeded:{which}"}


def _is_memory_limit(exc: BaseException) -> bool:
    # torch reports a refused allocation as a RuntimeError, not a MemoryError.
    text = str(exc) if isinstance(exc, RuntimeError) else ""
    return isinstance(exc, MemoryError) or "allocate memory" in text


def _is_process_limit(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno == errno.EAGAIN:
        return True
    return isinstance(exc, RuntimeError) and "can't start new thread" in str(exc)


def _builtin_ancestor(kind: type[BaseException]) -> str:
    """The nearest built-in exception class: its name is all the scientist may see."""
    for base in kind.__mro__:
        if getattr(builtins, base.__name__, None) is base:
            return base.__name__
    return "Exception"


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


if __name__ == "__main__":
    main()
