"""The ``rds`` command.

rds domain create NAME --path DIR
rds domain start NAME --path DIR [--port 8081] [--host 127.0.0.1]
                 [--tls-cert FILE --tls-key FILE] [--insecure-http]
rds domain stop --path DIR
rds domain status --path DIR
rds ledger verify DIR [--public-key FILE]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rds.errors import RDSError


def _create(args: argparse.Namespace) -> int:
    from rds.domain.domain import Domain

    with Domain.create(args.name, path=args.path) as domain:
        print(f"Created domain {domain.name!r} in {domain.layout.root}")
        print(f"Admin credentials: {domain.layout.admin} (mode 0600)")
    return 0


def _start(args: argparse.Namespace) -> int:
    import json

    from rds.domain import serve
    from rds.domain.domain import Domain
    from rds.worker.layout import Layout

    layout = Layout(args.path.resolve())
    tls = args.tls_cert is not None
    current = serve.serving(args.path) if layout.config.exists() else None
    if current is not None:
        name = json.loads(layout.config.read_text())["name"]
        problem = serve.conflict(current, host=args.host, port=args.port, tls=tls)
        if problem is not None:
            print(f"rds: domain {name!r} in {layout.root}: {problem}", file=sys.stderr)
            return 1
        print(f"Domain {name!r} in {layout.root} is already serving at {current['public_url']}")
        if name != args.name:
            print(f"(the domain in {layout.root} is named {name!r}, not {args.name!r})")
        return 0
    host = serve.DEFAULT_HOST if args.host is None else args.host
    serve.refuse_plain_http(host, tls=tls, insecure_http=args.insecure_http)
    if not layout.config.exists():
        Domain.create(args.name, path=args.path).close()
        print(f"Created domain {args.name!r} in {layout.root}")
    url = serve.start(
        args.path,
        host=host,
        port=args.port,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        insecure_http=args.insecure_http,
    )
    if not tls and not serve.is_loopback(host):
        print(
            f"WARNING: serving plain HTTP on {host}: anyone on the network between the domain "
            "and its scientists can read their passwords and results. Use --tls-cert/--tls-key "
            "or a TLS reverse proxy unless this network is yours alone.",
            file=sys.stderr,
        )
    name = json.loads(layout.config.read_text())["name"]
    print(f"Domain {name!r} is serving at {url}")
    info = serve.serving(args.path)
    if tls and info is not None:
        print(f"  (this machine's own processes use {info['url']})")
    print(f"Admin credentials: {layout.admin} (mode 0600); log: {layout.log}")
    return 0


def _stop(args: argparse.Namespace) -> int:
    from rds.domain import serve

    if serve.stop(args.path):
        print("Stopped.")
        return 0
    print("No server was running for that domain.")
    return 1


def _status(args: argparse.Namespace) -> int:
    from rds.domain import serve
    from rds.domain.domain import running_url
    from rds.worker.layout import Layout

    url = running_url(Layout(args.path.resolve()))
    found = serve.processes(args.path)
    current = serve.serving(args.path) if url else None
    if current is not None and current["public_url"] != url:
        print(f"serving at {current['public_url']} (this machine's processes: {url})")
    elif url:
        print(f"serving at {url}")
    elif any(p.alive for p in found):
        print("not serving: its processes are up, but the server does not answer (restarting?)")
    else:
        print("not running")
    for process in found:
        print(f"  {process.describe()}")
    return 0 if url else 1


def _verify(args: argparse.Namespace) -> int:
    from rds.errors import LedgerError
    from rds.ledger import Ledger, fingerprint, load_public_key
    from rds.worker.layout import Layout

    if args.path.is_file():
        path, public = args.path, args.path.with_name("ledger.pub")
    else:
        layout = Layout(args.path)
        path, public = layout.ledger, layout.ledger_public
    if not path.is_file():
        raise LedgerError(f"No ledger at {path}; give a domain directory or a ledger.jsonl file.")
    if args.public_key is None and not public.is_file():
        raise LedgerError(f"No public key at {public}; give one with --public-key FILE.")
    key = load_public_key(args.public_key or public)
    count = Ledger(path, public_key=key).verify()
    print(f"Ledger OK: {count} entries, hash chain and signatures intact (key {fingerprint(key)})")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="rds", description="Remote data science for Jupyter.")
    groups = top.add_subparsers(dest="group", required=True)

    domain = groups.add_parser("domain", help="create, serve and stop domains").add_subparsers(
        dest="command", required=True
    )
    create = domain.add_parser("create", help="create a domain directory")
    create.add_argument("name")
    create.add_argument("--path", type=Path, required=True)
    create.set_defaults(run=_create)

    start = domain.add_parser(
        "start",
        help="serve a domain over HTTP or HTTPS (creating it if needed)",
        description=(
            "Serve the domain in --path (creating it if needed) from a background process. "
            "By default it listens on 127.0.0.1:8081, reachable from this machine only. To "
            "serve scientists on other machines, either give --tls-cert and --tls-key (HTTPS "
            "directly) or keep it on 127.0.0.1 behind a TLS reverse proxy (Caddy, nginx); "
            "plain HTTP beyond loopback is refused without --insecure-http. On a domain that "
            "is serving already, it prints its URL, and refuses a different --host or --port."
        ),
    )
    start.add_argument("name")
    start.add_argument("--path", type=Path, required=True)
    start.add_argument(
        "--host",
        default=None,
        help="address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)",
    )
    start.add_argument("--port", type=int, default=None, help="port (default 8081)")
    start.add_argument(
        "--tls-cert",
        type=Path,
        metavar="FILE",
        help="serve HTTPS with this PEM certificate (or full chain); needs --tls-key",
    )
    start.add_argument(
        "--tls-key",
        type=Path,
        metavar="FILE",
        help="the certificate's unencrypted PEM private key (keep it 0600)",
    )
    start.add_argument(
        "--insecure-http",
        action="store_true",
        help="allow plain HTTP on an address beyond loopback (passwords and results travel "
        "unencrypted: only on a network you trust)",
    )
    start.set_defaults(run=_start)

    for verb, fn, text in (("stop", _stop, "stop serving"), ("status", _status, "is it serving?")):
        cmd = domain.add_parser(verb, help=text)
        cmd.add_argument("name", nargs="?")
        cmd.add_argument("--path", type=Path, required=True)
        cmd.set_defaults(run=fn)

    ledger = groups.add_parser("ledger", help="audit log").add_subparsers(
        dest="command", required=True
    )
    verify = ledger.add_parser("verify", help="check the ledger's hash chain and signatures")
    verify.add_argument("path", type=Path, help="a domain directory or a ledger.jsonl file")
    verify.add_argument(
        "--public-key",
        type=Path,
        help="the ledger's public key (default: ledger.pub in the domain, or beside the file)",
    )
    verify.set_defaults(run=_verify)
    return top


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        code = args.run(args)
    except RDSError as exc:
        print(f"rds: {exc}", file=sys.stderr)
        code = 2
    sys.exit(code)


if __name__ == "__main__":
    main()
