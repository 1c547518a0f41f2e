"""A served domain's worker: the one process that reads private data and writes the ledger.

``rds domain start`` runs it beside the confined syft server, as the owner's user; it logs
in to that server over loopback HTTP as the domain's admin. Every second it lists the
requests; each new one is recorded in the ledger and put in a ``FairQueue``, from which a
pool of ``WorkerLimits.pool_size`` threads takes requests and applies the datasets'
``auto_release`` policies (``Domain.auto_release``: run in the sandbox, check, release or
leave for the owner). A request that fails for another reason is tried again at the next
listing, three times in all.

Fairness: the queue holds one first-in-first-out line per scientist and always serves the
scientist whose last run started longest ago (one who never ran goes first). A scientist
who sends many heavy requests therefore delays a newcomer by at most the run already in
progress on each pool thread, one wall-clock limit at most; and nobody waits for more than
one run of each other scientist with work waiting, so nobody starves.

Each scientist may have ``WorkerLimits.max_waiting_per_scientist`` undecided requests;
beyond that the newest are denied at once, by the ``queue_limit`` policy, with a reason
that says why.

Run it as ``python -m rds.domain.worker_main DIR --url URL``.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from rds.errors import DomainUnreachable, RDSError
from rds.sandbox import _warm
from rds.sandbox.limits import WorkerLimits

if TYPE_CHECKING:
    from rds._syft.client import Connection, RequestRecord, RequestStub
    from rds.worker.layout import Layout
    from rds.worker.ports import Site

POLL_SECONDS = 1.0
ATTEMPTS = 3
LOGIN_SECONDS = 60.0
STOP_SECONDS = 5.0
QUEUE_LIMIT_ACTOR = "policy:queue_limit"
WITHDRAWALS_EVERY = 2  # polls between looks for withdrawn requests holding ε

T = TypeVar("T")


class FairQueue(Generic[T]):
    """Items waiting per scientist; ``get`` serves the scientist served least recently.

    Examples
    --------
    >>> q = FairQueue[str]()
    >>> for item in ("x1", "x2", "x3"):
    ...     q.put("x@lab", item)
    >>> q.put("y@lab", "y1")
    >>> [q.get()[1] for _ in range(4)]
    ['x1', 'y1', 'x2', 'x3']
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        # Scientists with waiting items, in the order they started waiting (ties: first).
        self._waiting: dict[str, deque[T]] = {}
        self._last_turn: dict[str, int] = {}  # scientist -> the turn they were last served
        self._turns = 0
        self._closed = False

    def put(self, scientist: str, item: T) -> None:
        """Add ``item`` at the end of ``scientist``'s line."""
        with self._cond:
            self._waiting.setdefault(scientist, deque()).append(item)
            self._cond.notify()

    def get(self) -> tuple[str, T] | None:
        """The next ``(scientist, item)``, waiting for one; ``None`` once closed."""
        with self._cond:
            while not self._closed and not self._waiting:
                self._cond.wait()
            if self._closed:
                return None
            scientist = min(self._waiting, key=lambda s: self._last_turn.get(s, -1))
            line = self._waiting[scientist]
            item = line.popleft()
            if not line:
                del self._waiting[scientist]
            self._turns += 1
            self._last_turn[scientist] = self._turns
            return scientist, item

    def close(self) -> None:
        """Wake every ``get``; they return ``None`` from now on."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return sum(len(line) for line in self._waiting.values())


class Worker:
    """The request loop of a served domain: list, record, cap, queue fairly, auto-release.

    Parameters
    ----------
    domain
        The domain, attached to its server as admin (``Domain(layout, conn=...)``).
    limits
        Pool size and per-scientist cap; the domain's ``worker_limits`` by default.

    Examples
    --------
    >>> stopping = threading.Event()
    >>> Worker(domain).run(stopping)  # until stopping.set()
    """

    def __init__(self, domain: Site, *, limits: WorkerLimits | None = None) -> None:
        self.domain = domain
        self.limits = limits or domain.worker_limits
        self.queue: FairQueue[str] = FairQueue()
        self._lock = threading.Lock()
        self._seen: set[str] = set()  # queued, running, decided, or given up on
        self._attempts: dict[str, int] = {}
        self._threads: list[threading.Thread] = []
        self._polls = 0

    def start(self) -> None:
        """Start the pool's threads."""
        for number in range(self.limits.pool_size):
            thread = threading.Thread(target=self._serve, name=f"rds-worker-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = STOP_SECONDS) -> None:
        """Take no more requests; give the runs in progress ``timeout`` seconds to end."""
        self.queue.close()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def run(self, stopping: threading.Event, *, poll_seconds: float = POLL_SECONDS) -> None:
        """Start the pool and list requests every ``poll_seconds`` until ``stopping`` is set."""
        self.start()
        failing = False
        try:
            while not stopping.is_set():
                try:
                    self.poll()
                except Exception as exc:  # keep serving (the server may be restarting)
                    if not failing:
                        _log(f"listing requests failed (trying again every second): {exc}")
                    failing = True
                else:
                    if failing:
                        _log("listing requests works again")
                    failing = False
                stopping.wait(poll_seconds)
        finally:
            self.stop()

    def poll(self) -> None:
        """List the requests once: record the new, deny beyond the cap, queue the rest.

        One round trip lists who sent what and when; only requests not seen before are read
        in full (syft resolves a request's code and status with round trips of their own, so
        reading all of them every second would load the server as history grows).
        """
        conn = self.domain._conn
        stubs = conn.request_stubs()
        self._polls += 1
        if self._polls % WITHDRAWALS_EVERY == 1:
            self._settle_withdrawals()
        with self._lock:
            unseen = [s.id for s in stubs if s.id not in self._seen]
        if not unseen:
            return
        new = self._record([conn.request(request_id) for request_id in unseen])
        if not new:
            return
        decided = {
            e.data.get("request")
            for e in self.domain.ledger.entries()
            if e.event in ("approved", "denied")
        }
        pending = [s for s in stubs if s.id not in decided]
        fresh = {r.id for r in new if r.status == "pending"}
        over = self._over_the_limit(pending, fresh)
        for record in sorted(new, key=lambda r: r.submitted_at):
            if record.id in over:
                self._deny_over_limit(record, over[record.id])
                continue
            with self._lock:
                self._seen.add(record.id)
            if record.id in fresh:  # a decided one needs nothing more
                self.queue.put(record.scientist, record.id)

    def _settle_withdrawals(self) -> None:
        """Settle the ε of requests the scientist withdrew with a reservation still open.

        Only open reservations are read again (a withdrawal changes no listing): reading a
        withdrawn request's status records the withdrawal and settles it
        (``OwnerRequest._note_withdrawal``). A withdrawn request still in the queue is
        recorded when its turn comes, and does not run.
        """
        from rds.dp.budget import open_reservations

        for request_id in open_reservations(self.domain.ledger.entries()):
            try:
                status = self.domain.request(request_id).status
            except Exception as exc:  # the server is away: the next round tries again
                _log(f"request {request_id[:8]}: could not read it for a withdrawal: {exc}")
                continue
            if status == "withdrawn":
                _log(f"request {request_id[:8]}: withdrawn by the scientist, its ε settled")

    def _record(self, records: list[RequestRecord]) -> list[RequestRecord]:
        """Record each submission in the ledger once (one read of the ledger for all).

        Returns the records now in the ledger; one that could not be recorded is tried again
        at the next listing, ``ATTEMPTS`` times in all.
        """
        if not records:
            return []
        recorded = {e.data.get("once") for e in self.domain.ledger.events(event="submitted")}
        published = self.domain.store.names()
        done = []
        for record in records:
            if record.id not in recorded:
                try:
                    self.domain.note_submission(record, published=published)
                except Exception as exc:
                    self._failed(record.id, f"could not record it: {exc}")
                    continue
            done.append(record)
        return done

    def _failed(self, request_id: str, why: str) -> None:
        """Count a failed attempt: the next listing tries again, until ``ATTEMPTS``."""
        with self._lock:
            tries = self._attempts[request_id] = self._attempts.get(request_id, 0) + 1
            if tries < ATTEMPTS:
                self._seen.discard(request_id)
            else:
                self._seen.add(request_id)  # given up on: left for the owner
                self._attempts.pop(request_id)
        _log(f"request {request_id[:8]} (attempt {tries} of {ATTEMPTS}): {why}")

    def _over_the_limit(self, pending: list[RequestStub], fresh: set[str]) -> dict[str, int]:
        """The new requests beyond each scientist's cap (newest first), with that count."""
        cap = self.limits.max_waiting_per_scientist
        by_scientist: dict[str, list[RequestStub]] = {}
        for record in pending:
            by_scientist.setdefault(record.scientist, []).append(record)
        over: dict[str, int] = {}
        for mine in by_scientist.values():
            if len(mine) <= cap:
                continue
            newest_first = sorted(mine, key=lambda r: r.submitted_at, reverse=True)
            # Only requests not yet queued are denied: one already running stays.
            extra = [r for r in newest_first if r.id in fresh][: len(mine) - cap]
            over.update({r.id: len(mine) for r in extra})
        return over

    def _deny_over_limit(self, record: RequestRecord, waiting: int) -> None:
        cap = self.limits.max_waiting_per_scientist
        reason = (
            f"You have {waiting} requests waiting for a decision; this domain accepts at most "
            f"{cap} at once. Wait for decisions, or ask the owner."
        )
        try:
            self.domain.request(record.id)._deny(reason, actor=QUEUE_LIMIT_ACTOR)
        except Exception as exc:  # decided meanwhile, or the server is away: next listing
            self._failed(record.id, f"could not deny it over the queue limit: {exc}")
            return
        with self._lock:
            self._seen.add(record.id)
        _log(f"request {record.id[:8]} from {record.scientist}: denied (queue limit {cap})")

    def _serve(self) -> None:
        while (taken := self.queue.get()) is not None:
            scientist, request_id = taken
            try:
                outcome = self.domain.auto_release(request_id, paced=True)
            except Exception as exc:  # a transient failure is tried again, a few times
                self._failed(request_id, str(exc))
                continue
            with self._lock:
                self._attempts.pop(request_id, None)
            if outcome is not None:
                _log(f"request {request_id[:8]} from {scientist}: {outcome} by policy")


def _log(message: str) -> None:
    print(f"rds worker: {message}", file=sys.stderr, flush=True)


def _die_with(parent: int) -> None:
    """Get SIGTERM when ``parent`` (the supervisor) dies; exit now if it already has."""
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:
        sys.exit("rds worker: the supervisor is gone")


def _login(url: str, admin: dict[str, Any], stopping: threading.Event) -> Any:
    """Log in as admin, waiting (up to ``LOGIN_SECONDS``) for a server that is restarting."""
    from rds._syft.client import Connection

    deadline = time.monotonic() + LOGIN_SECONDS
    while True:
        try:
            return Connection.login(url, email=admin["email"], password=admin["password"])
        except DomainUnreachable:
            if time.monotonic() > deadline or stopping.wait(1.0):
                raise


def main(argv: list[str] | None, *, open_domain: Callable[[Layout, Connection], Site]) -> None:
    """The worker process (``python -m rds.domain.worker_main``, which passes how to open
    the ``Domain`` the worker serves)."""
    from rds.worker.layout import Layout

    parser = argparse.ArgumentParser(prog="python -m rds.domain.worker_main")
    parser.add_argument("path", type=Path)
    parser.add_argument("--url", required=True, help="the domain's server, over loopback")
    parser.add_argument("--parent", type=int, default=0, help="exit when this pid exits")
    parser.add_argument("--ready-fd", type=int, default=-1, help="write a line here when ready")
    args = parser.parse_args(argv)
    if args.parent:
        _die_with(args.parent)
    stopping = threading.Event()
    layout = Layout(args.path.resolve())
    admin = json.loads(layout.admin.read_text())
    try:
        conn = _login(args.url, admin, stopping)
    except RDSError as exc:
        sys.exit(f"rds worker: could not log in to {args.url}: {exc}")
    # No lock: the supervisor holds the domain directory's lock for all of its processes.
    domain = open_domain(layout, conn)
    # Until here SIGTERM simply ends the process (nothing to finish, even mid-import).
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    limits = domain.worker_limits
    _log(f"serving {domain.name!r} with {limits.pool_size} run(s) at once")
    if args.ready_fd >= 0:
        os.write(args.ready_fd, b"ready\n")
        os.close(args.ready_fd)
    Worker(domain, limits=limits).run(stopping)
    _warm.POOL.shutdown()  # kill and remove the jails waiting for a run
    _log("stopped")
    # Tearing down syft's and torch's modules takes seconds and there is nothing to save.
    os._exit(0)
