"""A request's status in rds's words, for both roles: one mapping from syft's record.

syft's record says only whether the owner decided (``approved``, ``denied``) or not
(``pending``; ``rds._syft`` reads that from syft's enum), and whether the scientist withdrew
it undecided (``withdrawn``). ``decision`` turns that into rds's words; each role then names
the steps before it:

- the scientist sees ``STAGES`` (``scientist_status``): nothing between "awaiting review"
  and the decision, since a private run's start, length or failure would be a channel
  out of the private data;
- the owner also sees "ran" (a private preview is on disk) and "invalid" (a submission
  rds cannot read), see ``rds.domain.requests.OwnerRequest.listed_status``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rds._syft.client import RequestRecord

#: What a scientist sees of a request, in order (a denial can end it at any step).
STAGES = ("submitted", "awaiting review", "released")
#: Statuses after which nothing changes ("withdrawn": the scientist took it back, undecided).
FINAL = ("released", "denied", "withdrawn")
#: What each kind of request is called on the page.
KIND_LABELS = {"python": "function", "sql": "SQL", "dp": "DP SQL", "invalid": "invalid"}


def decision(record: RequestRecord) -> str | None:
    """``"released"`` or ``"denied"`` once the owner (or a policy) decided, ``"withdrawn"``
    once the scientist took it back before that (``Request.cancel``), else None."""
    if record.status == "pending" and record.withdrawn:
        return "withdrawn"
    return {"approved": "released", "denied": "denied"}.get(record.status)


def scientist_status(record: RequestRecord) -> str:
    """The request's step as the scientist may see it (see ``STAGES``)."""
    return decision(record) or ("awaiting review" if record.stage == "review" else "submitted")
