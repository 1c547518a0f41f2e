"""Serving a domain over HTTP(S): ``rds domain start`` / ``stop`` / ``status``.

``start`` refuses what would expose the domain by accident: plain HTTP on an address
beyond this machine's loopback needs ``insecure_http=True`` (``--insecure-http``); with a
TLS certificate and key it serves HTTPS. On a domain that is serving already it reports
that server's URL, and refuses an address or port that differs from the one it serves on.

``start`` launches the domain's supervisor (``python -m rds.domain.serve DIR``, see
``rds.domain.supervisor``) in the background; it runs the confined syft server and the
worker, and writes ``server.json`` (pids, URL, restarts) once both are up. ``stop`` ends
all three; ``processes`` describes them for ``rds domain status``.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import signal
import socket
import ssl
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
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8081


def start(
    path: Path,
    *,
    host: str | None = None,
    port: int | None = None,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    insecure_http: bool = False,
    timeout: float = 90,
) -> str:
    """Serve the domain in ``path`` from a background process; return the scientists' URL.

    ``host`` defaults to 127.0.0.1 and ``port`` to 8081. With ``tls_cert`` and ``tls_key``
    (PEM files; the certificate may be a full chain) it serves HTTPS. Plain HTTP on an
    address other than loopback is refused unless ``insecure_http``.

    When the domain is serving already, its URL is returned, unless ``host``, ``port`` or
    TLS ask for another address: then ``DomainError`` says where it serves.
    """
    layout = Layout(path.resolve())
    if not layout.config.exists():
        raise DomainError(f"No domain in {layout.root}.")
    current = serving(path)
    if current is not None:
        problem = conflict(current, host=host, port=port, tls=tls_cert is not None)
        if problem is not None:
            raise DomainError(problem)
        return str(current["public_url"])
    host = DEFAULT_HOST if host is None else host
    port = DEFAULT_PORT if port is None else port
    tls = _check_tls(tls_cert, tls_key)
    refuse_plain_http(host, tls=tls is not None, insecure_http=insecure_http)
    layout.server_file.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "rds.domain.serve", str(layout.root), "--host", host]
    argv += ["--port", str(port)]
    if tls is not None:
        argv += ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]
    fd = os.open(layout.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "ab") as log:
        process = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = layout.log.read_text(errors="replace")[-2000:]
                raise DomainError(f"The domain server exited (code {process.returncode}):\n{tail}")
            current = serving(path)
            if current is not None:
                return str(current["public_url"])
            time.sleep(0.2)
    except BaseException:  # interrupted (Ctrl-C, a signal): do not leave it starting up
        process.terminate()
        raise
    process.terminate()
    raise DomainError(f"The domain server did not answer within {timeout:.0f}s; see {layout.log}.")


def serving(path: Path) -> dict[str, Any] | None:
    """``server.json`` of the domain in ``path`` if its server answers, else None.

    Its ``public_url`` is the scientists' URL, ``url`` the one for this machine's own
    processes (the same unless serving HTTPS), ``host``, ``port`` and ``tls`` what it
    serves on.
    """
    from urllib.parse import urlsplit

    from rds.domain.domain import running_url

    layout = Layout(path.resolve())
    if running_url(layout) is None:
        return None
    try:
        info: dict[str, Any] = json.loads(layout.server_file.read_text())
    except (OSError, ValueError):
        return None
    info.setdefault("public_url", info.get("url"))
    public = urlsplit(str(info["public_url"]))
    info.setdefault("host", public.hostname)
    info.setdefault("port", public.port)
    info.setdefault("tls", public.scheme == "https")
    return info


def conflict(
    current: dict[str, Any], *, host: str | None, port: int | None, tls: bool
) -> str | None:
    """Why serving on ``host:port`` (None: any) conflicts with ``current``; None if it does not."""
    asked = []
    if port is not None and port != current["port"]:
        asked.append(f"port {port}")
    if host is not None and host != current["host"]:
        asked.append(f"address {host}")
    if tls and not current["tls"]:
        asked.append("HTTPS")
    if not asked:
        return None
    return (
        f"The domain is already serving at {current['public_url']}, so it cannot also serve on "
        f"{' and '.join(asked)}. To move it, stop it first (rds domain stop --path DIR) and "
        "start it again."
    )


def refuse_plain_http(host: str, *, tls: bool, insecure_http: bool) -> None:
    """Raise ``DomainError`` for plain HTTP beyond loopback, unless ``insecure_http``."""
    if not tls and not insecure_http and not is_loopback(host):
        raise DomainError(
            f"Refusing to serve plain HTTP on {host}: anyone on that network could read the "
            "passwords and results sent to the domain, or pose as it. Serve HTTPS with "
            "--tls-cert FILE --tls-key FILE, or keep the domain on 127.0.0.1 behind a TLS "
            "reverse proxy (README: 'Serving to another machine'). To serve plain HTTP beyond "
            "this machine anyway (a private network you trust), add --insecure-http."
        )


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine's loopback only (127.0.0.0/8, ::1, localhost)."""
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        found = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return False
    return bool(found) and all(ipaddress.ip_address(f[4][0]).is_loopback for f in found)


def _check_tls(cert: Path | None, key: Path | None) -> tuple[Path, Path] | None:
    """Both files, absolute, once Python's ssl module has loaded them as a pair; or None."""
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise DomainError("Serving HTTPS needs both --tls-cert FILE and --tls-key FILE.")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        # An encrypted key would make ssl prompt for its passphrase: answer with none.
        context.load_cert_chain(cert, key, password=lambda: b"")
    except (OSError, ssl.SSLError) as exc:
        raise DomainError(
            f"Cannot serve HTTPS with certificate {cert} and key {key}: {exc}. Give PEM files "
            "(the certificate, or its full chain, and its unencrypted private key)."
        ) from None
    return cert.resolve(), key.resolve()


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
    parser.add_argument("--tls-cert", type=Path)
    parser.add_argument("--tls-key", type=Path)
    args = parser.parse_args(argv)
    from rds.domain.supervisor import Supervisor

    layout = Layout(args.path.resolve())
    supervisor = Supervisor(
        layout, host=args.host, port=args.port, tls_cert=args.tls_cert, tls_key=args.tls_key
    )
    code = supervisor.run()
    sys.stdout.flush()
    os._exit(code)  # its children are stopped and its files closed: skip the slow teardown


if __name__ == "__main__":
    main()
