"""The data owner's domain: a syft datasite plus a private store, sandbox and ledger."""

from __future__ import annotations

import fcntl
import json
import os
import secrets
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from rds.dataset.publish import Bounds, Categories
from rds.dataset.store import PrivateStore, check_name
from rds.domain.catalog import KEEP
from rds.domain.listing import RequestList
from rds.domain.requests import OwnerRequest
from rds.dp import budget
from rds.dp.budget import Budget
from rds.errors import DatasetNotFound, DomainError, InvalidInput
from rds.ledger import Ledger, create_key_pair, open_signing
from rds.sandbox.limits import SandboxLimits, WorkerLimits
from rds.worker.layout import Layout, write_private
from rds.worker.policy import Policy

if TYPE_CHECKING:
    from rds.domain.desk import ReviewDesk
    from rds.domain.people import Invitation


@dataclass(frozen=True)
class Credentials:
    """A login for a domain. The password is hidden from reprs."""

    email: str
    password: str = field(repr=False)
    url: str | None = None


class Domain:
    """A data owner's domain.

    Create it once with ``Domain.create``; open it again (after a restart, or while
    ``rds domain start`` serves it) with ``Domain.open``.

    Examples
    --------
    >>> domain = rds.Domain.create("hospital", path="hospital-domain")
    >>> domain.publish("patients", df, description="Admissions 2020-2024")
    >>> creds = domain.add_scientist("ada@uni.example.org")
    >>> domain.requests[0].run().result
    """

    def __init__(
        self, layout: Layout, *, conn: Any, server: Any = None, lock: int | None = None
    ) -> None:
        self.layout = layout
        self._conn = conn
        self._server = server
        self._lock = lock
        config = json.loads(layout.config.read_text())
        self.name: str = config["name"]
        self.limits = SandboxLimits(**config.get("limits", {}))
        self.worker_limits = WorkerLimits(**config.get("worker_limits", {}))
        self.allow_unsandboxed: bool = bool(config.get("allow_unsandboxed", False))
        self.store = PrivateStore(layout.private)
        # Signs with secrets/ledger.key; an older domain's unsigned ledger is adopted here once.
        self.ledger = open_signing(
            layout.ledger,
            key_path=layout.ledger_key,
            public_path=layout.ledger_public,
            actor=conn.email,
        )
        self.owner: str = conn.email

    # -- lifecycle ---------------------------------------------------------------
    @classmethod
    def create(
        cls,
        name: str,
        *,
        path: str | Path,
        admin_email: str | None = None,
        limits: SandboxLimits | None = None,
        allow_unsandboxed: bool = False,
        worker_limits: WorkerLimits | None = None,
    ) -> Domain:
        """Create a new domain in the directory ``path`` and open it.

        A random admin password is generated and kept in ``path/secrets/admin.json``
        (mode 0600); the server's signing key is random too, never derived from ``name``, and
        so is the ledger's Ed25519 key (``secrets/ledger.key``; ``ledger.pub`` verifies it).
        ``allow_unsandboxed=True`` lets private runs proceed without bubblewrap (each one is
        recorded in the ledger with a warning); leave it off in production.
        ``worker_limits`` says how many requests a served domain runs at once and how many
        undecided ones each scientist may have (``rds domain start``).
        """
        from rds._syft.server import new_identity_values

        layout = Layout(Path(path).resolve())
        if layout.config.exists():
            raise DomainError(f"{layout.root} already holds a domain; use Domain.open().")
        if not name or not name.strip():
            raise InvalidInput("A domain needs a name.")
        for value, kind in ((limits, SandboxLimits), (worker_limits, WorkerLimits)):
            if value is not None and not isinstance(value, kind):
                raise InvalidInput(f"Expected an rds.{kind.__name__}, not {type(value).__name__}.")
        layout.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(layout.root, 0o700)
        server_id, signing_key = new_identity_values()
        email = admin_email or f"owner@{_slug(name)}.example.org"
        write_private(
            layout.identity, json.dumps({"server_id": server_id, "signing_key": signing_key})
        )
        write_private(
            layout.admin, json.dumps({"email": email, "password": secrets.token_urlsafe(24)})
        )
        limits = limits or SandboxLimits()
        config = {
            "name": name,
            "created": datetime.now(UTC).isoformat(),
            "limits": limits.__dict__,
            "allow_unsandboxed": allow_unsandboxed,
            "worker_limits": asdict(worker_limits or WorkerLimits()),
        }
        write_private(layout.config, json.dumps(config, indent=2))
        key = create_key_pair(layout.ledger_key, layout.ledger_public)
        Ledger(layout.ledger, key=key).append(
            "domain_created", actor=email, name=name, allow_unsandboxed=allow_unsandboxed
        )
        return cls.open(layout.root)

    @classmethod
    def open(cls, path: str | Path, *, save_as: str | None = None) -> Domain:
        """Open the domain in ``path``.

        If ``rds domain start`` is serving it, attach to that server as its admin instead of
        opening the storage a second time. ``save_as`` saves the domain as an owner profile
        of that name: the Remote Data panel then shows its pending requests.
        """
        from rds._syft.client import Connection
        from rds.profiles import Profile, ProfileStore

        layout = Layout(Path(path).resolve())
        if not layout.config.exists():
            raise DomainError(f"No domain in {layout.root}; create one with Domain.create().")
        if save_as is not None:
            ProfileStore().save(Profile(save_as, kind="owner", path=str(layout.root)))
        admin = json.loads(layout.admin.read_text())
        url = running_url(layout)
        if url is not None:
            conn = Connection.login(url, email=admin["email"], password=admin["password"])
            return cls(layout, conn=conn)
        lock = _take_lock(layout)
        server = build_domain_server(layout)
        conn = Connection.login(server, email=admin["email"], password=admin["password"])
        return cls(layout, conn=conn, server=server, lock=lock)

    def close(self) -> None:
        """Stop the in-process server (if this object runs one) and release the directory."""
        if self._server is not None:
            from rds._syft.server import stop_server

            stop_server(self._server)
            self._server = None
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def __enter__(self) -> Domain:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @property
    def url(self) -> str | None:
        """The HTTP address when the domain is being served, else ``None``."""
        return running_url(self.layout)

    @property
    def public_url(self) -> str | None:
        """The address scientists use: with ``--tls-cert`` the https one (``url`` is then
        the loopback port this machine's own processes use), else ``url``."""
        url = self.url
        if url is None:
            return None
        try:
            info = json.loads(self.layout.server_file.read_text())
        except (OSError, ValueError):
            return url
        return str(info.get("public_url") or url)

    @property
    def embedded(self) -> bool:
        """Whether this process hosts the domain's server."""
        return self._server is not None

    # -- datasets ----------------------------------------------------------------
    def publish(
        self,
        name: str,
        data: pd.DataFrame | str | Path,
        *,
        mock: pd.DataFrame | None = None,
        description: str = "",
        policy: Policy | None = None,
        bounds: Bounds | None = None,
        categories: Categories | None = None,
        privacy_unit: str | None = None,
        max_contributions: int = 1,
        contact: str | None = None,
        mock_rows: int | None = None,
        parse_dates: bool | Sequence[str] | Mapping[str, str | None] | None = None,
        dtypes: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Publish a dataset: private data to the private store, metadata and mock to syft.

        Text columns whose every value is an ISO date or timestamp (``2023-09-04``) are
        published as dates (the returned ``"dates"`` lists them; ``parse_dates=False``
        keeps them text, ``parse_dates=["col"]`` parses other formats, and
        ``parse_dates={"col": "%d/%m/%Y"}`` names one); ``dtypes``
        declares column types (``{"admitted": "date", "ward": "category"}``). Dates keep
        their type in the private store and the mock, and take ``bounds`` as a pair of
        dates.

        ``mock=None`` synthesizes one (same schema, rough marginals, no real row, no rare
        category). ``bounds`` declares numeric ranges per column and ``categories`` the
        public set of values of a column (both checked against the data); differentially
        private queries clamp to the bounds and group only by declared categories.
        ``privacy_unit`` names the column that identifies an individual (each row is one
        individual when ``None``); DP queries count at most ``max_contributions`` rows per
        individual. Returns the public metadata, plus the owner-only ``"capped"``: how many
        individuals have more rows than ``max_contributions`` (DP queries count only that
        many of theirs) out of how many, and how many rows that leaves out.
        """
        from rds.domain import catalog

        check_name(name)
        if name in self.store.names():
            raise InvalidInput(
                f"A dataset named {name!r} is already published; domain.replace({name!r}, "
                "data) publishes a new version of it."
            )
        ready = catalog.prepare(
            self,
            data,
            mock=mock,
            policy=policy,
            bounds=bounds,
            categories=categories,
            privacy_unit=privacy_unit,
            max_contributions=max_contributions,
            contact=contact,
            mock_rows=mock_rows,
            parse_dates=parse_dates,
            dtypes=dtypes,
        )
        return catalog.commit(self, name, ready, description=description, event="published")

    def replace(
        self,
        name: str,
        data: pd.DataFrame | str | Path,
        *,
        note: str | None = None,
        mock: pd.DataFrame | None = None,
        description: Any = KEEP,
        policy: Policy | None = None,
        bounds: Any = KEEP,
        categories: Any = KEEP,
        privacy_unit: Any = KEEP,
        max_contributions: Any = KEEP,
        contact: Any = KEEP,
        mock_rows: int | None = None,
        parse_dates: bool | Sequence[str] | Mapping[str, str | None] | None = None,
        dtypes: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Publish ``data`` as a new version of the dataset ``name`` (ledgered, with ``note``).

        What was declared for the earlier version (description, bounds, categories, privacy
        unit, contact, policy) carries over unless given again; a new mock is drawn unless
        ``mock=`` is given. The earlier version's files are archived, not deleted.
        Requests waiting for a decision run on the new version; a preview made on the old
        one cannot be approved (run it again). ε spent on the dataset stays spent. Returns
        the public metadata with ``"version"``.
        """
        from rds.domain import catalog

        given = {
            "mock": mock,
            "description": description,
            "policy": policy,
            "bounds": bounds,
            "categories": categories,
            "privacy_unit": privacy_unit,
            "max_contributions": max_contributions,
            "contact": contact,
            "mock_rows": mock_rows,
            "parse_dates": parse_dates,
            "dtypes": dtypes,
        }
        return catalog.replace(self, name, data, note=note, given=given)

    def unpublish(self, name: str, *, note: str | None = None) -> list[str]:
        """Withdraw a dataset: scientists no longer see it, and every request still
        waiting on it is denied with a reason that says so (its reserved ε given back).

        The private files are archived (``private/.archive/``), not deleted, and released
        results stay readable. Returns the ids of the requests it denied.
        """
        from rds.domain import catalog

        return catalog.unpublish(self, name, note=note)

    def dataset_version(self, name: str) -> int:
        """1 when published, one more with each ``replace``."""
        from rds.domain import catalog

        return catalog.version(self, name)

    def policy(self, dataset: str) -> Policy:
        """The dataset's current policy."""
        return Policy.from_description(json.loads(self._policy_file(dataset).read_text()))

    def set_policy(self, dataset: str, policy: Policy, *, note: str | None = None) -> None:
        """Change a dataset's policy; the change (old and new) is recorded in the ledger.

        Scientists see the new policy with the dataset's metadata. ε already spent stays
        spent; a lower ``epsilon_budget`` only limits future requests.
        """
        if not isinstance(policy, Policy):
            raise InvalidInput(f"set_policy() takes an rds.Policy, not {type(policy).__name__}.")
        old = self.policy(dataset)
        info = self.dataset_info(dataset)
        policy.check_columns([c["name"] for c in info["schema"]])
        write_private(self._policy_file(dataset), json.dumps(policy.describe()))
        public = {k: info[k] for k in ("rows", "schema", "privacy_unit", "contact")}
        self._conn.replace_dataset_meta(dataset, {**public, "policy": policy.describe()})
        info["policy"] = policy.describe()
        write_private(self._meta_file(dataset), json.dumps(info))
        self.ledger.append(
            "policy_changed",
            actor=self.owner,
            dataset=dataset,
            old=old.describe(),
            new=policy.describe(),
            note=(note or "").strip() or None,
        )

    def dataset_info(self, dataset: str) -> dict[str, Any]:
        """The owner's record of a dataset: public metadata plus private facts about it."""
        path = self._meta_file(dataset)
        if not path.exists():
            raise DatasetNotFound(dataset, self.store.names())
        return dict(json.loads(path.read_text()))

    def _policy_file(self, dataset: str) -> Path:
        return self.layout.private / f"{check_name(dataset)}.policy.json"

    def _meta_file(self, dataset: str) -> Path:
        return self.layout.private / f"{check_name(dataset)}.meta.json"

    @property
    def datasets(self) -> pd.DataFrame:
        """Published datasets with their public metadata."""
        rows = [
            {
                "name": d.name,
                "description": d.description,
                "rows": d.meta.get("rows"),
                "columns": len(d.meta.get("schema", [])),
            }
            for d in self._conn.datasets()
        ]
        return pd.DataFrame(rows, columns=["name", "description", "rows", "columns"])

    # -- people ------------------------------------------------------------------
    def add_scientist(self, email: str, *, name: str | None = None) -> Credentials:
        """Create a data-scientist account with a generated password and return it.

        ``invite`` hands an account over without a password to copy around.
        """
        from rds.domain import people

        return people.add(self, email, name=name)

    def invite(
        self, email: str, *, name: str | None = None, path: str | Path | None = None
    ) -> Invitation:
        """Create an account and return a one-time invitation token for it (also written
        to ``path``, mode 0600, if given). The scientist runs ``rds.connect(invitation=
        token)``: the first use replaces the password with one only their machine knows
        (saved in a connection profile), so the token opens nothing afterwards."""
        from rds.domain import people

        return people.invite(self, email, name=name, path=path)

    @property
    def scientists(self) -> pd.DataFrame:
        """Every scientist added: email, name, since, active, how many requests, the last
        one's date, and ε spent per dataset (from the ledger)."""
        from rds.domain import people

        return people.listing(self)

    def reset_password(self, email: str) -> Credentials:
        """Give a scientist a new generated password; the old one (or an unredeemed
        invitation) stops working. Ledgered."""
        from rds.domain import people

        return people.reset_password(self, email)

    def remove_scientist(self, email: str, *, note: str | None = None) -> list[str]:
        """Delete a scientist's account: their sessions stop working and their requests
        still waiting are denied (reserved ε given back); what was released stays theirs.
        Ledgered with ``note``. Returns the ids of the requests it denied. ε spent stays
        with the email address, should it be added again."""
        from rds.domain import people

        return people.remove(self, email, note=note)

    # -- requests ----------------------------------------------------------------
    @property
    def requests(self) -> RequestList:
        """Every request, oldest first (each is recorded in the ledger on first sight).

        A list, read in one batched listing; ``.waiting`` and ``.where(status=...,
        scientist=..., dataset=..., kind=...)`` filter it without more reads.
        """
        records = sorted(self._conn.requests(), key=lambda r: r.submitted_at)
        published = self.store.names()
        # One read of the ledger for the listing; append() still guards each new entry.
        recorded = {e.data.get("once") for e in self.ledger.events(event="submitted")}
        return RequestList(
            self.note_submission(record, published=published)
            if record.id not in recorded
            else OwnerRequest(self, record, published=published)
            for record in records
        )

    def request(self, request_id: str) -> OwnerRequest:
        """One request by id."""
        return self.note_submission(self._conn.request(request_id))

    def auto_release(self, request_id: str, *, paced: bool = False) -> str | None:
        """Record a new request in the ledger and apply its datasets' ``auto_release`` policy.

        A served domain does this for every request as it arrives, ``paced``: a DP answer
        goes out a fixed time after the pickup (``WorkerLimits.dp_allowance``). Returns
        ``"released"``, ``"denied"`` or ``None`` (left for a human).
        """
        from rds.worker.autorelease import auto_release

        return auto_release(self, self.request(request_id), paced=paced)

    def review(self, *, refresh_every: float | None = 3.0) -> ReviewDesk:
        """The review desk: an ipywidgets queue, detail view and approve/deny buttons.

        It re-reads the queue every ``refresh_every`` seconds (``None``: only on Refresh).
        """
        from rds.domain.desk import ReviewDesk

        return ReviewDesk(self, refresh_every=refresh_every)

    def budget(self, dataset: str, scientist: str) -> Budget:
        """A scientist's ε budget on ``dataset``, from the ledger.

        A reservation still open is read again first: one the scientist withdrew is
        settled now (``OwnerRequest._note_withdrawal``), not at the owner's next look.
        """
        policy = self.policy(dataset)
        entries = self.ledger.entries()
        mine = [
            e
            for e in entries
            if e.data.get("scientist") == scientist and e.data.get("dataset") == dataset
        ]
        statuses = [self.request(r).status for r in budget.open_reservations(mine)]
        if "withdrawn" in statuses:
            entries = self.ledger.entries()
        return budget.from_ledger(
            entries,
            scientist=scientist,
            dataset=dataset,
            epsilon_budget=policy.epsilon_budget,
            delta_budget=policy.delta_budget,
            min_epsilon=policy.min_epsilon,
        )

    def note_submission(
        self, record: Any, *, published: Collection[str] | None = None
    ) -> OwnerRequest:
        """Record a request's submission in the ledger, once, as rds reads it from its code
        (an invalid one with its problem); return it."""
        req = OwnerRequest(self, record, published=published)
        self.ledger.append(
            "submitted",
            actor=record.scientist,
            once_key=record.id,
            request=record.id,
            dataset=req.dataset,
            datasets=req.datasets,
            kind=req.kind,
            problem=req.problem,
            submitted_at=record.submitted_at.isoformat(),
        )
        return req

    def __repr__(self) -> str:
        where = self.url or "in this process"
        return f"<rds.Domain {self.name!r} at {self.layout.root} ({where})>"


def build_domain_server(layout: Layout) -> Any:
    """Build the domain's syft server from the identity in its directory."""
    from rds._syft.server import ServerIdentity, build_server

    config = json.loads(layout.config.read_text())
    identity = json.loads(layout.identity.read_text())
    admin = json.loads(layout.admin.read_text())
    return build_server(
        ServerIdentity(
            name=config["name"],
            server_id=identity["server_id"],
            signing_key=identity["signing_key"],
            admin_email=admin["email"],
            admin_password=admin["password"],
            state_dir=layout.syft_state,
        )
    )


def running_url(layout: Layout) -> str | None:
    """The URL of a live server for this domain, from ``server.json``, if it answers."""
    from rds._syft.probe import answers

    try:
        info = json.loads(layout.server_file.read_text())
        os.kill(int(info["pid"]), 0)
        url = str(info["url"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return url if answers(url, timeout=3) else None


def _take_lock(layout: Layout) -> int:
    fd = os.open(layout.lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise DomainError(
            f"The domain in {layout.root} is open in another process. Serve it with "
            "`rds domain start` so that several processes can use it, or close the other one."
        ) from None
    return fd


def _slug(name: str) -> str:
    slug = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
    return slug or "domain"
