"""The program that runs inside the jail: read one job, run it, write a result and a status.

Run as ``python -m rds.sandbox._inner`` with the job, a small JSON document, on stdin::

    {"kind": "python", "source": "def f(df): ...", "function": "f",
     "datasets": [{"fd": 5, "dir": "/data/0"}], "limits": {...SandboxLimits fields},
     "result_fd": 3, "status_fd": 4}

Each dataset's ``data.arrow`` arrives as an open descriptor (the jail's user may not be
allowed to open it by path). The encoded result goes to ``result_fd`` and a JSON status
(``ok``, ``error``, ``error_type``) to ``status_fd``. Inside the jail only ``rds.errors``
and ``rds.sandbox`` exist, so this module imports nothing else from rds.

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
import sys
import traceback
from typing import Any

from rds.errors import ResultTypeRefused

MIB = 1024 * 1024
# Room above output_mb for the result file's own writes; a result past output_mb is refused
# before it is written.
FSIZE_SLACK = MIB
SOURCE_NAME = "<request>"
ERROR_CHARS = 64 * 1024


def main() -> None:
    main_pid = os.getpid()
    job = json.loads(sys.stdin.buffer.read())
    status: dict[str, Any]
    try:
        status = _run(job, main_pid)
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


def _run(job: dict[str, Any], main_pid: int) -> dict[str, Any]:
    if job.get("kind") != "python":
        raise ValueError(f"unknown job kind {job.get('kind')!r}")
    # Imported before the limits apply, so that they bound the scientist's work only.
    import numpy as np
    import pandas as pd
    import pyarrow.ipc  # noqa: F401

    from rds.sandbox.codec import encode
    from rds.sandbox.load import read_table

    limits = job["limits"]
    _apply_limits(limits)
    frames = []
    for dataset in job["datasets"]:
        frames.append(read_table(dataset["fd"]))
        os.close(dataset["fd"])
    function = _define(job["source"], job["function"], {"pd": pd, "np": np})
    result = function(*frames)
    if os.getpid() != main_pid:
        os._exit(0)
    payload = encode(result)
    if len(payload) > limits["output_mb"] * MIB:
        return _limit(
            "output",
            f"The result is {len(payload) / MIB:.1f} MiB encoded; the limit is "
            f"output_mb={limits['output_mb']}. Return an aggregate instead of raw rows, "
            "or raise the limit.",
        )
    _write_all(job["result_fd"], payload)
    return {"ok": True, "error": None, "error_type": None}


def _apply_limits(limits: dict[str, Any]) -> None:
    cpu = math.ceil(limits["cpu_seconds"])
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
