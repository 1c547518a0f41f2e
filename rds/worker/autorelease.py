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
public schema alone. The planner admits only queries that cannot fail on any data (see
``rds.dp.plan``); a run can still fail or be slow because of the rows it reads (its
memory, its time), so a served domain's worker (``paced``) releases every DP answer at a
fixed time after the pickup and answers a failed run as a table with no rows would be. A DP
run that fails when not paced (embedded) is left to the owner.
"""

from __future__ import annotations

import time
import warnings
from typing import TYPE_CHECKING

from rds.errors import BudgetExceeded, InvalidInput, QueryRefused
from rds.worker.policy import combined_policy

if TYPE_CHECKING:
    from rds.worker.ports import Job, Site

_ALLOWED = {"dp": {"dp"}}


def auto_release(domain: Site, req: Job, *, paced: bool = False) -> str | None:
    """Apply the policy to a waiting request; return ``"released"``, ``"denied"`` or ``None``.

    ``paced`` (a served domain's worker): a DP answer goes out exactly its allowance after
    the pickup (``WorkerLimits.dp_allowance`` of the dataset's published rows), whatever the
    run did; see ``rds.worker.runs._dp``.

    Examples
    --------
    >>> auto_release(domain, domain.requests[-1])
    'released'
    """
    if req.status != "submitted":
        return None
    picked_up = time.monotonic()
    req._pick_up()
    if req.kind not in _ALLOWED or not req.datasets:
        return None
    missing = set(req.datasets) - set(domain.store.names())
    if missing:
        return None
    mode = combined_policy(domain, req.datasets).auto_release
    if mode not in _ALLOWED[req.kind]:
        return None
    allowance = None
    if paced:
        rows = int(domain.dataset_info(req.datasets[0]).get("rows") or 0)
        allowance = domain.worker_limits.dp_allowance(rows)
    try:
        preview = req._run(allowance=allowance)
    except (BudgetExceeded, QueryRefused):
        return "denied"  # run() has denied it, naming the budget or the planner
    except InvalidInput:
        # Not necessarily the query's fault (a syft lookup can fail for a moment under
        # load): leave it to the owner, whose run() shows the reason.
        return None
    if not preview.ok or preview.checks.failed:
        return None
    if allowance is not None:
        late = time.monotonic() - picked_up - allowance
        if late > 0:  # the answer's own noise and bookkeeping overran: the owner is told
            warnings.warn(
                f"DP request {req.id}: released {late:.2f} s after its allowance.",
                RuntimeWarning,
                stacklevel=2,
            )
        time.sleep(max(0.0, -late))
    req._release(
        actor=f"policy:{mode}",
        note=f"released by policy auto_release={mode!r}: differentially private answer "
        "within the ε budget",
        justification=None,
        release_logs=False,
        policy=mode,
    )
    return "released"
