"""One jail: a process started before its job, handed exactly one job, then ended and removed.

A jail is the inner program (``_inner``) in a bubblewrap sandbox, or, unsandboxed, in a
plain subprocess. It starts without knowing its job: it imports numpy, pandas and pyarrow,
says ``ready`` and waits on its end of a socket pair. ``hand_over`` sends the job and its
descriptors (data files, result, status, stdout, stderr) and waits until the jail
confirms it took them; only then does the scientist's code run. The jail serves that one
job and exits, so nothing of one run can reach the next.

Each jail has its own host directory: the empty ``__init__.py`` that stands in for rds's,
``boot.log`` (what bwrap and the interpreter print before the job, which the run's stderr
gets), the run's own files once it has a job, and, unsandboxed, its scratch directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rds.errors import SandboxError
from rds.sandbox import _jail
from rds.sandbox.limits import SandboxLimits

HANDSHAKE_SECONDS = 10.0
BOOT_LOG_BYTES = 64 * 1024
READY = b"ready\n"  # what a jail says once its imports are done
_PACKAGE = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class JailConfig:
    """Everything a jail's command line depends on: a waiting jail suits any run with the same.

    Parameters
    ----------
    bwrap
        The bubblewrap executable, or None for an unsandboxed subprocess.
    scratch_mb
        Size of the jail's ``/scratch`` tmpfs.
    threads
        Threads numpy's and Arrow's pools may use; they are fixed when numpy is imported.
    uid_map
        Whether the host is root and the jail must drop to ``JAIL_UID`` (see ``_jail``).
    """

    bwrap: str | None
    scratch_mb: int
    threads: int
    uid_map: bool

    @classmethod
    def for_run(cls, bwrap: str | None, limits: SandboxLimits) -> JailConfig:
        """The configuration a run with ``limits`` needs."""
        # Threads count against max_processes, and each thread reserves address space.
        threads = max(1, min(os.cpu_count() or 1, 8, limits.max_processes // 8))
        uid_map = bwrap is not None and _jail.needs_uid_map()
        return cls(bwrap, limits.scratch_mb, threads, uid_map)


class Jail:
    """A started jail process and the host's end of its socket.

    Use ``Jail.start``; then ``hand_over`` once, supervise ``process``, and ``close``.
    """

    def __init__(
        self,
        config: JailConfig,
        workdir: Path,
        process: subprocess.Popen[bytes],
        channel: socket.socket,
    ) -> None:
        self.config = config
        self.workdir = workdir
        self.process = process
        self.channel = channel
        self._heard = b""  # what the jail has said so far

    @classmethod
    def start(cls, config: JailConfig) -> Jail:
        """Start a jail for ``config``; it imports its libraries and waits for a job.

        A jail that fails to start is returned anyway, dead, with the reason in its boot
        log: it then takes no job, and the run that tried it reports that log.
        """
        workdir = Path(tempfile.mkdtemp(prefix="rds-jail-"))
        host_end, jail_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        boot = os.open(workdir / "boot.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        pipes: list[int] = []
        process = None
        try:
            argv, env, cwd = _command(config, workdir, jail_end.fileno(), pipes)
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=boot,
                stderr=boot,
                pass_fds=[jail_end.fileno(), *pipes[0::3]],
                env=env,
                cwd=cwd,
                start_new_session=True,
            )
            jail = cls(config, workdir, process, host_end)
            if pipes:
                block_r, block_w, info_r, info_w = pipes
                for fd in (block_r, info_w):  # bwrap's ends: closed so EOF means bwrap is gone
                    os.close(fd)
                pipes[:] = [block_w, info_r]
                try:
                    _jail.map_uids(block_w, info_r, timeout=HANDSHAKE_SECONDS)
                except (SandboxError, OSError) as exc:
                    os.write(boot, f"rds: uid map failed: {exc}\n".encode())
                    jail.kill()
        except BaseException:
            if process is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            host_end.close()
            shutil.rmtree(workdir, ignore_errors=True)
            raise
        finally:
            for fd in [boot, jail_end.detach(), *pipes]:
                _close(fd)
        return jail

    def alive(self) -> bool:
        """True while the jail waits for a job: its process runs and has not closed the socket."""
        if self.process.returncode is not None or self.process.poll() is not None:
            return False
        while select.select([self.channel], [], [], 0)[0]:
            chunk = self.channel.recv(64)
            if not chunk:
                return False
            self._heard += chunk
        return READY.startswith(self._heard)  # "ready", or part of it, and nothing else

    @property
    def ready(self) -> bool:
        """Whether the jail said it has imported everything (as of the last ``alive``)."""
        return self._heard == READY

    def hand_over(self, job: dict[str, object], fds: list[int]) -> float | None:
        """Send the job with ``fds`` and wait until the jail has taken it.

        Returns
        -------
        float or None
            The CPU seconds the jail had used before the job (its imports), or None if it
            ended without taking the job: then none of the job's code has run.
        """
        payload = json.dumps(job).encode("utf-8")
        heard = self._heard
        try:
            socket.send_fds(self.channel, [len(payload).to_bytes(8, "big")], fds)
            self.channel.sendall(payload)
            # The jail says "ready" (perhaps heard already), then its CPU time once it has
            # the job; nothing it sends after that is read.
            while heard.count(b"\n") < 2 and len(heard) < 64:
                chunk = self.channel.recv(64)
                if not chunk:
                    return None
                heard += chunk
            ready, used, _ = heard.split(b"\n", 2)
            return float(used) if ready + b"\n" == READY else None
        except (OSError, ValueError):
            return None
        finally:
            self.channel.close()  # the jail's code may write to its end; nothing more is read

    def kill(self) -> None:
        """SIGKILL the jail's process group (bwrap's pid namespace takes the rest down)."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)

    def boot_log(self) -> bytes:
        """What was printed before the job was taken (bwrap's own errors, import warnings)."""
        with (self.workdir / "boot.log").open("rb") as handle:
            return handle.read(BOOT_LOG_BYTES)

    def close(self) -> None:
        """Kill and reap the jail if it still runs, and remove its directory."""
        self.kill()
        if self.process.returncode is None:
            with contextlib.suppress(ChildProcessError, subprocess.TimeoutExpired):
                self.process.wait(timeout=HANDSHAKE_SECONDS)
        self.channel.close()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _command(
    config: JailConfig, workdir: Path, channel_fd: int, pipes: list[int]
) -> tuple[list[str], dict[str, str], str]:
    """The argv, environment and cwd of the jail; appends handshake pipes to ``pipes``."""
    lib = workdir / "lib" / "rds"
    lib.mkdir(parents=True)
    (lib / "__init__.py").touch()
    python = [_jail.interpreter(), "-B", "-P", "-m", "rds.sandbox._inner", str(channel_fd)]
    if config.bwrap is None:
        scratch = workdir / "scratch"
        scratch.mkdir()
        (lib / "errors.py").symlink_to(_PACKAGE / "errors.py")
        (lib / "sandbox").symlink_to(_PACKAGE / "sandbox")
        env = _env(config, home=str(scratch), lib=str(lib.parent))
        return python, env, str(scratch)
    handshake = None
    if config.uid_map:
        block_r, block_w = os.pipe2(os.O_CLOEXEC)
        info_r, info_w = os.pipe2(os.O_CLOEXEC)
        pipes += [block_r, block_w, info_r, info_w]
        handshake = (block_r, info_w)
    argv = _jail.command(
        config.bwrap,
        python=python,
        env=_env(config, home=_jail.SCRATCH, lib=_jail.LIB),
        scratch_bytes=config.scratch_mb * 1024 * 1024,
        package=_PACKAGE,
        init_file=lib / "__init__.py",
        handshake=handshake,
    )
    return argv, {"PATH": "/usr/bin:/bin"}, str(workdir)


def _env(config: JailConfig, *, home: str, lib: str) -> dict[str, str]:
    threads = str(config.threads)
    env = {"PATH": "/usr/bin:/bin", "HOME": home, "TMPDIR": home, "LANG": "C.UTF-8"}
    env |= {"PYTHONPATH": lib, "PYTHONNOUSERSITE": "1", "PYTHONUNBUFFERED": "1"}
    env |= {"OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads}
    env |= {"MKL_NUM_THREADS": threads, "MALLOC_ARENA_MAX": "2"}
    # jemalloc reserves address space that RLIMIT_AS counts and, when refused, loops on
    # failing thread creation; the system allocator fails cleanly with MemoryError.
    env |= {"ARROW_DEFAULT_MEMORY_POOL": "system"}
    return env


def _close(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)
