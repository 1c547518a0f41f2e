"""The network-facing syft server of a served domain: ``python -m rds._syft.http_main STATE``.

It runs confined (``rds.sandbox.confine``): it sees only its state directory, which holds
syft's SQLite, blobs and ``identity.json`` (name, server id, signing key, admin email). It
never learns the owner's password: syft's admin account already exists in the database
(the domain created it), so the password syft's constructor insists on is a throwaway.
Served with TLS, it holds a copy of the certificate and key under ``STATE/tls/`` (the
supervisor puts them there and removes them when it stops).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import signal
import sys
from pathlib import Path

IDENTITY = "identity.json"


def main(argv: list[str] | None = None) -> None:
    from rds._syft.server import HTTPServer, ServerIdentity, build_server, stop_server

    parser = argparse.ArgumentParser(prog="python -m rds._syft.http_main")
    parser.add_argument("state", type=Path)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tls-cert", type=Path, help="serve HTTPS with this PEM certificate")
    parser.add_argument("--tls-key", type=Path, help="the certificate's PEM private key")
    parser.add_argument(
        "--local-port", type=int, help="also serve plain HTTP on 127.0.0.1 (with TLS only)"
    )
    args = parser.parse_args(argv)

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("rds server: %(message)s"))
    refusals = logging.getLogger("rds.syft")
    refusals.addHandler(handler)
    refusals.setLevel(logging.INFO)
    refusals.propagate = False  # rds.quiet() raises the root logger's level

    info = json.loads((args.state / IDENTITY).read_text())
    identity = ServerIdentity(
        name=info["name"],
        server_id=info["server_id"],
        signing_key=info["signing_key"],
        admin_email=info["admin_email"],
        admin_password=secrets.token_urlsafe(32),
        state_dir=args.state,
    )
    server = build_server(identity)
    http = HTTPServer(
        server,
        host=args.host,
        port=args.port,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        local_port=args.local_port,
    )
    signal.signal(signal.SIGTERM, lambda *_: http.stop())
    signal.signal(signal.SIGINT, lambda *_: http.stop())
    scheme = "https" if args.tls_cert else "http"
    where = f"{scheme}://{args.host}:{args.port}"
    if args.local_port is not None:
        where += f" and http://127.0.0.1:{args.local_port}"
    print(f"rds server: serving at {where}", file=sys.stderr, flush=True)
    http.run()
    stop_server(server)
    print("rds server: stopped", file=sys.stderr, flush=True)
    # Tearing down syft's modules takes seconds; its database is closed, nothing is lost.
    os._exit(0)


if __name__ == "__main__":
    main()
