"""Connecting to a domain as a data scientist."""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rds.dp.budget import MIN_EPSILON, Budget, BudgetList
from rds.errors import DatasetNotFound, InvalidInput
from rds.request.status import decision
from rds.scientist.dataset import DatasetList, RemoteDataset
from rds.scientist.request import Request, RequestList
from rds.widgets.errors import install as install_error_display
from rds.widgets.status import transient

if TYPE_CHECKING:
    from rds._syft.client import Connection, DatasetRecord, RequestRecord

_CACHE_SECONDS = 5.0


def connect(
    target: str | None = None,
    *,
    email: str | None = None,
    password: str | None = None,
    profile: str | None = None,
    save_as: str | None = None,
    verify: str | os.PathLike[str] | None = None,
    invitation: str | os.PathLike[str] | None = None,
) -> Session:
    """Log in to a served domain at ``target`` (a URL) or by saved ``profile``.

    ``rds.connect`` is this, and also takes a ``Domain`` object (see ``rds.embedded``,
    which documents the parameters; ``verify`` is the CA certificate for an https URL).
    """
    from rds._syft.client import Connection
    from rds.profiles import Profile, ProfileStore

    if invitation is not None:
        return _redeem(invitation, target, save_as=save_as, verify=verify, given=(email, password))

    if profile is not None:
        if target is not None or email is not None or password is not None:
            raise InvalidInput("connect(profile=...) takes no URL, email or password.")
        saved = ProfileStore().get(profile)
        if saved.kind != "scientist" or saved.url is None:
            raise InvalidInput(
                f"Profile {profile!r} is an owner's domain; open it with "
                f"rds.Domain.open({saved.path!r})."
            )
        target, email, password = saved.url, saved.email, saved.password
        verify = verify if verify is not None else saved.verify
    if email is None or password is None:
        raise InvalidInput("connect() needs email= and password= (or profile=).")
    if not isinstance(target, str):
        raise InvalidInput(f"connect() takes a URL or a Domain, not {type(target).__name__}.")
    url = target.rstrip("/")
    # checked before logging in: a bad name should not cost a login
    to_save = (
        None
        if save_as is None
        else Profile(
            save_as,
            kind="scientist",
            url=url,
            email=email,
            password=password,
            verify=_ca_path(verify),
        )
    )
    with transient(_connecting(url)):  # the first connection in a kernel takes seconds
        session = Session(Connection.login(url, email=email, password=password, verify=verify))
    if to_save is not None:
        ProfileStore().save(to_save)
    return session


def _redeem(
    invitation: str | os.PathLike[str],
    target: str | None,
    *,
    save_as: str | None,
    verify: str | os.PathLike[str] | None,
    given: tuple[str | None, str | None],
) -> Session:
    """Log in with a one-time invitation, replace its password at once, save a profile."""
    import secrets

    from rds._syft.client import Connection
    from rds.errors import AuthenticationFailed
    from rds.profiles import Profile, ProfileStore, decode_invitation

    if any(v is not None for v in given):
        raise InvalidInput("connect(invitation=...) takes no email or password: it holds them.")
    fields = decode_invitation(str(invitation))
    url = (target or fields.get("url") or "").rstrip("/")
    if not url:
        raise InvalidInput(
            "This invitation is for a domain that was not served when it was made; pass its "
            "URL: rds.connect(url, invitation=...)."
        )
    name = save_as or _profile_name(str(fields.get("domain") or "domain"))
    password = secrets.token_urlsafe(24)
    # Made (and its name checked) before the password changes: nothing may lock them out.
    profile = Profile(
        name,
        kind="scientist",
        url=url,
        email=fields["email"],
        password=password,
        verify=_ca_path(verify),
    )
    with transient(_connecting(url)):
        try:
            conn = Connection.login(
                url, email=fields["email"], password=fields["password"], verify=verify
            )
        except AuthenticationFailed:
            raise AuthenticationFailed(
                "This invitation was used already, or revoked (the owner reset the password "
                "or removed the account). Ask the data owner for a new one."
            ) from None
    conn.change_own_password(password)
    ProfileStore().save(profile)
    print(  # the one thing they must know: how to connect next time
        f"Invitation accepted: your password is new and saved as profile {name!r}; connect "
        f"again with rds.connect(profile={name!r}). The invitation no longer works."
    )
    return Session(conn)


def _ca_path(verify: str | os.PathLike[str] | None) -> str | None:
    """The CA file a profile keeps, absolute, so it works from any notebook's directory."""
    from pathlib import Path

    return None if verify is None else str(Path(verify).expanduser().resolve())


def _profile_name(domain: str) -> str:
    slug = "".join(c if c.isalnum() else "-" for c in domain.lower()).strip("-")
    return slug or "domain"


def _connecting(url: str) -> str:
    # PySyft is imported on the first connection; it is most of the wait.
    first = "" if "syft" in sys.modules else " (loading PySyft, a few seconds the first time)"
    return f"Connecting to {url}{first}…"


class Session:
    """A scientist's login to one domain."""

    def __init__(
        self, conn: Connection, *, on_submit: Callable[[str], object] | None = None
    ) -> None:
        # In case IPython came after ``import rds``: its errors shown compactly from here on.
        install_error_display()
        self._conn = conn
        # Called with each new request's id once it is submitted: an embedded domain
        # applies its owner's policy there and then (wired by ``rds.embedded``).
        self._on_submit = on_submit
        self._records: list[DatasetRecord] = []
        self._fetched = 0.0

    @property
    def email(self) -> str:
        return self._conn.email

    def _dataset_records(self) -> list[DatasetRecord]:
        if time.monotonic() - self._fetched > _CACHE_SECONDS:
            self._records = self._conn.datasets()
            self._fetched = time.monotonic()
        return self._records

    def refresh(self) -> None:
        """Read the domain's datasets again now (a listing is otherwise kept for 5 s), e.g.
        right after the owner published or changed one.

        Examples
        --------
        >>> session.refresh()
        >>> session.datasets
        """
        self._records = self._conn.datasets()
        self._fetched = time.monotonic()

    @property
    def datasets(self) -> DatasetList:
        """The domain's datasets (``.to_frame()`` for a table of their metadata)."""
        return DatasetList(RemoteDataset(self, r) for r in self._dataset_records())

    def dataset(self, name: str) -> RemoteDataset:
        """One dataset by name; ``DatasetNotFound`` lists the ones that exist."""
        records = self._dataset_records()
        for record in records:
            if record.name == name:
                return RemoteDataset(self, record)
        self._fetched = 0.0
        records = self._dataset_records()
        for record in records:
            if record.name == name:
                return RemoteDataset(self, record)
        raise DatasetNotFound(name, [r.name for r in records])

    def request(self, request_id: str) -> Request:
        """A request sent earlier (e.g. before a kernel restart), by its id."""
        record = self._conn.request(request_id)
        if record.scientist != self.email:
            raise InvalidInput(f"Request {request_id!r} is not one of yours.")
        return Request(self, record.id, meta=record.meta, mock_result=None, record=record)

    @property
    def requests(self) -> RequestList:
        """Your requests on this domain, oldest first, with their status and check verdict.

        Examples
        --------
        >>> session.requests                 # a table in a notebook
        >>> session.requests.to_frame()      # the same as a DataFrame
        """
        records = sorted(
            (r for r in self._conn.requests() if r.scientist == self.email),
            key=lambda r: r.submitted_at,
        )
        return RequestList(
            Request(self, r.id, meta=r.meta, mock_result=None, record=r) for r in records
        )

    def dataset_names(self) -> list[str]:
        """Names of the published datasets (also their SQL table names)."""
        return [r.name for r in self._dataset_records()]

    def budget(self, dataset: str) -> Budget:
        """Your differentially private budget on ``dataset``: spent, pending, remaining ε.

        Released DP answers count as spent, waiting ones as pending; denied ones cost
        nothing. The figures match the owner's ε ledger.

        Examples
        --------
        >>> session.budget("patients").remaining
        2.5
        """
        return _budget(dataset, self.dataset(dataset).policy, self._conn.requests())

    @property
    def budgets(self) -> BudgetList:
        """Your ε budget on every dataset that has one, drawn as bars in a notebook."""
        requests = self._conn.requests()  # one listing for every dataset
        return BudgetList(
            _budget(r.name, r.meta["policy"], requests)
            for r in self._dataset_records()
            if r.meta.get("policy", {}).get("epsilon_budget")
        )

    @property
    def domain_name(self) -> str:
        return self._conn.domain_name

    def __repr__(self) -> str:
        return f"<rds.Session {self.email} @ {self._conn.domain_name}>"

    def _repr_html_(self) -> str:
        from rds.scientist.views import session_html

        return session_html(self)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        from rds.widgets.live import live_bundle

        def widget() -> Any:
            from rds.scientist.tracker import SessionTracker

            return SessionTracker(self)

        return live_bundle(self, widget)


def _budget(dataset: str, policy: dict[str, Any], requests: list[RequestRecord]) -> Budget:
    """The ε budget on ``dataset`` from the scientist's own requests (see ``budget``)."""
    from rds.dp.budget import amount, tally

    spent, pending = [], []
    for record in requests:
        meta = record.meta
        if meta.get("kind") != "dp" or meta.get("dataset") != dataset:
            continue
        cost = amount(_number(meta.get("epsilon"))), amount(_number(meta.get("delta")))
        decided = decision(record)
        if decided in ("released", "withdrawn"):  # withdrawn: maybe spent (Request.cancel)
            spent.append(cost)
        elif decided is None:
            pending.append(cost)
    return tally(
        dataset=dataset,
        epsilon_budget=policy.get("epsilon_budget"),
        delta_budget=float(policy.get("delta_budget") or 0.0),
        # Earlier policies had no minimum: the default applies to them too.
        min_epsilon=float(policy.get("min_epsilon") or MIN_EPSILON),
        spent=spent,
        pending=pending,
    )


def _number(value: Any) -> float:
    """A header's ε or δ; anything but a finite number counts as 0, as the owner's side
    refuses such a request as invalid and spends nothing on it."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return 0.0
    return max(float(value), 0.0)
