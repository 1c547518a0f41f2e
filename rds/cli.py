"""The ``rds`` command.

rds domain create NAME --path DIR
rds domain start NAME --path DIR [--port 8081] [--host 127.0.0.1]
                 [--tls-cert FILE --tls-key FILE] [--insecure-http]
rds domain stop --path DIR
rds domain status --path DIR
rds dataset publish NAME FILE --path DIR [--description T] [--bounds COL=LOW:HIGH ...]
                    [--categories COL=A,B,C ...] [--privacy-unit COL] [--epsilon-budget E]
rds dataset replace NAME FILE --path DIR [--note T]
rds dataset list --path DIR
rds dataset unpublish NAME --path DIR [--note T]
rds scientist add EMAIL --path DIR [--name N] [--invite FILE]
rds scientist list --path DIR
rds scientist remove EMAIL --path DIR [--note T]
rds scientist reset EMAIL --path DIR
rds ledger verify DIR [--public-key FILE]
rds ledger show DIR [--last N] [--event EVENT]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rds.errors import InvalidInput, LedgerError, RDSError


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


# -- datasets and scientists: the owner's everyday commands --------------------------------
def _opened(args: argparse.Namespace) -> Any:
    from rds.domain.domain import Domain

    return Domain.open(args.path)


def _pairs(items: list[str] | None, what: str) -> dict[str, str]:
    pairs = {}
    for item in items or []:
        column, sep, value = item.partition("=")
        if not sep or not column or not value:
            raise InvalidInput(f"--{what} takes COLUMN=VALUE, not {item!r}.")
        pairs[column] = value
    return pairs


def _bounds(items: list[str] | None) -> dict[str, tuple[Any, Any]] | None:
    bounds: dict[str, tuple[Any, Any]] = {}
    for column, value in _pairs(items, "bounds").items():
        low, sep, high = value.partition(":")
        if not sep:
            raise InvalidInput(f"--bounds takes COLUMN=LOW:HIGH (dates too), not {value!r}.")
        try:
            bounds[column] = (float(low), float(high))
        except ValueError:  # dates: 2023-01-01:2024-12-31 reads as two dates
            bounds[column] = (low, high)
    return bounds or None


def _publish_options(args: argparse.Namespace) -> dict[str, Any]:
    from rds.worker.policy import Policy

    options: dict[str, Any] = {}
    if args.description is not None:
        options["description"] = args.description
    if args.bounds:
        options["bounds"] = _bounds(args.bounds)
    if args.categories:
        options["categories"] = {
            c: v.split(",") for c, v in _pairs(args.categories, "categories").items()
        }
    if args.privacy_unit is not None:
        options["privacy_unit"] = args.privacy_unit
    if args.max_contributions is not None:
        options["max_contributions"] = args.max_contributions
    if args.epsilon_budget is not None or args.identifying:
        options["policy"] = Policy(
            epsilon_budget=args.epsilon_budget, identifying=list(args.identifying or [])
        )
    if args.no_parse_dates:
        options["parse_dates"] = False
    elif args.parse_dates:
        options["parse_dates"] = list(args.parse_dates)
    return options


def _dataset_publish(args: argparse.Namespace) -> int:
    with _opened(args) as domain:
        meta = domain.publish(args.name, args.file, **_publish_options(args))
    dates = f"; dates: {', '.join(meta['dates'])}" if meta["dates"] else ""
    print(f"Published {args.name!r}: {meta['rows']} rows, {len(meta['schema'])} columns{dates}")
    return 0


def _dataset_replace(args: argparse.Namespace) -> int:
    with _opened(args) as domain:
        meta = domain.replace(args.name, args.file, note=args.note, **_publish_options(args))
    print(f"Replaced {args.name!r}: version {meta['version']}, {meta['rows']} rows")
    return 0


def _dataset_list(args: argparse.Namespace) -> int:
    with _opened(args) as domain:
        listing = domain.datasets
    print(listing.to_string(index=False) if len(listing) else "No datasets published.")
    return 0


def _dataset_unpublish(args: argparse.Namespace) -> int:
    with _opened(args) as domain:
        denied = domain.unpublish(args.name, note=args.note)
    print(f"Unpublished {args.name!r}; {len(denied)} waiting request(s) denied.")
    return 0


def _scientist_add(args: argparse.Namespace) -> int:
    with _opened(args) as domain:
        if args.invite is not None:
            invitation = domain.invite(args.email, name=args.name, path=args.invite)
            print(
                f"Invited {args.email}: hand over {invitation.path} (mode 0600). It works "
                'once: rds.connect(invitation="<that file>").'
            )
            return 0
        creds = domain.add_scientist(args.email, name=args.name)
    print(f"Added {creds.email}\npassword: {creds.password}")
    if creds.url:
        print(f"url: {creds.url}")
    return 0


def _scientist_list(args: argparse.Namespace) -> int:
    with _opened(args) as domain:
        people = domain.scientists
    print(people.to_string(index=False) if len(people) else "No scientists yet.")
    return 0


def _scientist_remove(args: argparse.Namespace) -> int:
    with _opened(args) as domain:
        denied = domain.remove_scientist(args.email, note=args.note)
    print(f"Removed {args.email}; {len(denied)} waiting request(s) denied.")
    return 0


def _scientist_reset(args: argparse.Namespace) -> int:
    with _opened(args) as domain:
        creds = domain.reset_password(args.email)
    print(f"New password for {creds.email}: {creds.password}")
    return 0


def _ledger_show(args: argparse.Namespace) -> int:
    import pandas as pd

    from rds.ledger import Ledger
    from rds.worker.layout import Layout

    path = args.path if args.path.is_file() else Layout(args.path).ledger
    if not path.is_file():
        raise LedgerError(f"No ledger at {path}; give a domain directory or a ledger.jsonl file.")
    match = {"event": args.event} if args.event else {}
    lines = Ledger(path).to_frame(last=args.last, **match)
    with pd.option_context("display.max_colwidth", 80, "display.width", 200):
        print(lines.to_string(index=False) if len(lines) else "No entries.")
    return 0


def _add_publish_options(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--description", help="what the dataset holds (public)")
    cmd.add_argument(
        "--bounds",
        nargs="+",
        metavar="COL=LOW:HIGH",
        help="declared ranges, checked against the data (age=0:120, "
        "admitted=2023-01-01:2024-12-31)",
    )
    cmd.add_argument(
        "--categories",
        nargs="+",
        metavar="COL=A,B,C",
        help="every value a column may take (public; DP GROUP BY keys)",
    )
    cmd.add_argument("--privacy-unit", metavar="COL", help="the column naming the individual")
    cmd.add_argument("--max-contributions", type=int, help="rows per individual DP counts")
    cmd.add_argument("--epsilon-budget", type=float, help="each scientist's ε on this dataset")
    cmd.add_argument("--identifying", nargs="+", metavar="COL", help="columns never released")
    dates = cmd.add_mutually_exclusive_group()
    dates.add_argument(
        "--parse-dates", nargs="+", metavar="COL", help="read these columns as dates too"
    )
    dates.add_argument(
        "--no-parse-dates", action="store_true", help="keep ISO date columns as text"
    )


def _owner_commands(groups: Any) -> None:
    dataset = groups.add_parser(
        "dataset", help="publish, replace, list and unpublish datasets"
    ).add_subparsers(dest="command", required=True)
    publish = dataset.add_parser(
        "publish",
        help="publish a CSV or Parquet file",
        description="Publish FILE as the dataset NAME: the rows stay in the domain's private "
        "store; scientists see its schema, a synthesized mock and the metadata. ISO date "
        "columns are read as dates.",
    )
    replace = dataset.add_parser(
        "replace",
        help="publish a new version of a dataset",
        description="Publish FILE as the next version of NAME. What was declared before "
        "carries over unless given again; waiting requests run on the new version.",
    )
    for cmd in (publish, replace):
        cmd.add_argument("name")
        cmd.add_argument("file", type=Path)
        cmd.add_argument("--path", type=Path, required=True, help="the domain's directory")
        _add_publish_options(cmd)
    replace.add_argument("--note", help="why, for the ledger")
    publish.set_defaults(run=_dataset_publish)
    replace.set_defaults(run=_dataset_replace)
    listing = dataset.add_parser("list", help="the published datasets")
    listing.add_argument("--path", type=Path, required=True, help="the domain's directory")
    listing.set_defaults(run=_dataset_list)
    unpublish = dataset.add_parser(
        "unpublish",
        help="withdraw a dataset",
        description="Withdraw NAME: scientists no longer see it and its waiting requests "
        "are denied with a reason. Its files are archived, not deleted.",
    )
    unpublish.add_argument("name")
    unpublish.add_argument("--path", type=Path, required=True, help="the domain's directory")
    unpublish.add_argument("--note", help="why, for the ledger and the denied requests")
    unpublish.set_defaults(run=_dataset_unpublish)

    scientist = groups.add_parser(
        "scientist", help="add, list, remove scientists and reset passwords"
    ).add_subparsers(dest="command", required=True)
    add = scientist.add_parser(
        "add",
        help="create a scientist's account",
        description="Create an account for EMAIL. With --invite FILE, write a one-time "
        "invitation to hand over instead of printing a password.",
    )
    add.add_argument("email")
    add.add_argument("--name", help="how the scientist is shown (default: from the email)")
    add.add_argument("--invite", type=Path, metavar="FILE", help="write an invitation here")
    add.set_defaults(run=_scientist_add)
    people = scientist.add_parser("list", help="who, since when, requests, ε spent")
    people.set_defaults(run=_scientist_list)
    remove = scientist.add_parser(
        "remove",
        help="delete a scientist's account",
        description="Delete EMAIL's account (open sessions stop too) and deny its waiting "
        "requests; what was released stays released.",
    )
    remove.add_argument("email")
    remove.add_argument("--note", help="why, for the ledger")
    remove.set_defaults(run=_scientist_remove)
    reset = scientist.add_parser("reset", help="give a scientist a new password")
    reset.add_argument("email")
    reset.set_defaults(run=_scientist_reset)
    for cmd in (add, remove, reset):
        cmd.add_argument("--path", type=Path, required=True, help="the domain's directory")
    people.add_argument("--path", type=Path, required=True, help="the domain's directory")


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
    show = ledger.add_parser(
        "show",
        help="the ledger, one line per entry",
        description="Print the ledger one line per entry (seq, time, event, actor, dataset, "
        "request, scientist, the rest as key=value). Read-only; 'rds ledger verify' checks it.",
    )
    show.add_argument("path", type=Path, help="a domain directory or a ledger.jsonl file")
    show.add_argument("--last", type=int, metavar="N", help="only the newest N entries")
    show.add_argument("--event", help="only entries of this event (approved, denied, ...)")
    show.set_defaults(run=_ledger_show)
    _owner_commands(groups)
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
