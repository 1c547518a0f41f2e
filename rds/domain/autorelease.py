"""Releasing requests by the owner's policy, without waiting for a human.

``Policy(auto_release="dp")`` releases differentially private answers that fit the budget;
``auto_release="checked-sql"`` also releases SQL aggregates none of whose disclosure checks
fail (cells blanked under ``on_fail="suppress"`` count as handled). Python functions always
wait for a human. Each decision is an ``approved`` ledger entry whose actor and ``policy``
field name the policy; a DP request over budget is denied by the ``epsilon_budget`` policy.
Anything the policy cannot settle — a failed run, a failing check, a query the domain
refuses — is left to the owner.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rds.domain.runs import combined_policy
from rds.errors import BudgetExceeded, InvalidInput

if TYPE_CHECKING:
    from rds.domain.domain import Domain
    from rds.domain.requests import OwnerRequest

_ALLOWED = {"dp": {"dp", "checked-sql"}, "sql": {"checked-sql"}}


def auto_release(domain: Domain, req: OwnerRequest) -> str | None:
    """Apply the policy to a waiting request; return ``"released"``, ``"denied"`` or ``None``.

    Examples
    --------
    >>> auto_release(domain, domain.requests[-1])
    'released'
    """
    if req.status != "submitted":
        return None
    req._pick_up()
    if req.kind not in _ALLOWED or not req.datasets:
        return None
    missing = set(req.datasets) - set(domain.store.names())
    if missing:
        return None
    mode = combined_policy(domain, req.datasets).auto_release
    if mode not in _ALLOWED[req.kind]:
        return None
    try:
        preview = req.run()
    except BudgetExceeded:
        return "denied"  # run() has denied it, naming the budget policy
    except InvalidInput:
        # Not necessarily the query's fault (a syft lookup can fail for a moment under
        # load): leave it to the owner, whose run() shows the reason.
        return None
    if not preview.ok or preview.checks.failed:
        return None
    label = {
        "dp": "differentially private answer within the ε budget",
        "sql": "SQL aggregate that passed every disclosure check",
    }[req.kind]
    req._release(
        actor=f"policy:{mode}",
        note=f"released by policy auto_release={mode!r}: {label}",
        justification=None,
        release_logs=False,
        policy=mode,
    )
    return "released"
