"""What a run hands back, read defensively from the files the jail wrote.

Everything the jail writes is untrusted: the scientist's code runs in the same process as
the inner program and can write the status and result descriptors itself. So the status is
parsed with a size cap, ``error_type`` keeps only names from a fixed list (a class named
after private data must not reach the scientist), and the result's envelope is checked.
"""

from __future__ import annotations

import builtins
import json
import os
import signal
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from rds.errors import LimitExceeded, ResultTypeRefused, SandboxError
from rds.sandbox import codec
from rds.sandbox.limits import SandboxLimits

STDIO_CHARS = 256 * 1024
STATUS_BYTES = 1024 * 1024
MIB = 1024 * 1024
TRUNCATED = "\n[truncated: {size} bytes in total]"
LIMIT_TYPES = {f"LimitExceeded:{k}" for k in ("cpu", "memory", "processes", "wall", "output")}
SAFE_TYPES = (
    {n for n, v in vars(builtins).items() if isinstance(v, type) and issubclass(v, BaseException)}
    | LIMIT_TYPES
    | {"ResultTypeRefused", "SandboxError", "SQLError"}
)


@dataclass(frozen=True)
class RunResult:
    """The outcome of one sandboxed run.

    ``error``, ``stdout`` and ``stderr`` are for the data owner only (they can echo private
    data); ``error_type`` is safe to show the scientist: a built-in exception name,
    ``"ResultTypeRefused"``, ``"SandboxError"`` or ``"LimitExceeded:<limit>"``.

    ``fault`` says whose failure it is: ``"code"`` (the scientist's code raised, hit a
    limit, returned something refused, or ended the process itself) or ``"domain"`` (the
    jail never took the job: no code of the scientist's ran, so the interpreter, bubblewrap,
    a mount or a limit too small to start Python is at fault). ``None`` when it succeeded.
    The jail's "job taken" cue is the line between them: what happens after it may be the
    scientist's doing (``os._exit``, a forged status), so only a failure before it is
    called the domain's.
    """

    ok: bool
    payload: bytes | None
    stdout: str
    stderr: str
    error: str | None
    error_type: str | None
    duration: float
    sandboxed: bool
    fault: str | None = None

    def value(self) -> object:
        """The decoded result.

        Raises
        ------
        LimitExceeded, ResultTypeRefused, SandboxError
            If the run failed; the message names only ``error_type``.
        """
        if self.ok and self.payload is not None:
            return codec.decode(self.payload)
        kind = self.error_type or "SandboxError"
        message = f"The sandboxed run failed ({kind}); there is no result."
        if kind.startswith("LimitExceeded:"):
            raise LimitExceeded(kind.split(":", 1)[1], message)
        if kind == "ResultTypeRefused":
            raise ResultTypeRefused(message)
        raise SandboxError(message)

    def record(self) -> dict[str, Any]:
        """Everything but the payload, as JSON data (a run's ``run.json`` starts from it)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "payload"}

    @classmethod
    def from_record(cls, record: dict[str, Any], payload: bytes | None) -> RunResult:
        """The result ``record()`` (plus whatever else was stored beside it) describes."""
        known = {f.name for f in fields(cls)} - {"payload", "fault"}
        fault = record.get(
            "fault", None if record["ok"] else "code"
        )  # runs stored before faults were kept
        return cls(payload=payload, fault=fault, **{name: record[name] for name in known})


@dataclass(frozen=True)
class Ended:
    """How the process ended, as the host saw it."""

    status: int  # from wait4
    cpu: float  # CPU seconds of the process and all it started, since it took the job
    timed_out: bool  # killed by the wall-clock timer
    duration: float
    sandboxed: bool
    taken: bool = True  # the jail took the job; False: none of the job's code ran


def read_outcome(workdir: Path, limits: SandboxLimits, ended: Ended) -> RunResult:
    """Turn the run directory's ``stdout``, ``stderr``, ``status`` and ``result`` into a result."""
    cap = limits.output_mb * MIB
    stdout, out_full = _read_text(workdir / "stdout", cap)
    stderr, err_full = _read_text(workdir / "stderr", cap)

    def failed(kind: str, error: str, fault: str = "code") -> RunResult:
        return RunResult(
            False, None, stdout, stderr, error, kind, ended.duration, ended.sandboxed, fault
        )

    if not ended.taken:
        return failed(
            "SandboxError",
            "The sandbox did not start: the jail ended before it took the job, so none of the "
            "request's code ran. This is the domain's failure, not the scientist's; stderr "
            "says what bubblewrap or the interpreter printed (a missing path, a limit too "
            "small to start Python).",
            fault="domain",
        )
    if ended.timed_out:
        return failed(
            "LimitExceeded:wall",
            f"Killed after wall_seconds={limits.wall_seconds}: the run took too long "
            "(an endless loop or wait?).",
        )
    report = _read_status(workdir / "status")
    signum = _signal_of(ended.status, ended.sandboxed)
    if report is None and (signum == signal.SIGXCPU or ended.cpu >= limits.cpu_seconds):
        return failed(
            "LimitExceeded:cpu",
            f"Killed after cpu_seconds={limits.cpu_seconds} of CPU time ({ended.cpu:.1f} s used).",
        )
    if out_full or err_full:
        return failed(
            "LimitExceeded:output",
            f"stdout or stderr reached output_mb={limits.output_mb} MiB; printing that much "
            "is refused.",
        )
    if report is None:
        how = f"killed by signal {signum}" if signum else f"exit status {ended.status}"
        return failed("SandboxError", f"The sandboxed process ended without a report ({how}).")
    if not report["ok"]:
        return failed(report["error_type"], report["error"] or "")
    with (workdir / "result").open("rb") as handle:
        payload = handle.read(cap + 1)
    if len(payload) > cap:
        return failed(
            "LimitExceeded:output", f"The result is larger than output_mb={limits.output_mb}."
        )
    try:
        codec.verify(payload)
    except SandboxError as exc:
        return failed("SandboxError", f"The result bytes are not a valid envelope: {exc}")
    return RunResult(True, payload, stdout, stderr, None, None, ended.duration, ended.sandboxed)


def _read_status(path: Path) -> dict[str, Any] | None:
    """The inner program's report, or None if there is no usable one."""
    with path.open("rb") as handle:
        raw = handle.read(STATUS_BYTES)
    try:
        report = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(report, dict) or not isinstance(report.get("ok"), bool):
        return None
    error, kind = report.get("error"), report.get("error_type")
    return {
        "ok": report["ok"],
        "error": error if isinstance(error, str) else None,
        "error_type": kind if kind in SAFE_TYPES else "Exception",
    }


def _read_text(path: Path, cap: int) -> tuple[str, bool]:
    """The first ``STDIO_CHARS`` of a log, and whether it reached the output cap."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        text = handle.read(STDIO_CHARS).decode("utf-8", errors="replace")
    if size > STDIO_CHARS:
        text += TRUNCATED.format(size=size)
    return text, size >= cap


def _signal_of(status: int, sandboxed: bool) -> int | None:
    if os.WIFSIGNALED(status):
        return os.WTERMSIG(status)
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 0
    # bwrap reports a child killed by signal n as exit status 128 + n.
    return code - 128 if sandboxed and code > 128 else None
