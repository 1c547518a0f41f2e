"""Running one request on the private data, by kind, and checking what it produced.

Each runner returns an ``Outcome``: the run's record (for ``runs/<id>/run.json``), the
payload that would be released (after suppression or noise) and the check report. Nothing
here decides or releases; ``OwnerRequest`` does that.

- ``python``: the scientist's function in the sandbox; its output is checked for leakage
  (private rows, identifying values, row counts, small count cells).
- ``sql``: the query, rewritten to also compute per-cell record counts and largest
  contributions, runs on DuckDB in the sandbox; the statistical-disclosure rules judge each
  cell and, under ``on_fail="suppress"``, blank the failing ones.
- ``dp``: ε is reserved in the ledger (atomically, within budget) before anything runs;
  the exact per-group aggregates (values clamped, contributions capped) come from DuckDB in
  the sandbox, and OpenDP adds the noise.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from rds.checks.report import Check, CheckReport
from rds.dataset.publish import schema_for_dp
from rds.dp import budget
from rds.errors import EpsilonTooSmall, InvalidInput, QueryRefused
from rds.sandbox import runner
from rds.sandbox.codec import decode, encode
from rds.sandbox.result import RunResult
from rds.worker.policy import combined_policy, sandbox_limits

if TYPE_CHECKING:
    from rds.sandbox.limits import SandboxLimits
    from rds.worker.ports import Job, Site

MIB = 1024 * 1024
KINDS = ("python", "sql", "dp")


@dataclass(frozen=True)
class Outcome:
    run: dict[str, Any]
    payload: bytes
    report: CheckReport


def _runnable(req: Job) -> None:
    if req.kind not in KINDS or not req.datasets:
        raise InvalidInput(
            f"This request is invalid, so rds will not run it: {req.problem} "
            "Deny it with a reason (req.deny('...'))."
        )


def run_request(domain: Site, req: Job, *, allowance: float | None = None) -> Outcome:
    """Run ``req`` on the private data according to its kind.

    ``allowance`` (seconds, DP only, set by a served domain's worker): the run is stopped
    within it, and one that fails or is stopped gives the answer for no rows (see ``_dp``).
    """
    _runnable(req)
    missing = sorted(set(req.datasets) - set(domain.store.names()))
    if missing:
        raise InvalidInput(f"The request names datasets that are not published: {missing}.")
    if req.kind == "python":
        return _python(domain, req)
    if req.kind == "sql":
        return _sql(domain, req)
    return _dp(domain, req, allowance=allowance)


def run_mock_in_sandbox(domain: Site, req: Job) -> RunResult:
    """Run ``req`` on the published mocks, in the sandbox like any submitted code.

    SQL and DP requests run as plain SQL (the mock is public, so no noise is needed). The
    mocks are fetched from syft and written to ``runs/<id>/mock/`` for the jail to map.
    """
    from rds.checks.sql import check_query
    from rds.dataset.store import PrivateStore

    _runnable(req)
    records = {r.name: r for r in domain._conn.datasets()}
    missing = sorted(set(req.datasets) - set(records))
    if missing:
        raise InvalidInput(f"The request names datasets that are not published: {missing}.")
    mocks = PrivateStore(domain.layout.runs / req.id / "mock")
    for name in req.datasets:
        mocks.put(name, records[name].mock())
    limits = sandbox_limits(domain, req.datasets)
    if req.kind == "python":
        return runner.run_python(
            req.code,
            req.function or "",
            datasets=[mocks.directory(name) for name in req.datasets],
            limits=limits,
            allow_unsandboxed=domain.allow_unsandboxed,
        )
    checked = check_query(req.sql, datasets=mocks.names())
    return runner.run_sql(
        checked.sql,
        tables={name: mocks.directory(name) for name in checked.datasets},
        limits=limits,
        allow_unsandboxed=domain.allow_unsandboxed,
    )


def _python(domain: Site, req: Job) -> Outcome:
    policy = combined_policy(domain, req.datasets)
    limits = sandbox_limits(domain, req.datasets)
    result = runner.run_python(
        req.code,
        req.function or "",
        datasets=[domain.store.directory(name) for name in req.datasets],
        limits=limits,
        allow_unsandboxed=domain.allow_unsandboxed,
    )
    if not result.ok:
        return _failed(result, "python")
    from rds.checks.leakage import check_output

    payload = result.payload or b""
    value = decode(payload)
    # The output is checked against every dataset the function read, each under the
    # combined (strictest) policy; the report keeps every check.
    checks: list[Check] = []
    for name in req.datasets:
        report = check_output(
            value,
            private=domain.store.read(name),
            identifying=policy.identifying,
            rules=policy.sdc_rules,
            payload_bytes=len(payload),
            output_limit_bytes=limits.output_mb * MIB,
        )
        checks += _labelled(report, name) if len(req.datasets) > 1 else list(report.checks)
    return Outcome(_record(result, "python", payload), payload, CheckReport(tuple(checks)))


def _labelled(report: CheckReport, dataset: str) -> list[Check]:
    return [
        replace(check, explanation=f"{dataset}: {check.explanation}") for check in report.checks
    ]


def _sql(domain: Site, req: Job) -> Outcome:
    from rds.checks.sdc import check_table, plan_cell_stats
    from rds.checks.sql import check_query

    checked = check_query(req.sql, datasets=domain.store.names())
    policy = combined_policy(domain, checked.datasets)
    infos = {name: domain.dataset_info(name) for name in checked.datasets}
    plan = plan_cell_stats(
        checked.sql,
        non_sensitive=policy.non_sensitive,
        columns={name: [c["name"] for c in info["schema"]] for name, info in infos.items()},
        units={
            name: (info.get("privacy_unit") or {}).get("column") for name, info in infos.items()
        },
        categories={
            name: {c["name"]: c["categories"] for c in info["schema"] if c.get("categories")}
            for name, info in infos.items()
        },
    )
    result = runner.run_sql(
        plan.sql,
        tables={name: domain.store.directory(name) for name in checked.datasets},
        limits=sandbox_limits(domain, checked.datasets),
        allow_unsandboxed=domain.allow_unsandboxed,
    )
    if not result.ok:
        return _failed(result, "sql")
    released, report = check_table(
        plan, decode(result.payload or b""), policy.sdc_rules, on_fail=policy.on_fail
    )
    payload = encode(released)
    return Outcome(_record(result, "sql", payload), payload, report)


def _dp(domain: Site, req: Job, *, allowance: float | None = None) -> Outcome:
    """Reserve ε, run the exact aggregates in the sandbox, add the noise.

    With an ``allowance`` (the worker's auto-release), the sandbox gets 3/4 of it as its
    wall-clock limit, and a run that fails for any reason (time, memory, the machine) is
    answered as a table with no rows would be: pure noise, with the same columns, checks and
    privacy figures as any answer. The scientist cannot tell the two apart, so neither the
    run's time nor its failure, both of which depend on the private rows, is a channel; the
    owner's ``run.json`` and ledger say ``fallback``.
    """
    from rds.dp.mechanism import no_rows, plan_dp_query, release_dp

    name = req.datasets[0]
    policy = domain.policy(name)
    if budget.amount(req.epsilon) < budget.amount(policy.min_epsilon):  # before any planning
        raise EpsilonTooSmall(dataset=name, requested=req.epsilon, minimum=policy.min_epsilon)
    # Noise for at most the ε and δ the ledger charges (the decimals the scientist typed).
    epsilon = budget.plan_amount(req.epsilon)
    delta = budget.plan_amount(req.delta) if req.delta else None
    try:
        plan = plan_dp_query(req.sql, dp_schema(domain, name), epsilon=epsilon, delta=delta)
    except InvalidInput as exc:  # decided on the public schema alone, before anything runs
        raise QueryRefused(str(exc)) from None
    budget.reserve(
        domain.ledger,
        actor=domain.owner,
        scientist=req.scientist,
        dataset=name,
        request=req.id,
        epsilon=req.epsilon,
        delta=req.delta or 0.0,
        epsilon_budget=policy.epsilon_budget,
        delta_budget=policy.delta_budget,
        min_epsilon=policy.min_epsilon,
    )
    limits = _dp_limits(sandbox_limits(domain, [name]), plan)
    if allowance is not None:
        limits = replace(limits, wall_seconds=min(limits.wall_seconds, 0.75 * allowance))
    result = runner.run_sql(
        plan.sql,
        tables={name: domain.store.directory(name)},
        limits=limits,
        allow_unsandboxed=domain.allow_unsandboxed,
    )
    fallback: dict[str, str | None] | None = None
    if not result.ok:
        # A domain failure comes before any of the job ran, so it says nothing about the
        # data: it waits for the owner to mend the domain instead of releasing a fallback.
        if allowance is None or result.fault == "domain":
            return _failed(result, "dp")
        fallback = {"error_type": result.error_type, "error": result.error}
    else:
        try:
            release = release_dp(plan, decode(result.payload or b""))
        except InvalidInput as exc:  # the exact frame is not what the plan says
            if allowance is None:
                raise
            fallback = {"error_type": "InvalidInput", "error": str(exc)}
    if fallback is not None:
        release = release_dp(plan, no_rows(plan))
    info = release.info()
    scales = ", ".join(f"{k} {v:.3g}" for k, v in release.noise_scale.items())
    check = Check(
        rule="differential_privacy",
        verdict="pass",
        explanation=(
            f"Answered with differential privacy: ε={req.epsilon:g} spent, "
            f"{release.mechanism} noise (scale {scales}); intervals are 95%."
        ),
        numbers={"epsilon_accounted": release.epsilon, "delta": release.delta},
        public=True,  # the request's ε and noise scales from published bounds: no data
    )
    payload = encode(release.frame)
    run = _record(result, "dp", payload, privacy=info)
    if fallback is not None:  # released as if the run had succeeded: see the docstring
        run = {**run, "ok": True, "fallback": fallback}
    return Outcome(run, payload, CheckReport((check,)))


def _dp_limits(limits: SandboxLimits, plan: Any) -> SandboxLimits:
    """``limits`` with room for the largest exact frame the plan can return.

    The exact aggregates have one row per group *present* in the rows the WHERE keeps, so
    their size depends on the data; an output limit the frame could cross would fail the
    run exactly then, and a failed DP run waits while a clean one is released: a noiseless
    oracle on how many groups a condition keeps. The bound comes from the plan alone (every
    declared cell, its keys' longest published values, one integer per aggregate).
    """
    key_bytes = sum(max((len(str(v)) for v in domain), default=0) + 16 for domain in plan.domains)
    row = key_bytes + 16 * len(plan.aggregates) + 64
    needed = math.ceil(math.prod(len(d) for d in plan.domains) * row / MIB) + 1
    return replace(limits, output_mb=max(limits.output_mb, needed))


def dp_schema(domain: Site, dataset: str) -> Any:
    """The contribution bounds the owner declared for ``dataset``, as the DP planner takes them."""
    info = domain.dataset_info(dataset)
    return schema_for_dp(dataset, info, needs_cap=bool(info.get("needs_cap")))


def _record(
    result: RunResult, kind: str, payload: bytes, *, privacy: dict[str, Any] | None = None
) -> dict[str, Any]:
    # Everything the sandbox reported except its payload, which is stored beside it.
    return {
        **result.record(),
        "kind": kind,
        "sha256": hashlib.sha256(payload).hexdigest(),
        "privacy": privacy,
    }


def _failed(result: RunResult, kind: str) -> Outcome:
    if result.fault == "domain":
        check = Check(
            rule="run",
            verdict="fail",
            explanation="The sandbox did not start, so nothing of the request ran: the "
            "domain's failure, which cannot be released. Mend the domain (see the run's "
            "stderr) and run the request again, or deny it.",
            numbers={"error_type": result.error_type},
        )
        return Outcome(_record(result, kind, b""), b"", CheckReport((check,)))
    check = Check(
        rule="run",
        verdict="warn",
        explanation="The run failed; only the error's type would be released.",
        numbers={"error_type": result.error_type},
    )
    return Outcome(_record(result, kind, b""), b"", CheckReport((check,)))
