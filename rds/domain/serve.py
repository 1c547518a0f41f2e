"""Serving a domain over HTTP in its own process: ``rds domain start`` / ``stop``.

The served process holds the domain directory's lock, writes ``server.json`` (pid, URL)
once it accepts connections, records each new request in the ledger as it arrives and
applies the datasets' ``auto_release`` policies to it, and removes ``server.json`` when it
stops.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from rds.domain.layout import Layout
from rds.errors import DomainError

_WATCH_SECONDS = 1.0
_WATCH_ATTEMPTS = 3


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
    with layout.log.open("ab") as log:
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
    """Stop the server for the domain in ``path``; return whether one was running."""
    layout = Layout(path.resolve())
    try:
        pid = int(json.loads(layout.server_file.read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        layout.server_file.unlink(missing_ok=True)
        return False
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    layout.server_file.unlink(missing_ok=True)
    return True


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
    return True


def serve(path: Path, *, host: str, port: int) -> None:
    """Run the domain's server in this process until SIGTERM/SIGINT."""
    from rds._syft.client import Connection
    from rds._syft.server import HTTPServer
    from rds.domain.domain import Domain, _take_lock, build_domain_server

    layout = Layout(path.resolve())
    lock = _take_lock(layout)
    server = build_domain_server(layout)
    http = HTTPServer(server, host=host, port=port)
    admin = json.loads(layout.admin.read_text())
    conn = Connection.login(server, email=admin["email"], password=admin["password"])
    domain = Domain(layout, conn=conn, server=server, lock=lock)
    stopping = threading.Event()

    def watch() -> None:
        attempts: dict[str, int] = {}  # request id -> failed attempts; done ones leave
        seen: set[str] = set()
        while not stopping.wait(_WATCH_SECONDS):
            try:
                records = conn.requests()
            except Exception as exc:  # keep serving; the next poll tries again
                print(f"rds: request watcher: {exc}", file=sys.stderr, flush=True)
                continue
            for record in records:
                if record.id in seen:
                    continue
                try:
                    domain.auto_release(record.id)  # records the submission first
                except Exception as exc:  # a transient failure is retried, a few times
                    attempts[record.id] = attempts.get(record.id, 0) + 1
                    print(f"rds: request {record.id[:8]}: {exc}", file=sys.stderr, flush=True)
                    if attempts[record.id] < _WATCH_ATTEMPTS:
                        continue
                seen.add(record.id)
                attempts.pop(record.id, None)

    def on_signal(*_: object) -> None:
        stopping.set()
        http.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    http.start_in_thread()
    url = f"http://{host}:{port}"
    layout.server_file.write_text(json.dumps({"pid": os.getpid(), "url": url}))
    print(f"rds: domain {domain.name!r} serving at {url}", flush=True)
    threading.Thread(target=watch, daemon=True, name="rds-request-watcher").start()
    try:
        while not stopping.wait(0.5):
            pass
    finally:
        layout.server_file.unlink(missing_ok=True)
        domain.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m rds.domain.serve")
    parser.add_argument("path", type=Path)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    args = parser.parse_args(argv)
    serve(args.path, host=args.host, port=args.port)


if __name__ == "__main__":
    main()
