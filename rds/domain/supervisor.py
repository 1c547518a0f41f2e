"""The supervisor of a served domain: the process ``rds domain start`` leaves running.

It holds the domain directory's lock and runs two children, restarting either when it dies:

- the **server**: syft's HTTP API (``rds._syft.http_main``), the only network-facing
  process, confined by ``rds.sandbox.confine``: it runs as an unprivileged uid of its own
  with no capabilities, and of the domain directory it sees only ``syft/`` (at
  ``/state``). Its output reaches ``server.log`` through a pipe, line by line, marked
  ``[server]`` and capped, so it can neither read that log nor pass itself off as another
  process in it.
- the **worker** (``rds.domain.worker_main``, see ``rds.worker.process``): the owner's
  uid, the only process that reads the private data, the secrets and the ledger key; it
  talks to the server over loopback HTTP.

Given a TLS certificate and key, the server serves HTTPS on the chosen address, and plain
HTTP on a loopback port of its own for the worker and the owner's processes on this
machine (``server.json``'s ``url``; ``public_url`` is the HTTPS one). The certificate and
key are copied into ``syft/tls/`` for the confined server, and removed when serving stops.

The supervisor writes ``server.json`` (its pid, the URLs, each child's pid, the server's
uid, restarts) once both are up. It gives up, and exits non-zero, when a child has had to
be restarted ``RESTARTS`` times within ``RESTART_WINDOW`` seconds. On SIGTERM or SIGINT it
stops the worker, then the server, and removes ``server.json``. Both children die with it
even when it is killed outright (bubblewrap's ``--die-with-parent``; the worker asks the
kernel for a signal when its parent exits).
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
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from rds.sandbox import confine
from rds.worker.layout import Layout, write_private

RESTARTS = 5
RESTART_WINDOW = 60.0
READY_SECONDS = 180.0
STOP_SECONDS = 10.0
CHECK_SECONDS = 0.5
SERVER_LOG_BYTES = 16 * 1024 * 1024  # per server process; the rest of its output is dropped
_LINE_BYTES = 16 * 1024
TLS_DIR = "tls"  # in syft/: the server's copy of the certificate and key


class Supervisor:
    """Start, watch, restart and stop a served domain's server and worker.

    Examples
    --------
    >>> Supervisor(Layout(path), host="127.0.0.1", port=8081).run()  # until SIGTERM
    0
    """

    def __init__(
        self,
        layout: Layout,
        *,
        host: str,
        port: int,
        tls_cert: Path | None = None,
        tls_key: Path | None = None,
    ) -> None:
        self.layout = layout
        self.host = host
        self.port = port
        self.tls = (tls_cert, tls_key) if tls_cert is not None and tls_key is not None else None
        self.url = f"{'https' if self.tls else 'http'}://{host}:{port}"
        self.local_port: int | None = None
        if self.tls:  # the worker and the owner's processes come in over loopback HTTP
            self.local_port = _free_loopback_port()
            self.local_url = f"http://127.0.0.1:{self.local_port}"
        else:
            local = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104
            self.local_url = f"http://{local}:{port}"
        self.server: subprocess.Popen[bytes] | None = None
        self.server_pid: int | None = None
        self.worker: subprocess.Popen[bytes] | None = None
        self.restarts = {"server": 0, "worker": 0}
        self._recent: dict[str, deque[float]] = {"server": deque(), "worker": deque()}
        self._stopping = False
        self._log = -1

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT (0), or until giving up on a child (1)."""
        from rds.domain.domain import _take_lock

        lock = _take_lock(self.layout)
        self._log = os.open(self.layout.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.chmod(self.layout.log, 0o600)
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        try:
            if not self._port_free():
                self.say(f"could not listen on {self.host}:{self.port} (is the port in use?)")
                return 1
            prepare_state(self.layout, tls=self.tls)
            started = time.monotonic()
            if not self._start_server():
                return 0 if self._stopping else 1
            self.say(f"server up in {time.monotonic() - started:.1f}s (pid {self.server_pid})")
            self._start_worker()
            self._write_state()
            self.say(f"domain serving at {self.url}")
            return self._watch()
        finally:
            self._stop_children()
            self.layout.server_file.unlink(missing_ok=True)
            remove_tls(self.layout)
            os.close(lock)
            self.say("stopped")
            os.close(self._log)

    def say(self, message: str) -> None:
        """One line in ``server.log``."""
        os.write(self._log, f"rds supervisor: {message}\n".encode())

    # -- children ----------------------------------------------------------------
    def _start_server(self) -> bool:
        """Start the confined server and wait until it answers; False if it never does."""
        read_end, write_end = os.pipe()
        with os.fdopen(write_end, "wb") as pipe:
            args = ["-m", "rds._syft.http_main", confine.STATE, "--host", self.host]
            if self.tls:
                tls = f"{confine.STATE}/{TLS_DIR}"
                args += ["--tls-cert", f"{tls}/cert.pem", "--tls-key", f"{tls}/key.pem"]
                args += ["--local-port", str(self.local_port)]
            self.server = confine.start(
                [*args, "--port", str(self.port)], state_dir=self.layout.syft_state, log=pipe
            )
        threading.Thread(
            target=self._copy_server_output, args=(read_end,), name="rds-server-log", daemon=True
        ).start()
        deadline = time.monotonic() + READY_SECONDS
        while not self._stopping:
            if self.server.poll() is not None:
                self.say(f"the server exited during start-up (code {self.server.returncode})")
                return False
            if _answers(self.local_url):
                self.server_pid = confine.service_pid(self.server)
                return True
            if time.monotonic() > deadline:
                self.say(f"the server did not answer within {READY_SECONDS:.0f}s")
                return False
            time.sleep(0.2)
        return False

    def _start_worker(self) -> None:
        """Start the worker and wait until it has logged in (or ended, or READY_SECONDS).

        ``rds domain start`` returns once the domain is whole: a client that arrives before
        the worker is ready would compete with its start-up (importing syft, logging in) for
        the CPU, and its requests would wait for it anyway.
        """
        read_end, write_end = os.pipe()
        argv = [sys.executable, "-m", "rds.domain.worker_main", str(self.layout.root)]
        argv += ["--url", self.local_url, "--parent", str(os.getpid())]
        argv += ["--ready-fd", str(write_end)]
        try:
            self.worker = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                pass_fds=[write_end],
            )
        finally:
            os.close(write_end)
        try:
            ready, _, _ = select.select([read_end], [], [], READY_SECONDS)
            if not ready or not os.read(read_end, 16):
                self.say("the worker did not say it was ready; serving anyway")
        finally:
            os.close(read_end)

    def _copy_server_output(self, fd: int) -> None:
        """Copy the server's output into the log, line by line, marked, up to a cap."""
        written = 0
        with os.fdopen(fd, "rb") as pipe:
            while line := pipe.readline(_LINE_BYTES):
                if written < SERVER_LOG_BYTES:
                    written += len(line)
                    os.write(self._log, b"[server] " + line.rstrip(b"\n") + b"\n")
                    if written >= SERVER_LOG_BYTES:
                        self.say("the server's output passed the log cap; the rest is dropped")

    def _watch(self) -> int:
        while not self._stopping:
            time.sleep(CHECK_SECONDS)
            for role in ("server", "worker"):
                process = self.server if role == "server" else self.worker
                if self._stopping or process is None or process.poll() is None:
                    continue
                self.say(f"the {role} exited (code {process.returncode})")
                if not self._may_restart(role):
                    return 1
                if role == "worker":
                    self._start_worker()
                elif not self._start_server():
                    if self._stopping:
                        break
                    return 1
                self.restarts[role] += 1
                self.say(f"{role} restarted ({self.restarts[role]} restart(s) so far)")
                self._write_state()
        return 0

    def _may_restart(self, role: str) -> bool:
        now = time.monotonic()
        recent = self._recent[role]
        while recent and now - recent[0] > RESTART_WINDOW:
            recent.popleft()
        if len(recent) >= RESTARTS:
            self.say(
                f"giving up: the {role} died {len(recent) + 1} times within "
                f"{RESTART_WINDOW:.0f}s; see the lines above for why"
            )
            return False
        recent.append(now)
        return True

    def _stop_children(self) -> None:
        if self.worker is not None:
            _terminate(self.worker, self.worker.pid)
        self.say("worker stopped")
        if self.server is not None:
            _terminate(self.server, self.server_pid or self.server.pid)

    def _on_signal(self, *_: object) -> None:
        self._stopping = True

    # -- state -------------------------------------------------------------------
    def _port_free(self) -> bool:
        return _bindable(self.host, self.port) and (
            self.local_port is None or _bindable("127.0.0.1", self.local_port)
        )

    def _write_state(self) -> None:
        assert self.server is not None and self.worker is not None
        server_pid = self.server_pid or self.server.pid
        state = {
            "pid": os.getpid(),
            # ``url`` is what this machine's processes use (``running_url``, Domain.open);
            # ``public_url`` what scientists use. They differ only with TLS.
            "url": self.local_url if self.tls else self.url,
            "public_url": self.url,
            "host": self.host,
            "port": self.port,
            "tls": self.tls is not None,
            "server_pid": server_pid,
            "worker_pid": self.worker.pid,
            "server_uid": process_uid(server_pid),
            "restarts": self.restarts,
        }
        write_private(self.layout.server_file, json.dumps(state))


def prepare_state(layout: Layout, *, tls: tuple[Path, Path] | None = None) -> None:
    """Make ``syft/`` ready for the confined server: a database, its identity, its owner.

    ``syft/identity.json`` (0600) holds the domain's name, server id, signing key and admin
    email: never the admin password nor any other secret. With ``tls`` (certificate, key)
    their copies go to ``syft/tls/`` (0600): the server terminates TLS, so it holds the key.
    ``syft/`` then belongs to the server's uid (when root), which the owner, as root, can
    still open embedded.
    """
    from rds._syft.http_main import IDENTITY

    if not (layout.syft_state / "syft.db").exists():
        from rds._syft.server import stop_server
        from rds.domain.domain import build_domain_server

        stop_server(build_domain_server(layout))
    config = json.loads(layout.config.read_text())
    identity = json.loads(layout.identity.read_text())
    admin = json.loads(layout.admin.read_text())
    public = {
        "name": config["name"],
        "server_id": identity["server_id"],
        "signing_key": identity["signing_key"],
        "admin_email": admin["email"],
    }
    confine.hand_over(layout.syft_state)  # first: clear what a compromised server left
    write_private(layout.syft_state / IDENTITY, json.dumps(public))
    remove_tls(layout)
    if tls is not None:
        cert, key = tls
        write_private(layout.syft_state / TLS_DIR / "cert.pem", cert.read_text())
        write_private(layout.syft_state / TLS_DIR / "key.pem", key.read_text())
    confine.hand_over(layout.syft_state)


def remove_tls(layout: Layout) -> None:
    """Remove the server's copy of the TLS certificate and key (if any)."""
    shutil.rmtree(layout.syft_state / TLS_DIR, ignore_errors=True)


def _bindable(host: str, port: int) -> bool:
    try:
        family = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM)
        with socket.socket(family[0][0], socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(family[0][4])
    except OSError:
        return False
    return True


def _free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def process_uid(pid: int) -> int | None:
    """The real uid of process ``pid``, from ``/proc``; None if it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    return None


def _answers(url: str) -> bool:
    from rds._syft.probe import answers

    return answers(url, timeout=2)


def _terminate(process: subprocess.Popen[Any], pid: int) -> None:
    """SIGTERM ``pid`` (the process itself, or the service inside its jail), then SIGKILL."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    try:
        process.wait(STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()  # a jail's processes die with bwrap
        process.wait()
