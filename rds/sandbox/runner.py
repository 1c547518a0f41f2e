"""Run a scientist's function on private data inside a bubblewrap jail.

Limits and how each is enforced:

- ``cpu_seconds``: ``RLIMIT_CPU`` (SIGXCPU, then SIGKILL one second later).
- ``memory_mb``: ``RLIMIT_AS``; the jail uses Arrow's system allocator and two malloc arenas
  so that address space tracks memory actually used.
- ``max_processes``: ``RLIMIT_NPROC``, counted per user inside the jail's user namespace;
  as root the jail first drops to an unprivileged uid so the limit applies (see ``_jail``).
- ``wall_seconds``: a timer kills bwrap; its pid namespace takes every jailed process down.
- ``output_mb``: the encoded result is checked before it is written, and ``RLIMIT_FSIZE``
  caps every file the jail writes, stdout and stderr included.

Examples
--------
>>> result = run_python("def f(df):\\n    return df.age.mean()\\n", "f", datasets=[ds_dir])
>>> result.ok, result.value()
(True, 52.3)
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path

from rds.errors import InvalidInput, SandboxError, SandboxUnavailable
from rds.sandbox import _jail
from rds.sandbox.limits import SandboxLimits
from rds.sandbox.result import Ended, RunResult, read_outcome

__all__ = ["BWRAP", "RunResult", "bwrap_available", "run_python"]

#: The bubblewrap executable; read at call time so tests can point it elsewhere.
BWRAP: str | None = shutil.which("bwrap")

HANDSHAKE_SECONDS = 10.0


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
        Dataset directories, each holding a ``data.arrow`` written by ``write_table``.
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
    tables = [Path(d) / "data.arrow" for d in datasets]
    for table in tables:
        if not table.is_file():
            raise InvalidInput(f"{table.parent} is not a dataset directory (no data.arrow).")
    bwrap = BWRAP
    sandboxed = bwrap is not None and _probe(bwrap)
    if not sandboxed and not allow_unsandboxed:
        raise SandboxUnavailable(
            "bubblewrap is not available, so private code cannot be sandboxed. Install the "
            "Debian package bubblewrap (apt-get install bubblewrap), or pass "
            "allow_unsandboxed=True knowing the code then runs with only resource limits "
            "and can read and write anything this user can."
        )
    with tempfile.TemporaryDirectory(prefix="rds-run-") as tmp:
        return _Run(Path(tmp), limits, bwrap if sandboxed else None).execute(
            source, function_name, tables
        )


class _Run:
    """One execution: files, process, limits and the reading of what came back."""

    def __init__(self, workdir: Path, limits: SandboxLimits, bwrap: str | None) -> None:
        self.workdir = workdir
        self.limits = limits
        self.bwrap = bwrap
        self.scratch = workdir / "scratch"
        self.scratch.mkdir()
        self.uid_map = bwrap is not None and _jail.needs_uid_map()
        if self.uid_map:
            os.chown(self.scratch, _jail.JAIL_UID, _jail.JAIL_UID)
        self.files = {n: self._create(n) for n in ("job", "stdout", "stderr", "result", "status")}

    def _create(self, name: str) -> int:
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        return os.open(self.workdir / name, flags, 0o600)

    def execute(self, source: str, function_name: str, tables: list[Path]) -> RunResult:
        data_fds = [os.open(t, os.O_RDONLY | os.O_CLOEXEC) for t in tables]
        pipes: list[int] = []
        try:
            job = {
                "kind": "python",
                "source": source,
                "function": function_name,
                "datasets": [
                    {"fd": fd, "dir": self._data_dir(i, table)}
                    for i, (fd, table) in enumerate(zip(data_fds, tables, strict=True))
                ],
                "limits": asdict(self.limits),
                "result_fd": self.files["result"],
                "status_fd": self.files["status"],
            }
            os.write(self.files["job"], json.dumps(job).encode("utf-8"))
            os.lseek(self.files["job"], 0, os.SEEK_SET)
            argv, env, cwd = self._command([t.parent for t in tables], pipes)
            # Of the handshake pipes, bwrap gets only the ends it reads from and writes to.
            keep = [self.files["result"], self.files["status"], *data_fds, *pipes[0::3]]
            start = time.monotonic()
            process = subprocess.Popen(
                argv,
                stdin=self.files["job"],
                stdout=self.files["stdout"],
                stderr=self.files["stderr"],
                pass_fds=keep,
                env=env,
                cwd=cwd,
                start_new_session=True,
            )
            status, cpu, timed_out = self._supervise(process, pipes, start)
            duration = time.monotonic() - start
        finally:
            for fd in [*data_fds, *pipes, *self.files.values()]:
                _close(fd)
        ended = Ended(status, cpu, timed_out, duration, sandboxed=self.bwrap is not None)
        return read_outcome(self.workdir, self.limits, ended)

    def _data_dir(self, index: int, table: Path) -> str:
        """Where the dataset's directory appears to the inner program."""
        return f"{_jail.DATA}/{index}" if self.bwrap is not None else str(table.parent)

    def _command(self, dirs: list[Path], pipes: list[int]) -> tuple[list[str], dict[str, str], str]:
        package = Path(__file__).resolve().parent.parent
        lib = self.workdir / "lib" / "rds"
        lib.mkdir(parents=True)
        (lib / "__init__.py").touch()
        python = [sys.executable, "-B", "-P", "-m", "rds.sandbox._inner"]
        if self.bwrap is None:
            (lib / "errors.py").symlink_to(package / "errors.py")
            (lib / "sandbox").symlink_to(package / "sandbox")
            env = self._env(home=str(self.scratch), lib=str(lib.parent))
            return python, env, str(self.scratch)
        handshake = None
        if self.uid_map:
            block_r, block_w = os.pipe2(os.O_CLOEXEC)
            info_r, info_w = os.pipe2(os.O_CLOEXEC)
            pipes += [block_r, block_w, info_r, info_w]
            handshake = (block_r, info_w)
        argv = _jail.command(
            self.bwrap,
            python=python,
            env=self._env(home=_jail.SCRATCH, lib=_jail.LIB),
            datasets=dirs,
            scratch_bytes=self.limits.scratch_mb * 1024 * 1024,
            package=package,
            init_file=lib / "__init__.py",
            handshake=handshake,
        )
        return argv, {"PATH": "/usr/bin:/bin"}, str(self.workdir)

    def _env(self, *, home: str, lib: str) -> dict[str, str]:
        # Threads count against max_processes, and each thread reserves address space.
        threads = str(max(1, min(os.cpu_count() or 1, 8, self.limits.max_processes // 8)))
        env = {"PATH": "/usr/bin:/bin", "HOME": home, "TMPDIR": home, "LANG": "C.UTF-8"}
        env |= {"PYTHONPATH": lib, "PYTHONNOUSERSITE": "1", "PYTHONUNBUFFERED": "1"}
        env |= {"OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads}
        env |= {"MKL_NUM_THREADS": threads, "MALLOC_ARENA_MAX": "2"}
        # jemalloc reserves address space that RLIMIT_AS counts and, when refused, loops on
        # failing thread creation; the system allocator fails cleanly with MemoryError.
        env |= {"ARROW_DEFAULT_MEMORY_POOL": "system"}
        return env

    def _supervise(
        self, process: subprocess.Popen[bytes], pipes: list[int], start: float
    ) -> tuple[int, float, bool]:
        lock = threading.Lock()
        state = {"finished": False, "timed_out": False}

        def kill() -> None:
            with lock:
                if not state["finished"]:
                    state["timed_out"] = True
                    _killpg(process.pid)

        timer = threading.Timer(self.limits.wall_seconds - (time.monotonic() - start), kill)
        timer.daemon = True
        timer.start()
        try:
            if pipes:
                block_r, block_w, info_r, info_w = pipes
                _close(info_w)  # bwrap's ends: closed here so EOF means bwrap is gone
                _close(block_r)
                pipes[:] = [block_w, info_r]
                try:
                    _jail.map_uids(block_w, info_r, timeout=HANDSHAKE_SECONDS)
                except (SandboxError, OSError) as exc:
                    os.write(self.files["stderr"], f"rds: uid map failed: {exc}\n".encode())
                    _killpg(process.pid)
            # Wait without reaping so the timer can never signal a recycled process group.
            with contextlib.suppress(ChildProcessError):  # reaped by a SIGCHLD-ignoring host
                os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
            with lock:
                state["finished"] = True
        finally:
            timer.cancel()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        except ChildProcessError:  # nothing to learn from the exit; the status file decides
            process.returncode = 0
            return 0, 0.0, state["timed_out"]
        process.returncode = os.waitstatus_to_exitcode(status)
        _killpg(process.pid)  # stragglers of an unsandboxed run
        return status, usage.ru_utime + usage.ru_stime, state["timed_out"]


def _killpg(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _close(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)
