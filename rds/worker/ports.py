"""What the private side needs of a domain and of a request: two protocols.

``rds.worker`` runs requests, applies policies and serves the request loop, but it sits
below the owner's API (``rds.domain``), so it never imports ``Domain`` or
``OwnerRequest``: it names what it uses here, and those classes satisfy it (mypy checks
that where the domain hands itself over). A new caller of the worker (a network node, a
federated round) implements the same protocols.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from rds._syft.client import Connection, RequestRecord
    from rds.checks.report import CheckReport
    from rds.dataset.store import PrivateStore
    from rds.ledger import Ledger
    from rds.sandbox.limits import SandboxLimits, WorkerLimits
    from rds.worker.layout import Layout
    from rds.worker.policy import Policy


class Preview(Protocol):
    """A private run's outcome as auto-release judges it (``rds.RunPreview``)."""

    @property
    def ok(self) -> bool: ...

    @property
    def checks(self) -> CheckReport: ...


class Job(Protocol):
    """A request, from the owner's side (``rds.OwnerRequest``)."""

    @property
    def id(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def datasets(self) -> list[str]: ...

    @property
    def problem(self) -> str | None: ...

    @property
    def code(self) -> str: ...

    @property
    def function(self) -> str | None: ...

    @property
    def sql(self) -> str: ...

    @property
    def epsilon(self) -> float: ...

    @property
    def delta(self) -> float: ...

    @property
    def scientist(self) -> str: ...

    @property
    def status(self) -> str: ...

    def _pick_up(self) -> None: ...

    def _run(self, *, allowance: float | None = None) -> Preview: ...

    def _release(
        self,
        *,
        actor: str,
        note: str | None,
        justification: str | None,
        release_logs: bool,
        policy: str | None,
    ) -> Any: ...

    def _deny(self, reason: str, *, actor: str) -> Any: ...


class Site(Protocol):
    """A domain, as the private side uses it (``rds.Domain``)."""

    @property
    def name(self) -> str: ...

    @property
    def layout(self) -> Layout: ...

    @property
    def owner(self) -> str: ...

    @property
    def store(self) -> PrivateStore: ...

    @property
    def ledger(self) -> Ledger: ...

    @property
    def limits(self) -> SandboxLimits: ...

    @property
    def worker_limits(self) -> WorkerLimits: ...

    @property
    def allow_unsandboxed(self) -> bool: ...

    @property
    def _conn(self) -> Connection: ...

    def dataset_info(self, dataset: str) -> dict[str, Any]: ...

    def policy(self, dataset: str) -> Policy: ...

    def request(self, request_id: str) -> Job: ...

    def note_submission(
        self, record: RequestRecord, *, published: Collection[str] | None = None
    ) -> Job: ...

    def auto_release(self, request_id: str, *, paced: bool = False) -> str | None: ...
