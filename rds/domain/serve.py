"""Serving a domain over HTTP: ``rds domain start`` / ``stop`` / ``status``.

``start`` launches the domain's supervisor (``python -m rds.domain.serve DIR``, see
``rds.domain.supervisor``) in the background; it runs the confined syft server and the
worker, and writes ``server.json`` (pids, URL, restarts) once both are up. ``stop`` ends
all three; ``processes`` describes them for ``rds domain status``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rds.errors import DomainError
from rds.worker.layout import Layout

#: How long ``stop`` waits for the children of a killed supervisor to follow it.
CHILDREN_SECONDS = 10.0


def start(path: Path, *, host: str = "127.0.0.1", port: int = 8081, timeout: float = 90) -> str:
    """Start serving the domain in ``path`` in a background process; return its URL."""
    from rds.domain.domain import running_url

    layout = Layout(path.resolve())
    if not layout.config.exists():
        raise DomainError(f"No domain in {layout.root}.")
    url = running_url(layout)
    if url is not None:
        return url
    layout.server_file.unlink(missing_ok=True)
    fd = os.open(layout.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "ab") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "rds.domain.serve",
                str(layout.root),
                "--host",
                host,
                "--port",
                str(port),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = layout.log.read_text(errors="replace")[-2000:]
            raise DomainError(f"The domain server exited (code {process.returncode}):\n{tail}")
        url = running_url(layout)
        if url is not None:
            return url
        time.sleep(0.2)
    process.terminate()
    raise DomainError(f"The domain server did not answer within {timeout:.0f}s; see {layout.log}.")


def stop(path: Path, *, timeout: float = 30) -> bool:
    """Stop the domain in ``path`` (supervisor, server, worker); return whether it ran.

    The supervisor gets SIGTERM and stops its children; after ``timeout`` seconds it is
    killed, and its children, which die with it, are killed too if they linger.
    """
    layout = Layout(path.resolve())
    try:
        info = json.loads(layout.server_file.read_text())
        pid = int(info["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        layout.server_file.unlink(missing_ok=True)
        return False
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    children = [info.get("worker_pid"), info.get("server_pid")]
    _reap_children(layout, [int(c) for c in children if isinstance(c, int)])
    layout.server_file.unlink(missing_ok=True)
    return True


@dataclass(frozen=True)
class ServedProcess:
    """One process of a served domain, as ``/proc`` shows it now.

    ``confined`` is whether it has a mount namespace of its own (None: not readable here);
    ``capabilities`` its effective capability mask.
    """

    role: str
    pid: int
    alive: bool
    uid: int | None
    confined: bool | None
    capabilities: int | None
    restarts: int | None

    def describe(self) -> str:
        if not self.alive:
            return f"{self.role:<10}  pid {self.pid:<7}  not running"
        where = {True: "confined", False: "not confined", None: "confinement unknown"}
        text = where[self.confined]
        if self.capabilities == 0:
            text += ", no capabilities"
        line = f"{self.role:<10}  pid {self.pid:<7}  uid {self.uid!s:<6}  {text:<26}"
        return (line + ("" if self.restarts is None else f"  restarts {self.restarts}")).rstrip()


def processes(path: Path) -> list[ServedProcess]:
    """The supervisor, server and worker that ``server.json`` names (empty if none)."""
    layout = Layout(path.resolve())
    try:
        info: dict[str, Any] = json.loads(layout.server_file.read_text())
        supervisor = int(info["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return []
    restarts = info.get("restarts") or {}
    found = [ServedProcess("supervisor", supervisor, *_proc_facts(supervisor, supervisor), None)]
    for role in ("server", "worker"):
        pid = info.get(f"{role}_pid")
        if isinstance(pid, int):
            found.append(
                ServedProcess(role, pid, *_proc_facts(pid, supervisor), restarts.get(role))
            )
    return found


def _proc_facts(pid: int, supervisor: int) -> tuple[bool, int | None, bool | None, int | None]:
    """``(alive, uid, own mount namespace, effective capabilities)`` from ``/proc``."""
    try:
        status = dict(
            line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        )
    except OSError:
        return False, None, None, None
    if status.get("State", "").split()[:1] == ["Z"]:
        return False, None, None, None
    try:
        confined: bool | None = os.readlink(f"/proc/{pid}/ns/mnt") != os.readlink(
            f"/proc/{supervisor}/ns/mnt"
        )
    except OSError:
        confined = None
    return True, int(status["Uid"].split()[0]), confined, int(status["CapEff"].strip(), 16)


def _reap_children(layout: Layout, pids: list[int]) -> None:
    """Wait for a stopped supervisor's children to end; kill those of this domain that stay."""
    deadline = time.monotonic() + CHILDREN_SECONDS
    for pid in pids:
        while _alive(pid) and _of_domain(pid, layout) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid) and _of_domain(pid, layout):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _of_domain(pid: int, layout: Layout) -> bool:
    """Whether ``pid`` is still a process of this domain (not a reused pid)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    root = str(layout.root).encode()
    # The worker names the domain directory; the confined server names only /state.
    return root in argv or b"rds._syft.http_main" in argv


def _alive(pid: int) -> bool:
    # When this process started the server it is its parent: reap it, or the exited server
    # lingers as a zombie that still answers kill(pid, 0).
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie has ended; its parent (another process) has not reaped it yet
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m rds.domain.serve")
    parser.add_argument("path", type=Path)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    args = parser.parse_args(argv)
    from rds.domain.supervisor import Supervisor

    code = Supervisor(Layout(args.path.resolve()), host=args.host, port=args.port).run()
    sys.stdout.flush()
    os._exit(code)  # its children are stopped and its files closed: skip the slow teardown


if __name__ == "__main__":
    main()
