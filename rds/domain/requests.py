"""A request as the data owner sees it: run it in the sandbox, then approve or deny."""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rds.domain.layout import write_private
from rds.domain.release import Release
from rds.errors import InvalidInput, RDSError, SandboxUnavailable
from rds.sandbox import runner
from rds.sandbox.codec import decode

if TYPE_CHECKING:
    from rds._syft.client import RequestRecord
    from rds.domain.domain import Domain


@dataclass(frozen=True)
class RunPreview:
    """The owner-only outcome of a private run. Nothing here has been released."""

    ok: bool
    result: Any
    stdout: str
    stderr: str
    error: str | None
    error_type: str | None
    duration: float
    sandboxed: bool

    def __repr__(self) -> str:
        state = "ok" if self.ok else f"failed ({self.error_type})"
        return f"<RunPreview {state}, {self.duration:.2f}s, sandboxed={self.sandboxed}>"


class OwnerRequest:
    """One computation request, from the owner's side.

    Attributes: ``id``, ``code`` (the function's source), ``scientist``, ``dataset``,
    ``kind``, ``reason``, ``submitted_at`` and ``status`` (``"submitted"``, ``"ran"``,
    ``"released"`` or ``"denied"``).

    Examples
    --------
    >>> req = domain.requests[-1]
    >>> preview = req.run()        # sandboxed, on the private data, owner-only
    >>> req.approve()              # releases preview.result to the scientist
    """

    def __init__(self, domain: Domain, record: RequestRecord) -> None:
        self._domain = domain
        self._record = record
        self.id = record.id
        self.code = record.source
        self.scientist = record.scientist
        self.dataset: str | None = record.meta.get("dataset")
        self.kind: str = record.meta.get("kind", "syft")
        self.function: str | None = record.meta.get("function")
        self.reason: str = record.meta.get("reason", "")
        self.submitted_at: datetime = record.submitted_at
        self._dir = domain.layout.runs / record.id

    @property
    def status(self) -> str:
        record = self._domain._conn.request(self.id)
        if record.status == "approved":
            return "released"
        if record.status == "denied":
            return "denied"
        return "ran" if (self._dir / "run.json").exists() else "submitted"

    # -- running -----------------------------------------------------------------
    def run(self) -> RunPreview:
        """Run the request in the sandbox on the private data; return an owner-only preview."""
        if self.kind != "python" or not self.function or not self.dataset:
            raise RDSError(
                "This request was not made with rds (no rds header), so rds cannot run it; "
                "deny it with a reason."
            )
        domain = self._domain
        if self.dataset not in domain.store.names():
            raise RDSError(f"The request names dataset {self.dataset!r}, which is not published.")
        limits = domain.policy(self.dataset).limits or domain.limits
        try:
            outcome = runner.run_python(
                self.code,
                self.function,
                datasets=[domain.store.directory(self.dataset)],
                limits=limits,
                allow_unsandboxed=domain.allow_unsandboxed,
            )
        except SandboxUnavailable:
            domain.ledger.append("run_refused", actor=domain.owner, request=self.id)
            raise
        if not outcome.sandboxed:
            warnings.warn(
                "This request ran WITHOUT the bubblewrap sandbox (allow_unsandboxed=True): "
                "its code could read anything this user can. Install bubblewrap.",
                RuntimeWarning,
                stacklevel=2,
            )
        payload = outcome.payload or b""
        self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        (self._dir / "payload.bin").write_bytes(payload)
        run = {
            "ok": outcome.ok,
            "stdout": outcome.stdout,
            "stderr": outcome.stderr,
            "error": outcome.error,
            "error_type": outcome.error_type,
            "duration": outcome.duration,
            "sandboxed": outcome.sandboxed,
            "sha256": hashlib.sha256(payload).hexdigest(),
        }
        write_private(self._dir / "run.json", json.dumps(run))
        domain.ledger.append(
            "ran",
            actor=domain.owner,
            request=self.id,
            dataset=self.dataset,
            ok=outcome.ok,
            error_type=outcome.error_type,
            duration=round(outcome.duration, 4),
            sandboxed=outcome.sandboxed,
            result_sha256=run["sha256"],
        )
        if not outcome.sandboxed:
            domain.ledger.append(
                "unsandboxed_run", actor=domain.owner, request=self.id, warning="no bubblewrap"
            )
        return self._preview(run, payload)

    @property
    def preview(self) -> RunPreview | None:
        """The last private run's preview, or ``None`` if it has not run."""
        if not (self._dir / "run.json").exists():
            return None
        run = json.loads((self._dir / "run.json").read_text())
        return self._preview(run, (self._dir / "payload.bin").read_bytes())

    @staticmethod
    def _preview(run: dict[str, Any], payload: bytes) -> RunPreview:
        return RunPreview(
            ok=run["ok"],
            result=decode(payload) if run["ok"] else None,
            stdout=run["stdout"],
            stderr=run["stderr"],
            error=run["error"],
            error_type=run["error_type"],
            duration=run["duration"],
            sandboxed=run["sandboxed"],
        )

    # -- deciding ----------------------------------------------------------------
    def approve(self, *, note: str | None = None, release_logs: bool = False) -> None:
        """Release the previewed result (or, for a failed run, its safe summary).

        ``note`` says why, for the ledger. stdout and stderr stay with the owner unless
        ``release_logs=True``.
        """
        if self.status in {"released", "denied"}:
            raise RDSError(f"This request is already {self.status}.")
        if not (self._dir / "run.json").exists():
            raise RDSError("Run the request first (req.run()) and look at the preview.")
        run = json.loads((self._dir / "run.json").read_text())
        payload = (self._dir / "payload.bin").read_bytes()
        if hashlib.sha256(payload).hexdigest() != run["sha256"]:
            raise RDSError("The stored result no longer matches the run the owner saw; run again.")
        release = Release(
            ok=run["ok"],
            payload=payload if run["ok"] else b"",
            summary=None if run["ok"] else run["error_type"],
            stdout=run["stdout"] if release_logs else None,
            stderr=run["stderr"] if release_logs else None,
        )
        domain = self._domain
        domain.ledger.append(
            "approved",
            actor=domain.owner,
            request=self.id,
            dataset=self.dataset,
            result_sha256=run["sha256"],
            release_logs=release_logs,
            note=(note or "").strip() or None,
        )
        domain._conn.deposit(self.id, release.pack())
        domain.ledger.append("released", actor=domain.owner, request=self.id, ok=run["ok"])

    def deny(self, reason: str) -> None:
        """Deny the request; the scientist sees ``reason``."""
        if not isinstance(reason, str) or not reason.strip():
            raise InvalidInput("Denying a request needs a reason the scientist can act on.")
        if self.status in {"released", "denied"}:
            raise RDSError(f"This request is already {self.status}.")
        domain = self._domain
        domain._conn.deny(self.id, reason.strip())
        domain.ledger.append("denied", actor=domain.owner, request=self.id, reason=reason.strip())

    def __repr__(self) -> str:
        return (
            f"<OwnerRequest {self.id[:8]} {self.kind} on {self.dataset!r} "
            f"from {self.scientist} ({self.status})>"
        )
