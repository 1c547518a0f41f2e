"""A request as the data owner sees it: run it in the sandbox, check it, approve or deny."""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from rds.dp import budget
from rds.errors import (
    BudgetExceeded,
    InvalidInput,
    QueryRefused,
    RequestStateError,
    SandboxUnavailable,
)
from rds.request.release import Release
from rds.request.status import decision
from rds.sandbox.codec import decode
from rds.sandbox.result import RunResult
from rds.worker.layout import write_private

if TYPE_CHECKING:
    from rds._syft.client import RequestRecord
    from rds.checks.report import CheckReport
    from rds.domain.domain import Domain


@dataclass(frozen=True)
class RunPreview:
    """The owner-only outcome of a run. Nothing here has been released.

    ``run`` is the sandbox's own record (``ok``, ``stdout``, ``stderr``, ``error``,
    ``error_type``, ``duration`` and ``sandboxed`` read through to it); ``result`` is
    exactly what approving would release (after suppression or noise); ``checks`` is the
    full check report, figures included.
    """

    run: RunResult
    checks: CheckReport
    privacy: dict[str, Any] | None = None
    on_mock: bool = False

    @cached_property
    def result(self) -> Any:
        return decode(self.run.payload) if self.run.ok and self.run.payload else None

    ok = property(lambda self: self.run.ok)
    stdout = property(lambda self: self.run.stdout)
    stderr = property(lambda self: self.run.stderr)
    error = property(lambda self: self.run.error)
    error_type = property(lambda self: self.run.error_type)
    duration = property(lambda self: self.run.duration)
    sandboxed = property(lambda self: self.run.sandboxed)
    fault = property(lambda self: self.run.fault)

    @property
    def next_step(self) -> str | None:
        """For a failed run: whose failure it is and what the owner can do about it."""
        if self.ok:
            return None
        if self.fault == "domain":
            return (
                "The domain's failure: the sandbox did not start and none of the scientist's "
                "code ran. Read stderr, mend the domain (interpreter path, bubblewrap, "
                "limits) and run again; it cannot be approved."
            )
        kind = self.error_type or "SandboxError"
        if kind.startswith("LimitExceeded:"):
            return (
                f"The scientist's code hit the {kind.split(':', 1)[1]} limit. Approve to tell "
                "them which limit (only that), deny with a reason, or raise the limit in "
                "the dataset's policy and run again."
            )
        return (
            f"The scientist's code failed ({kind}). Approve to send them the error's type "
            "only (not its message, which can show private values), or deny with a reason."
        )

    def __repr__(self) -> str:
        state = "ok" if self.ok else f"failed ({self.error_type}, {self.fault}'s fault)"
        where = "mock" if self.on_mock else f"checks {self.checks.verdict}"
        return f"<RunPreview {state}, {where}, {self.duration:.2f}s, sandboxed={self.sandboxed}>"

    def _repr_html_(self) -> str:
        from rds.domain.desk_html import preview_html

        return preview_html(self)


class OwnerRequest:
    """One computation request, from the owner's side.

    Attributes: ``id``, ``kind`` (``"python"``, ``"sql"``, ``"dp"``, or ``"invalid"`` with
    the reason in ``problem``: it can only be denied), ``code`` (the
    function's source, or the SQL of a SQL or DP request; ``source`` is the submission as
    sent), ``sql``, ``epsilon``/``delta`` (DP), ``scientist``, ``dataset`` and
    ``datasets`` (derived from the code: the tables a query reads), ``reason``,
    ``submitted_at`` and ``status`` (``"submitted"``, ``"invalid"``, ``"ran"``, ``"released"``,
    ``"denied"`` or ``"withdrawn"``: the scientist cancelled it undecided, and it can no longer
    be run or decided).

    Examples
    --------
    >>> req = domain.requests[-1]
    >>> preview = req.run()        # sandboxed, on the private data, owner-only
    >>> preview.checks             # the disclosure checks of what would be released
    >>> req.approve()              # releases preview.result to the scientist
    """

    def __init__(
        self, domain: Domain, record: RequestRecord, *, published: Collection[str] | None = None
    ) -> None:
        from rds.worker.intake import read_submission

        self._domain = domain
        self._record = record
        self.id = record.id
        self.source = record.source  # the submission exactly as sent (a stand-in for SQL)
        self.scientist = record.scientist
        names = domain.store.names() if published is None else published
        # What the request is comes from its code; its header is only checked against it.
        self.submission = read_submission(record.source, record.meta, published=names)
        sub = self.submission
        self.kind: str = sub.kind
        self.problem: str | None = sub.problem
        self.datasets: list[str] = list(sub.datasets)
        self.dataset: str | None = sub.dataset
        self.function: str | None = sub.function
        self.sql: str = sub.sql
        # What the owner reviews: the function's source, or the query of a SQL/DP request.
        self.code: str = sub.sql if sub.kind in ("sql", "dp") and sub.sql else record.source
        self.epsilon: float = sub.epsilon
        self.delta: float = sub.delta
        self.reason: str = sub.reason
        self.submitted_at: datetime = record.submitted_at
        self._dir = domain.layout.runs / record.id
        self._withdrawal_noted = False  # in the ledger (see _note_withdrawal)

    @property
    def status(self) -> str:
        """Read now from the domain; ``listed_status`` is the state when it was listed."""
        self._record = self._domain._conn.request(self.id)
        status = self.listed_status
        if status == "withdrawn" and not self._withdrawal_noted:
            self._note_withdrawal()
            self._withdrawal_noted = True
        return status

    @property
    def listed_status(self) -> str:
        """The status as of the last read, without a round trip (for queues of many).

        ``"invalid"``: a submission rds cannot read (see ``problem``); deny it.
        """
        if (decided := decision(self._record)) is not None:
            return decided
        if self.problem is not None:
            return "invalid"
        return "ran" if (self._dir / "run.json").exists() else "submitted"

    @property
    def deny_reason(self) -> str | None:
        return self._record.deny_reason

    # -- running -----------------------------------------------------------------
    def run(self) -> RunPreview:
        """Run the request in the sandbox on the private data; return an owner-only preview.

        A differentially private request reserves its ε first (refused, and denied, if it
        would exceed the budget) and runs once: its noisy answer is fixed after that.
        """
        return self._run()

    def _run(self, *, allowance: float | None = None) -> RunPreview:
        """``run()``; ``allowance``: a served domain's DP auto-release (``run_request``)."""
        from rds.worker.runs import run_request

        if self.status == "withdrawn":
            raise RequestStateError(_WITHDRAWN.format(what="run"))
        if self.kind == "dp":
            earlier = self.preview
            if earlier is not None and earlier.ok and not self._stale_run():
                return earlier
        domain = self._domain
        self._pick_up()  # before the run: the scientist sees no stage while it works
        try:
            outcome = run_request(domain, self, allowance=allowance)
        except BudgetExceeded as exc:
            self._deny(str(exc), actor="policy:epsilon_budget")
            raise
        except QueryRefused as exc:  # a hand-made DP request the client would have refused
            self._deny(str(exc), actor="policy:dp_planner")
            raise
        except SandboxUnavailable:
            domain.ledger.append("run_refused", actor=domain.owner, request=self.id)
            raise
        # Which version of each dataset it read: a preview of a replaced one is not released.
        run = {**outcome.run, "versions": self._versions()}
        if not run["sandboxed"]:
            warnings.warn(
                "This request ran WITHOUT the bubblewrap sandbox (allow_unsandboxed=True): "
                "its code could read anything this user can. Install bubblewrap.",
                RuntimeWarning,
                stacklevel=2,
            )
        self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        (self._dir / "payload.bin").write_bytes(outcome.payload)
        write_private(self._dir / "checks.json", json.dumps(outcome.report.to_dict()))
        write_private(self._dir / "run.json", json.dumps(run))
        domain.ledger.append(
            "ran",
            actor=domain.owner,
            request=self.id,
            dataset=self.dataset,
            kind=self.kind,
            ok=run["ok"],
            error_type=run["error_type"],
            duration=round(run["duration"], 4),
            sandboxed=run["sandboxed"],
            checks=outcome.report.verdict,
            result_sha256=run["sha256"],
            **({"fallback": run["fallback"]} if run.get("fallback") else {}),
        )
        if run.get("fallback"):
            _log_fallback(domain, self.id, run["fallback"])
        if not run["sandboxed"]:
            domain.ledger.append(
                "unsandboxed_run", actor=domain.owner, request=self.id, warning="no bubblewrap"
            )
        return self._preview(run, outcome.payload, outcome.report)

    def _versions(self) -> dict[str, int]:
        from rds.errors import DatasetNotFound

        versions = {}
        for name in self.datasets:
            try:
                versions[name] = self._domain.dataset_version(name)
            except DatasetNotFound:
                continue
        return versions

    def _stale_run(self, run: dict[str, Any] | None = None) -> str | None:
        """The dataset replaced since the last run, if any (``None``: up to date)."""
        if run is None:
            path = self._dir / "run.json"
            if not path.exists():
                return None
            run = json.loads(path.read_text())
        then = run.get("versions") or {}
        now = self._versions()
        return next((n for n, v in then.items() if now.get(n, v) != v), None)

    def _pick_up(self) -> None:
        """Tell the scientist the request is with the owner ("awaiting review"), once.

        This is the only stage a scientist sees before a decision, and it is set before
        anything runs on the private data: neither its presence nor its time depends on a
        run (how long it took, whether it failed, what the checks said).
        """
        if self._record.stage is None and decision(self._record) is None:
            self._domain._conn.set_stage(self.id, "review")
            self._record = replace(self._record, stage="review")

    def run_on_mock(self) -> RunPreview:
        """Run the request on the published mock data, in the sandbox; nothing is checked.

        Shows the owner what the code does on data anyone may see, before running it on the
        private data. SQL and DP requests run as plain SQL on the mock.
        """
        from rds.worker.runs import run_mock_in_sandbox

        result = run_mock_in_sandbox(self._domain, self)
        self._domain.ledger.append(
            "ran_on_mock",
            actor=self._domain.owner,
            request=self.id,
            ok=result.ok,
            error_type=result.error_type,
            duration=round(result.duration, 4),
        )
        return RunPreview(result, _empty_report(), on_mock=True)

    @property
    def preview(self) -> RunPreview | None:
        """The last private run's preview, or ``None`` if it has not run."""
        if not (self._dir / "run.json").exists():
            return None
        run = json.loads((self._dir / "run.json").read_text())
        return self._preview(run, (self._dir / "payload.bin").read_bytes(), self.checks)

    @property
    def checks(self) -> CheckReport | None:
        """The full check report of the last run (owner-only figures included)."""
        from rds.checks.report import CheckReport

        path = self._dir / "checks.json"
        return CheckReport.from_dict(json.loads(path.read_text())) if path.exists() else None

    @staticmethod
    def _preview(run: dict[str, Any], payload: bytes, checks: CheckReport | None) -> RunPreview:
        return RunPreview(
            RunResult.from_record(run, payload),
            checks or _empty_report(),
            privacy=run.get("privacy"),
        )

    def earlier_releases(self) -> list[Any]:
        """What this scientist was already given on these datasets, most similar first.

        A list of ``rds.domain.overlap.EarlierRelease``; one that differs from this request
        only in its conditions is the other half of a differencing attack. The review desk
        shows them under the request.
        """
        from rds.domain.overlap import earlier_releases

        return earlier_releases(self._domain, self)

    # -- deciding ----------------------------------------------------------------
    def approve(
        self,
        *,
        note: str | None = None,
        justification: str | None = None,
        release_logs: bool = False,
    ) -> None:
        """Release the previewed result (or, for a failed run, its safe summary).

        ``note`` says why, for the ledger. When a check failed, releasing needs a written
        ``justification``, which the ledger keeps. stdout and stderr stay with the owner
        unless ``release_logs=True``.
        """
        self._release(
            actor=self._domain.owner,
            note=note,
            justification=justification,
            release_logs=release_logs,
            policy=None,
        )

    def _release(
        self,
        *,
        actor: str,
        note: str | None,
        justification: str | None,
        release_logs: bool,
        policy: str | None,
    ) -> None:
        status = self.status
        if status == "withdrawn":
            raise RequestStateError(_WITHDRAWN.format(what="released"))
        if status in {"released", "denied"}:
            raise RequestStateError(f"This request is already {status}.")
        if not (self._dir / "run.json").exists():
            raise RequestStateError("Run the request first (req.run()) and look at the preview.")
        run = json.loads((self._dir / "run.json").read_text())
        if (stale := self._stale_run(run)) is not None:
            raise RequestStateError(
                f"The dataset {stale!r} was replaced by a new version since this run; run "
                "the request again (req.run()) to review it on the new version, or deny it."
            )
        if run.get("fault") == "domain":
            raise RequestStateError(
                "This run failed on the domain's side: the sandbox did not start, so none "
                "of the scientist's code ran and there is nothing of theirs to release. "
                "Read preview.stderr (a missing interpreter path, bubblewrap's own error, a "
                "limit too small to start Python), mend the domain and call run() again; or "
                "deny(reason) to tell the scientist."
            )
        payload = (self._dir / "payload.bin").read_bytes()
        if hashlib.sha256(payload).hexdigest() != run["sha256"]:
            raise RequestStateError(
                "The stored result no longer matches the run the owner saw; run again."
            )
        from rds.checks.report import CheckReport

        report = self.checks or CheckReport(())
        justification = (justification or "").strip() or None
        if report.failed and justification is None:
            failed = ", ".join(c.rule for c in report.failed)
            raise RequestStateError(
                f"Checks failed ({failed}). Deny the request, or release it anyway with a "
                "written justification: approve(justification='...'); it goes in the ledger."
            )
        release = Release(
            ok=run["ok"],
            payload=payload if run["ok"] else b"",
            summary=None if run["ok"] else run["error_type"],
            stdout=run["stdout"] if release_logs else None,
            stderr=run["stderr"] if release_logs else None,
            checks=report.for_scientist().to_dict(),
            privacy=run.get("privacy"),
        )
        domain = self._domain
        domain.ledger.append(
            "approved",
            actor=actor,
            request=self.id,
            dataset=self.dataset,
            kind=self.kind,
            result_sha256=run["sha256"],
            release_logs=release_logs,
            checks=report.verdict,
            failed_checks=[c.rule for c in report.failed],
            justification=justification,
            policy=policy,
            note=(note or "").strip() or None,
        )
        # The verdict the scientist will read in the envelope, also shown in their listing.
        domain._conn.set_stage(self.id, "review", checks=report.verdict)
        domain._conn.deposit(self.id, release.pack())
        domain.ledger.append("released", actor=actor, request=self.id, ok=run["ok"])
        self._settle(spent=True, actor=actor)

    def deny(self, reason: str) -> None:
        """Deny the request; the scientist sees ``reason``. Reserved ε is given back."""
        self._deny(reason, actor=self._domain.owner)

    def _deny(self, reason: str, *, actor: str) -> None:
        if not isinstance(reason, str) or not reason.strip():
            raise InvalidInput("Denying a request needs a reason the scientist can act on.")
        status = self.status
        if status == "withdrawn":
            raise RequestStateError(_WITHDRAWN.format(what="denied"))
        if status in {"released", "denied"}:
            raise RequestStateError(f"This request is already {status}.")
        domain = self._domain
        domain._conn.deny(self.id, reason.strip())
        domain.ledger.append("denied", actor=actor, request=self.id, reason=reason.strip())
        self._settle(spent=False, actor=actor)

    def _note_withdrawal(self) -> None:
        """Record the scientist's withdrawal in the ledger and settle its ε, each once.

        ε is reserved only just before a DP query runs, so a request withdrawn before any
        run has nothing to settle. A reservation is refunded only when its run never
        started (the domain's fault, ``preview.fault == "domain"``); otherwise the noisy
        answer was drawn (or is being drawn) and the ε stays spent, though nothing is
        released: a cancel must not buy the scientist a fresh draw of the noise. Whether a
        run had started depends on the owner and the policy, not on the private data.
        """
        domain = self._domain
        domain.ledger.append("withdrawn", actor=self.scientist, once_key=self.id, request=self.id)
        run = self._dir / "run.json"
        never_ran = run.exists() and json.loads(run.read_text()).get("fault") == "domain"
        self._settle(spent=not never_ran, actor=self.scientist)

    def _settle(self, *, spent: bool, actor: str) -> None:
        # By request id, whatever the request reads as now: a reservation is settled once
        # under the scientist and dataset it was made for, also for a request that has
        # since become invalid (its dataset unpublished) or whose run crashed.
        budget.settle(self._domain.ledger, actor=actor, request=self.id, spent=spent)

    def _repr_html_(self) -> str:
        from rds.domain.desk_html import request_detail

        return request_detail(self._domain, self)

    def __repr__(self) -> str:
        return (
            f"<OwnerRequest {self.id[:8]} {self.kind} on {self.dataset!r} "
            f"from {self.scientist} ({self.status})>"
        )


_WITHDRAWN = (
    "The scientist withdrew this request (Request.cancel) before it was decided; it can no "
    "longer be {what}."
)


def _empty_report() -> CheckReport:
    from rds.checks.report import CheckReport

    return CheckReport(())


def _log_fallback(domain: Domain, request_id: str, fallback: dict[str, Any]) -> None:
    """Tell the owner (the worker's log, a warning in a notebook) that a DP run was replaced."""
    warnings.warn(
        f"DP request {request_id} on {domain.name!r}: the run failed or did not finish in its "
        f"time allowance ({fallback.get('error_type')}: {fallback.get('error')}); the answer "
        "for no rows (pure noise) was released in its place. If this happens often, raise "
        "WorkerLimits.dp_seconds or dp_seconds_per_million_rows (domain.json).",
        RuntimeWarning,
        stacklevel=3,
    )
