"""The owner's listing of requests: ``domain.requests``, with filters.

A ``RequestList`` is a plain list of ``OwnerRequest`` (oldest first), read in one batched
listing; its filters look at what that listing read (``listed_status``), without more
round trips, so filtering a thousand requests costs nothing on the domain.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING

from rds.errors import InvalidInput
from rds.request.status import FINAL

if TYPE_CHECKING:
    from rds.domain.requests import OwnerRequest

#: The owner's status words (``OwnerRequest.listed_status``); "waiting" is every one that
#: still needs a decision (not released, denied or withdrawn).
STATUSES = frozenset({"submitted", "ran", "invalid", "released", "denied", "withdrawn"})
WAITING = "waiting"


class RequestList(list["OwnerRequest"]):
    """Requests, oldest first, as the owner lists them.

    Examples
    --------
    >>> domain.requests.waiting                      # everything that needs a decision
    >>> domain.requests.where(status="submitted", scientist="ada@uni.example.org")
    >>> domain.requests.where(dataset="patients", kind=["sql", "dp"])
    """

    @property
    def waiting(self) -> RequestList:
        """The requests that still need a decision (not released, denied or withdrawn)."""
        return self.where(status=WAITING)

    def where(
        self,
        *,
        status: str | Collection[str] | None = None,
        scientist: str | Collection[str] | None = None,
        dataset: str | Collection[str] | None = None,
        kind: str | Collection[str] | None = None,
    ) -> RequestList:
        """The requests matching every filter given (each: one value or several).

        ``status``: ``"submitted"``, ``"ran"``, ``"invalid"``, ``"released"``,
        ``"denied"``, ``"withdrawn"``, or ``"waiting"`` for all that need a decision;
        ``scientist``: an email; ``dataset``: a dataset the request reads; ``kind``:
        ``"python"``, ``"sql"``, ``"dp"`` or ``"invalid"``.
        """
        statuses = _values("status", status)
        if statuses is not None and (unknown := statuses - STATUSES - {WAITING}):
            raise InvalidInput(
                f"Unknown status {sorted(unknown)}; use one of {sorted(STATUSES | {WAITING})}."
            )
        scientists = _values("scientist", scientist)
        datasets = _values("dataset", dataset)
        kinds = _values("kind", kind)

        def keep(req: OwnerRequest) -> bool:
            if statuses is not None:
                listed = req.listed_status
                waiting = WAITING in statuses and listed not in FINAL
                if not waiting and listed not in statuses:
                    return False
            if scientists is not None and req.scientist not in scientists:
                return False
            if datasets is not None and not datasets & set(req.datasets):
                return False
            return kinds is None or req.kind in kinds

        return RequestList(r for r in self if keep(r))

    def deny(self, reason: str) -> list[str]:
        """Deny each request with ``reason``; return the ids denied (one decided meanwhile,
        by a served domain's worker, say, is left as it is)."""
        from rds.errors import RequestStateError

        denied = []
        for req in self:
            try:
                req.deny(reason)
            except RequestStateError:
                continue
            denied.append(req.id)
        return denied


def _values(name: str, given: str | Iterable[str] | None) -> frozenset[str] | None:
    if given is None:
        return None
    values = frozenset([given] if isinstance(given, str) else given)
    if not values or not all(isinstance(v, str) for v in values):
        raise InvalidInput(f"where({name}=...) takes a string or a list of strings.")
    return values
