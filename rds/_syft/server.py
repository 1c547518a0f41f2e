"""Build and serve the syft 0.9.5 datasite behind an rds domain.

syft's own launchers derive keys from the server name and keep state in a temp dir; an HTTP
server restarted without a fixed key and ``db_url`` comes back empty. rds builds the server
itself from the identity stored in the domain directory, so state survives restarts.
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rds._syft import allowlist, guard
from rds._syft.blobs import blob_config
from rds._syft.datasite import datasite_class


@dataclass(frozen=True, kw_only=True)
class ServerIdentity:
    """Everything needed to (re)build the same server: read from the domain directory."""

    name: str
    server_id: str
    signing_key: str
    admin_email: str
    admin_password: str
    state_dir: Path


def new_identity_values() -> tuple[str, str]:
    """A fresh random server id and signing key (hex), never derived from the name."""
    with quiet():
        from syft import SyftSigningKey
        from syft.types.uid import UID

        return UID().no_dash, str(SyftSigningKey.generate())


# ``quiet`` raises the root logger's level while any call is inside it; threads overlap, so
# the first one in saves the level and the last one out restores it.
_QUIET_LOCK = threading.Lock()
_quiet_depth = 0
_saved_disabled: dict[logging.Logger, bool] = {}


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence syft's prints, progress bars, notebook displays and its key-hash log line.

    Safe from several threads at once (widgets poll from background threads). Only the main
    thread redirects stdout and stderr: a redirect made by a background thread is process-wide
    and would swallow whatever the notebook's own code printed meanwhile.
    """
    global _quiet_depth
    with _QUIET_LOCK:
        if _quiet_depth == 0:
            _silence_syft_loggers()
        _quiet_depth += 1
        # syft_function displays a "SyftSuccess ... create a project" banner in notebooks.
        user_code = sys.modules.get("syft.service.code.user_code")
        if user_code is not None:
            user_code.display = _no_display  # type: ignore[attr-defined]
    try:
        if threading.current_thread() is threading.main_thread():
            with (
                contextlib.redirect_stdout(io.StringIO()),
                contextlib.redirect_stderr(io.StringIO()),
            ):
                yield
        else:
            yield
    finally:
        with _QUIET_LOCK:
            _quiet_depth -= 1
            if _quiet_depth == 0:
                for logger, disabled in _saved_disabled.items():
                    logger.disabled = disabled
                _saved_disabled.clear()


def _silence_syft_loggers() -> None:
    """Disable syft's loggers only (``syft`` and every ``syft.*`` one made so far); the
    notebook's own logging, and the root logger, are left as they are.

    ``Logger.disabled`` rather than a level: ``setLevel`` clears the cache of every logger
    in the process, which cost more than some of the syft calls it wrapped."""
    names = ["syft"] + [n for n in logging.root.manager.loggerDict if n.startswith("syft.")]
    for name in names:
        logger = logging.getLogger(name)
        _saved_disabled[logger] = logger.disabled
        logger.disabled = True


def _no_display(*_objects: Any, **_options: Any) -> None:
    """Stands in for IPython's ``display`` inside syft while rds drives it."""


def build_server(identity: ServerIdentity) -> Any:
    """Construct the syft Datasite for ``identity`` (creating its storage on first use)."""
    guard.install()
    with quiet():
        from syft import SyftSigningKey
        from syft.abstract_server import ServerSideType
        from syft.types.uid import UID

        identity.state_dir.mkdir(parents=True, exist_ok=True)
        blob = blob_config(identity.state_dir / "blob")
        return datasite_class()(
            name=identity.name,
            id=UID(identity.server_id),
            signing_key=SyftSigningKey.from_string(identity.signing_key),
            db_url=f"sqlite:///{identity.state_dir / 'syft.db'}",
            root_email=identity.admin_email,
            root_username="Data owner",
            root_password=identity.admin_password,
            server_side_type=ServerSideType.HIGH_SIDE,
            deployment_type="python",
            blob_storage_config=blob,
            in_memory_workers=True,
            n_consumers=0,
        )


def stop_server(server: Any) -> None:
    """Release the server's resources (its SQLite connections)."""
    with quiet(), contextlib.suppress(Exception):
        server.stop()


class HTTPServer:
    """The datasite's HTTP API on uvicorn: syft's routes rds allows, without syft's ``*`` CORS.

    Only ``allowlist.ROUTES`` are mounted (registration, password reset and the peer stream
    proxy are not); every API call is then checked at dispatch (``RDSDatasite``).

    With ``tls_cert`` and ``tls_key`` (PEM files) it serves HTTPS on ``host:port``, and,
    given ``local_port``, the same API over plain HTTP on ``127.0.0.1:local_port`` for the
    domain's own processes on this machine (the worker, the owner's ``Domain.open``), which
    then need no certificate that names 127.0.0.1.

    Examples
    --------
    >>> http = HTTPServer(build_server(identity), host="127.0.0.1", port=8081)
    >>> http.run()  # blocks until stop() or a signal
    """

    def __init__(
        self,
        server: Any,
        *,
        host: str,
        port: int,
        tls_cert: Path | None = None,
        tls_key: Path | None = None,
        local_port: int | None = None,
    ) -> None:
        import uvicorn
        from fastapi import APIRouter, FastAPI
        from syft.server.routes import make_routes

        if (tls_cert is None) != (tls_key is None):
            raise ValueError("TLS needs both a certificate and its key")
        self.server = server
        app = FastAPI(
            title=f"rds domain {server.name}", docs_url=None, redoc_url=None, openapi_url=None
        )
        router = APIRouter()
        for route in make_routes(worker=server).routes:
            if getattr(route, "path", None) in allowlist.ROUTES:
                router.routes.append(route)
        app.include_router(router, prefix="/api/v2")
        tls: dict[str, Any] = {}
        if tls_cert is not None and tls_key is not None:
            tls = {"ssl_certfile": str(tls_cert), "ssl_keyfile": str(tls_key)}
        config = uvicorn.Config(
            app, host=host, port=port, log_level="warning", access_log=False, **tls
        )
        self._uvicorn = uvicorn.Server(config)
        self._local: Any = None
        if local_port is not None:
            local = uvicorn.Config(
                app, host="127.0.0.1", port=local_port, log_level="warning", access_log=False
            )
            self._local = uvicorn.Server(local)

    def run(self) -> None:
        """Serve until stopped (the loopback listener, if any, from a thread of its own)."""
        if self._local is None:
            self._uvicorn.run()
            return
        local = _serve_in_thread(self._local, "rds-domain-http-local")
        try:
            self._uvicorn.run()
        finally:
            self._local.should_exit = True
            local.join(10)

    def start_in_thread(self) -> threading.Thread:
        """Serve from a daemon thread; return once the socket accepts connections.

        Raises ``OSError`` when the server could not start (typically: port in use).
        """
        return _serve_in_thread(self._uvicorn, "rds-domain-http")

    def stop(self) -> None:
        """Ask uvicorn to exit."""
        self._uvicorn.should_exit = True
        if self._local is not None:
            self._local.should_exit = True


def _serve_in_thread(server: Any, name: str) -> threading.Thread:
    """Run a uvicorn server from a daemon thread; return once it accepts connections."""
    thread = threading.Thread(target=server.run, daemon=True, name=name)
    thread.start()
    while not server.started and thread.is_alive():
        thread.join(0.02)
    if not server.started:
        host, port = server.config.host, server.config.port
        raise OSError(f"Could not listen on {host}:{port} (is the port in use?)")
    return thread
