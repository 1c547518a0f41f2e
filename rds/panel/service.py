"""What the Remote Data panel shows, as JSON-ready dicts, from the same objects the kernel uses.

``RemoteDataService`` holds one logged-in ``Session`` per scientist profile and caches
listings for a few seconds, so a panel that polls does not hammer a domain. Every method is
blocking: the HTTP handlers run them off the server's event loop. Nothing here imports
tornado (the handlers in ``rds.panel.handlers`` are the only web code).

Examples
--------
>>> service = RemoteDataService()
>>> [p["name"] for p in service.profiles()]
['hospital']
>>> service.datasets("hospital")[0]["name"]
'patients'
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from rds.errors import DomainUnreachable, InvalidInput

if TYPE_CHECKING:
    from rds.domain.domain import Domain
    from rds.profiles import Profile, ProfileStore
    from rds.scientist.dataset import RemoteDataset
    from rds.scientist.session import Session

T = TypeVar("T")
C = TypeVar("C")  # a held connection: a Session or a Domain

#: Seconds a listing is served from cache, and a status probe may take.
LISTING_TTL = 5.0
PROBE_TIMEOUT = 3.0
MAX_MOCK_ROWS = 200


class RemoteDataService:
    """The panel's view of the profiles file and the domains it names."""

    def __init__(self, store: ProfileStore | None = None, *, ttl: float = LISTING_TTL) -> None:
        from rds.profiles import ProfileStore

        self.store = store or ProfileStore()
        self.ttl = ttl
        self._lock = threading.Lock()
        self._sessions: dict[str, tuple[Profile, Session]] = {}
        self._domains: dict[str, tuple[Profile, Domain]] = {}
        self._cache: dict[tuple[str, ...], tuple[float, Any]] = {}
        # One login (or attachment) per profile at a time: calls that arrive while one is
        # under way wait for it rather than each log in again and pile up on the domain.
        self._connecting: dict[str, threading.Lock] = {}

    def warm_up(self) -> threading.Thread:
        """Import syft and rds's client modules in the background (about 5-10 s).

        Called when Jupyter starts, so the panel's first call to a domain pays for its
        login only, not for the imports as well.
        """

        def load() -> None:
            import rds._syft
            import rds.domain.domain
            import rds.scientist.session

            rds._syft.preload()  # what a first login spends most of its time on

        thread = threading.Thread(target=load, name="rds-warm-up", daemon=True)
        thread.start()
        return thread

    # -- profiles ------------------------------------------------------------------
    def profiles(self) -> list[dict[str, Any]]:
        """Every profile (no passwords) with its status: reachable, version, latency."""
        profiles = self.store.all()
        if not profiles:
            return []
        with ThreadPoolExecutor(max_workers=min(8, len(profiles))) as pool:
            statuses = list(pool.map(_status, profiles))
        return [{**p.public(), "status": s} for p, s in zip(profiles, statuses, strict=True)]

    def add_profile(self, name: str, url: str, email: str, password: str) -> dict[str, Any]:
        """Log in to ``url``; only if that works, save the profile and return it."""
        import rds

        if not all(isinstance(v, str) and v for v in (name, url, email, password)):
            raise InvalidInput("A profile needs a name, the domain's URL, an email and a password.")
        from rds.profiles import Profile

        profile = Profile(
            name, kind="scientist", url=url.rstrip("/"), email=email, password=password
        )
        session = rds.connect(profile.url, email=email, password=password)
        self.store.save(profile)
        with self._lock:
            self._sessions[name] = (profile, session)
            self._forget(name)
        return {**profile.public(), "status": _status(profile)}

    def remove_profile(self, name: str) -> None:
        self.store.remove(name)
        with self._lock:
            self._sessions.pop(name, None)
            self._domains.pop(name, None)
            self._forget(name)

    # -- a scientist's view of a domain ---------------------------------------------
    def datasets(self, name: str) -> list[dict[str, Any]]:
        """The datasets of profile ``name``'s domain, with ε remaining for this user."""

        def load() -> list[dict[str, Any]]:
            session = self._session(name)
            budgets = {b.dataset: b for b in session.budgets}
            return [_dataset(ds, budgets.get(ds.name)) for ds in session.datasets]

        return self._cached((name, "datasets"), load)

    def mock(self, name: str, dataset: str, rows: int = 20) -> dict[str, Any]:
        """The first ``rows`` rows of a dataset's mock (the scientist's public stand-in)."""
        if not 1 <= rows <= MAX_MOCK_ROWS:
            raise InvalidInput(f"rows is between 1 and {MAX_MOCK_ROWS}, not {rows}.")

        def load() -> dict[str, Any]:
            frame = self._session(name).dataset(dataset).mock
            head = frame.head(rows)
            return {
                "columns": [str(c) for c in head.columns],
                "rows": json.loads(head.to_json(orient="values", date_format="iso")),
                "total_rows": len(frame),
            }

        return self._cached((name, "mock", dataset, str(rows)), load)

    def requests(self, name: str) -> list[dict[str, Any]]:
        """This user's requests on profile ``name``'s domain, oldest first."""

        def load() -> list[dict[str, Any]]:
            out = []
            for req in self._session(name).requests:
                summary = req.summary()
                out.append({**summary, "submitted_at": summary["submitted_at"].isoformat()})
            return out

        # Statuses are what the panel polls for: a short cache, so news is not held back.
        return self._cached((name, "requests"), load, ttl=min(self.ttl, 2.0))

    # -- an owner's view -------------------------------------------------------------
    def pending(self, name: str) -> int:
        """How many requests wait for the owner of profile ``name``'s (served) domain."""

        def load() -> int:
            waiting = ("submitted", "invalid", "ran")
            return sum(r.listed_status in waiting for r in self._domain(name).requests)

        return self._cached((name, "pending"), load, ttl=min(self.ttl, 2.0))

    # -- plumbing --------------------------------------------------------------------
    def _session(self, name: str) -> Session:
        import rds

        profile = self.store.get(name)
        if profile.kind != "scientist":
            raise InvalidInput(f"Profile {name!r} is an owner's domain, not a scientist login.")
        return self._held(
            self._sessions,
            profile,
            lambda: rds.connect(
                profile.url,
                email=profile.email,
                password=profile.password,
                verify=profile.verify,
            ),
        )

    def _domain(self, name: str) -> Domain:
        from rds.domain.domain import Domain, running_url
        from rds.worker.layout import Layout

        profile = self.store.get(name)
        if profile.kind != "owner" or profile.path is None:
            raise InvalidInput(f"Profile {name!r} is a scientist login, not an owned domain.")
        path = profile.path

        def attach() -> Domain:
            # Opening an unserved domain here would hold its directory for the life of
            # Jupyter and lock its owner out of it; only attach to a running server.
            if running_url(Layout(Path(path))) is None:
                raise DomainUnreachable(
                    f"Domain {path} is not being served; start it with "
                    f"`rds domain start --path {path}`."
                )
            return Domain.open(path)

        return self._held(self._domains, profile, attach)

    def _held(
        self, held: dict[str, tuple[Profile, C]], profile: Profile, connect: Callable[[], C]
    ) -> C:
        """The login (or attachment) kept for ``profile``, made with ``connect`` if there is
        none for the profile as it now reads. One per profile at a time: calls that arrive
        while one is under way wait for it rather than each log in again."""
        with self._lock:
            lock = self._connecting.setdefault(profile.name, threading.Lock())
        with lock:
            with self._lock:
                kept = held.get(profile.name)
            if kept is not None and kept[0] == profile:
                return kept[1]
            made = connect()
            with self._lock:
                held[profile.name] = (profile, made)
            return made

    def _cached(self, key: tuple[str, ...], load: Callable[[], T], ttl: float | None = None) -> T:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and now - hit[0] < (self.ttl if ttl is None else ttl):
            value: T = hit[1]
            return value
        try:
            value = load()
        except Exception:
            # A domain that restarted or went away: log in afresh on the next call.
            with self._lock:
                self._sessions.pop(key[0], None)
                self._domains.pop(key[0], None)
            raise
        with self._lock:
            self._cache[key] = (time.monotonic(), value)
        return value

    def _forget(self, name: str) -> None:
        for key in [k for k in self._cache if k[0] == name]:
            del self._cache[key]


def _dataset(ds: RemoteDataset, budget: Any) -> dict[str, Any]:
    schema = [
        {
            "name": str(row["name"]),
            "dtype": str(row["dtype"]),
            "nullable": bool(row["nullable"]),
            "bounds": _json_value(row["bounds"]),
            "categories": _json_value(row["categories"]),
        }
        for row in ds.schema.to_dict(orient="records")
    ]
    epsilon = None
    if budget is not None and budget.epsilon_budget:
        epsilon = {
            "budget": budget.epsilon_budget,
            "spent": budget.spent,
            "pending": budget.pending,
            "remaining": budget.remaining,
        }
    return {
        "name": ds.name,
        "description": ds.description,
        "rows": ds.rows,
        "schema": schema,
        "policy": ds.policy,
        "contact": ds.contact,
        "epsilon": epsilon,
    }


def _json_value(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, tuple | list):
        return list(value)
    return value


def _status(profile: Profile) -> dict[str, Any]:
    """Whether the profile's domain answers, its syft version and the round trip in ms."""
    url = profile.url
    if profile.kind == "owner":
        from rds.domain.domain import running_url
        from rds.worker.layout import Layout

        try:
            url = running_url(Layout(Path(str(profile.path))))
        except OSError as exc:
            return _down(f"cannot read {profile.path}: {exc}")
        if url is None:
            return _down("not being served (rds domain start)")
    from rds._syft.probe import probe

    start = time.perf_counter()
    try:
        body = probe(str(url), timeout=PROBE_TIMEOUT)
    except DomainUnreachable as exc:
        return _down(str(exc))
    latency = (time.perf_counter() - start) * 1000
    version = body.get("syft_version")
    return {"reachable": True, "version": version, "latency_ms": round(latency, 1), "error": None}


def _down(error: str) -> dict[str, Any]:
    return {"reachable": False, "version": None, "latency_ms": None, "error": error}
