"""The ``rds`` command.

rds domain create NAME --path DIR
rds domain start NAME --path DIR [--port 8081] [--host 127.0.0.1]
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
    from rds.domain import serve
    from rds.domain.domain import Domain
    from rds.worker.layout import Layout

    layout = Layout(args.path.resolve())
    if not layout.config.exists():
        Domain.create(args.name, path=args.path).close()
        print(f"Created domain {args.name!r} in {layout.root}")
    if args.host not in {"127.0.0.1", "localhost", "::1"}:
        print(
            f"WARNING: serving on {args.host} makes the domain reachable from other machines "
            "over plain HTTP. Put it behind a TLS reverse proxy.",
            file=sys.stderr,
        )
    url = serve.start(args.path, host=args.host, port=args.port)
    print(f"Domain {args.name!r} is serving at {url}")
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
    if url:
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

    start = domain.add_parser("start", help="serve a domain over HTTP (creating it if needed)")
    start.add_argument("name")
    start.add_argument("--path", type=Path, required=True)
    start.add_argument("--host", default="127.0.0.1")
    start.add_argument("--port", type=int, default=8081)
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
