"""A domain's scientists: who they are, since when, what they spent; remove, reset, invite.

The ledger is the record: ``scientist_added``, ``scientist_removed``, ``password_reset`` and
``invited`` entries, with every request and every ε spent beside them, so ``scientists``
reads one file and no syft listing.

An invitation is a one-time token for handing an account over without a password to copy
around: ``rds.connect(invitation=token)`` logs in with it once and at once replaces the
password with a new random one that only the scientist's machine knows (kept in a
connection profile), so a token seen later, in a mail archive or a chat log, opens nothing.
The owner sees the redemption as the invitation's password no longer working; a token not
yet redeemed is revoked by ``reset_password`` or ``remove_scientist``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from rds.dp.budget import amount
from rds.errors import InvalidInput
from rds.profiles import encode_invitation

if TYPE_CHECKING:
    from rds.domain.domain import Credentials, Domain


@dataclass(frozen=True)
class Invitation:
    """A one-time token for one scientist (``str(invitation)`` is the token).

    ``path`` is the file it was also written to (mode 0600), if one was asked for.
    """

    email: str
    token: str = field(repr=False)
    url: str | None = None
    path: Path | None = None

    def __str__(self) -> str:
        return self.token


def add(domain: Domain, email: str, *, name: str | None) -> Credentials:
    from rds.domain.domain import Credentials

    if not isinstance(email, str) or "@" not in email:
        raise InvalidInput(f"A scientist is added by email address, not {email!r}.")
    password = secrets.token_urlsafe(16)
    shown = name or email.split("@")[0]
    domain._conn.create_user(email=email, name=shown, password=password)
    domain.ledger.append("scientist_added", actor=domain.owner, scientist=email, name=shown)
    return Credentials(email=email, password=password, url=domain.public_url)


def invite(domain: Domain, email: str, *, name: str | None, path: str | Path | None) -> Invitation:
    creds = add(domain, email, name=name)
    token = encode_invitation(
        email=email, password=creds.password, url=domain.public_url, domain=domain.name
    )
    written = None
    if path is not None:
        from rds.worker.layout import write_private

        written = Path(path)
        write_private(written, token + "\n")
    domain.ledger.append("invited", actor=domain.owner, scientist=email, file=str(written or ""))
    return Invitation(email=email, token=token, url=domain.public_url, path=written)


def reset_password(domain: Domain, email: str) -> Credentials:
    from rds.domain.domain import Credentials

    _known(domain, email)
    password = secrets.token_urlsafe(16)
    domain._conn.set_password(email, password)
    domain.ledger.append("password_reset", actor=domain.owner, scientist=email)
    return Credentials(email=email, password=password, url=domain.public_url)


def remove(domain: Domain, email: str, *, note: str | None) -> list[str]:
    """Delete the account; deny its waiting requests (ε reserved is given back)."""
    _known(domain, email)
    reason = "The data owner closed this account; the request was not run."
    denied = domain.requests.waiting.where(scientist=email).deny(reason)
    domain._conn.delete_user(email)
    # A request sent while the loop above ran: the account cannot send one any more.
    denied += domain.requests.waiting.where(scientist=email).deny(reason)
    domain.ledger.append(
        "scientist_removed",
        actor=domain.owner,
        scientist=email,
        denied=denied,
        note=(note or "").strip() or None,
    )
    return denied


def listing(domain: Domain) -> pd.DataFrame:
    """One row per scientist ever added, from the ledger."""
    people: dict[str, dict[str, Any]] = {}
    reserved: dict[str, tuple[str, str, Decimal]] = {}
    spent: dict[str, dict[str, Decimal]] = {}
    for e in domain.ledger.entries():
        data = e.data
        who = data.get("scientist")
        if e.event == "scientist_added" and who:
            people[who] = {
                "email": who,
                "name": data.get("name") or who.split("@")[0],
                "since": e.time[:10],
                "active": True,
                "requests": 0,
                "last_request": None,
            }
        elif e.event == "scientist_removed" and who in people:
            people[who]["active"] = False
        elif e.event == "submitted" and e.actor in people:
            people[e.actor]["requests"] += 1
            people[e.actor]["last_request"] = e.time[:10]
        elif e.event == "epsilon_reserved":
            reserved[data["request"]] = (str(who), str(data["dataset"]), amount(data["epsilon"]))
        elif e.event == "epsilon_spent" and data.get("request") in reserved:
            owner, dataset, epsilon = reserved[data["request"]]
            by = spent.setdefault(owner, {})
            by[dataset] = by.get(dataset, Decimal(0)) + epsilon
    rows = []
    for who, row in people.items():
        row["epsilon_spent"] = {d: float(v) for d, v in sorted(spent.get(who, {}).items())}
        rows.append(row)
    columns = ["email", "name", "since", "active", "requests", "last_request", "epsilon_spent"]
    return pd.DataFrame(rows, columns=columns)


def _known(domain: Domain, email: str) -> None:
    active: dict[str, bool] = {}
    for e in domain.ledger.entries():  # in order: a scientist removed and added again is back
        if e.event in ("scientist_added", "scientist_removed"):
            active[str(e.data.get("scientist"))] = e.event == "scientist_added"
    current = {who for who, yes in active.items() if yes}
    if email not in current:
        shown = ", ".join(sorted(current)) or "none"
        raise InvalidInput(f"No scientist {email!r} on this domain. Scientists: {shown}.")
