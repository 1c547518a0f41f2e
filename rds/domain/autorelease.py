"""Releasing requests by the owner's policy, without waiting for a human.

``Policy(auto_release="dp")`` releases differentially private answers that fit the budget.
Nothing exact is ever released without a human: SQL aggregates and Python functions wait
for the owner whatever their checks say, because checks judge one answer at a time and two
exact answers that each pass can be subtracted to give one person's value (differencing),
and because *whether* a result went out at once would itself depend on the private data.

Each decision is an ``approved`` ledger entry whose actor and ``policy`` field name the
policy; a DP request over budget (or under the policy's ``min_epsilon``) is denied by the
``epsilon_budget`` policy, which depends only on the scientist's own requests; one the DP
planner refuses (sent by hand, past the client's own check) by ``dp_planner``, judged on the
public schema alone. A DP run
that fails is left to the owner. The planner admits only queries that cannot fail on any
data (see ``rds.privacy.dp_plan``), so such a failure comes from the machine, not from a
private value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rds.domain.runs import combined_policy
from rds.errors import BudgetExceeded, InvalidInput, QueryRefused

if TYPE_CHECKING:
    from rds.domain.domain import Domain
    from rds.domain.requests import OwnerRequest

_ALLOWED = {"dp": {"dp"}}


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
    except (BudgetExceeded, QueryRefused):
        return "denied"  # run() has denied it, naming the budget or the planner
    except InvalidInput:
        # Not necessarily the query's fault (a syft lookup can fail for a moment under
        # load): leave it to the owner, whose run() shows the reason.
        return None
    if not preview.ok or preview.checks.failed:
        return None
    req._release(
        actor=f"policy:{mode}",
        note=f"released by policy auto_release={mode!r}: differentially private answer "
        "within the ε budget",
        justification=None,
        release_logs=False,
        policy=mode,
    )
    return "released"
