"""A submitted request, from the scientist's side."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any, TypeVar

from rds.errors import RequestDenied, RequestFailed, RequestStateError, RequestTimeout
from rds.request.release import Release
from rds.request.status import decision, scientist_status
from rds.sandbox.codec import decode

if TYPE_CHECKING:
    from datetime import datetime

    import pandas as pd

    from rds._syft.client import RequestRecord
    from rds.checks.report import CheckReport
    from rds.scientist.dp_answer import PrivacyInfo
    from rds.scientist.session import Session

_E = TypeVar("_E", bound=BaseException)


class Request:
    """A computation request sent to a domain.

    Examples
    --------
    >>> req = ds.request(mean_age, reason="Age profile for the ethics report")
    >>> req.status
    'awaiting review'
    >>> req.result(timeout=600)
    47.3

    In a notebook, displaying ``req`` shows a live status widget.
    """

    def __init__(
        self,
        session: Session,
        request_id: str,
        *,
        meta: dict[str, Any],
        mock_result: Any,
        record: RequestRecord | None = None,
    ) -> None:
        self._session = session
        self.id = request_id
        self.kind: str = str(meta.get("kind", "python"))
        self.dataset: str = str(meta.get("dataset"))
        self.function: str | None = meta.get("function")
        self.sql: str | None = meta.get("sql")
        self.epsilon: float | None = meta.get("epsilon")
        self.reason: str = str(meta.get("reason") or "")
        self.mock_result = mock_result
        self._released: Release | None = None
        self._record = record

    @property
    def status(self) -> str:
        """Where the request is: ``"submitted"``, ``"awaiting review"`` (the domain has it;
        the owner or a policy decides), ``"released"``, ``"denied"`` or ``"withdrawn"``
        (``cancel()``)."""
        return scientist_status(self.refresh())

    def refresh(self) -> RequestRecord:
        """Read the request's state from the domain (one round trip)."""
        self._record = self._session._conn.request(self.id)
        return self._record

    @property
    def submitted_at(self) -> datetime:
        """When the domain received the request (UTC)."""
        return (self._record or self.refresh()).submitted_at

    @property
    def verdict(self) -> str | None:
        """The released result's check verdict (``"pass"``, ``"warn"``, ``"fail"``), if any."""
        record = self._record or self.refresh()
        return record.checks if decision(record) == "released" else None

    @property
    def denial_reason(self) -> str | None:
        """The owner's reason, once denied."""
        record = self._record or self.refresh()
        return record.deny_reason if decision(record) == "denied" else None

    def summary(self) -> dict[str, Any]:
        """What a listing shows of this request, from its last read state (no round trip).

        id, what, dataset, kind, status, verdict, submitted_at, reason, denial_reason.
        """
        record = self._record or self.refresh()
        return {
            "id": self.id,
            "what": self.what,
            "dataset": self.dataset,
            "kind": self.kind,
            "status": scientist_status(record),
            "verdict": self.verdict,
            "submitted_at": record.submitted_at,
            "reason": self.reason,
            "denial_reason": self.denial_reason,
        }

    @property
    def what(self) -> str:
        """A short label: ``mean_age()``, ``SQL`` or ``DP SQL (ε=0.5)``."""
        if self.kind == "python":
            return f"{self.function}()"
        if self.kind == "dp":
            return f"DP SQL (ε={self.epsilon:g})"
        return self.kind.upper()

    def result(
        self, timeout: float | None = None, *, poll: float = 1.0, progress: bool = True
    ) -> Any:
        """Wait for the owner's decision and return the released result.

        Raises ``RequestDenied`` (with the owner's reason), ``RequestFailed`` (the run failed
        on private data; a safe summary only) or ``RequestTimeout``.
        """
        start = time.monotonic()
        conn = self._session._conn
        bar = _progress(progress, timeout)
        try:
            while True:
                record = self.refresh()
                status = scientist_status(record)
                if decision(record) == "denied":
                    bar.finish(status)
                    denied = RequestDenied(record.deny_reason or "no reason given")
                    raise _noted(denied, self.id)
                if decision(record) == "withdrawn":
                    bar.finish(status)
                    raise _noted(RequestStateError(_CANCELLED), self.id)
                if decision(record) == "released":
                    payload = conn.fetch_result(self.id)
                    if payload is not None:
                        bar.finish(status)
                        return self._open(payload)
                waited = time.monotonic() - start
                if timeout is not None and waited >= timeout:
                    bar.finish(status)
                    raise _noted(
                        RequestTimeout(
                            f"No decision on request {self.id[:8]} after {waited:.0f}s; it is "
                            f"still {status} with the data owner. Call result() again later."
                        ),
                        self.id,
                    )
                bar.update(status, waited)
                time.sleep(poll if timeout is None else max(0.0, min(poll, timeout - waited)))
        finally:
            bar.close()

    def cancel(self) -> None:
        """Withdraw the request while the owner (or a policy) has not decided it.

        The owner's queue then shows it as ``"withdrawn"``: it can no longer be run,
        released or denied, and ``result()`` raises ``RequestStateError``. Cancelling again
        changes nothing. A request already released or denied cannot be cancelled
        (``RequestStateError``); nor can another scientist's (the domain checks whose it
        is, and answers as if it did not exist).

        ε of a differentially private query: the domain reserves it just before the query
        runs on the private data. Withdrawn before that, nothing is spent; withdrawn after,
        the noisy answer was drawn, so the ε stays spent although nothing is released —
        otherwise cancelling and asking again would buy a fresh draw of the noise for free
        (a reservation whose run never started, through the domain's fault, is refunded).
        Whether the owner had run it is not yours to see, so ``session.budget`` counts a
        withdrawn DP query as spent; the owner's ledger has the exact figure.
        """
        decided = decision(self.refresh())
        if decided == "withdrawn":
            return
        if decided is not None:
            raise _noted(
                RequestStateError(
                    f"Request {self.id[:8]} is already {decided}; only a request still "
                    "waiting for a decision can be cancelled."
                ),
                self.id,
            )
        self._session._conn.withdraw(self.id)
        self.refresh()

    @property
    def checks(self) -> CheckReport | None:
        """The disclosure checks the released result passed (verdicts and explanations only).

        ``None`` until ``result()`` has returned or raised.
        """
        from rds.checks.report import CheckReport

        if self._released is None or self._released.checks is None:
            return None
        return CheckReport.from_dict(self._released.checks)

    @property
    def privacy(self) -> PrivacyInfo | None:
        """For a differentially private answer: ε spent, δ, mechanism and noise scales
        (a dict; a table in a notebook)."""
        from rds.scientist.dp_answer import PrivacyInfo

        if self._released is None or self._released.privacy is None:
            return None
        return PrivacyInfo(self._released.privacy)

    @property
    def logs(self) -> tuple[str | None, str | None]:
        """(stdout, stderr) of the private run, if the owner released them."""
        if self._released is None:
            return None, None
        return self._released.stdout, self._released.stderr

    def _open(self, payload: bytes) -> Any:
        release = Release.unpack(payload)
        self._released = release
        if not release.ok:
            raise _noted(RequestFailed(release.summary or "unknown error"), self.id)
        value = decode(release.payload)
        if release.privacy is not None:
            from rds.scientist.dp_answer import with_relative_error

            value = with_relative_error(value, release.privacy)  # flags noise-swamped cells
        return value

    def __repr__(self) -> str:
        return f"<rds.Request {self.id[:8]} {self.what} on {self.dataset!r}>"

    def _repr_html_(self) -> str:
        from rds.scientist.views import request_html

        return request_html(self)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        from rds.widgets.live import live_bundle

        def widget() -> Any:
            from rds.scientist.tracker import RequestTracker

            return RequestTracker(self)

        return live_bundle(self, widget)


_CANCELLED = "This request was withdrawn (cancel()) before a decision; it has no result."


def _noted(exc: _E, request_id: str) -> _E:
    """``exc`` with the request's id as a note (shown under its message, also by IPython)."""
    exc.add_note(f"request id: {request_id} (session.request(id) reads it again)")
    return exc


class RequestList(list[Request]):
    """Requests, shown in a notebook as a table of status and check verdicts."""

    def to_frame(self) -> pd.DataFrame:
        """One row per request: id, what, dataset, submitted, status, checks, reason."""
        import pandas as pd

        frame = pd.DataFrame(
            [r.summary() for r in self],
            columns=["id", "what", "dataset", "submitted_at", "status", "verdict", "reason"],
        )
        return frame.rename(columns={"submitted_at": "submitted", "verdict": "checks"})

    def _repr_html_(self) -> str:
        from rds.scientist.views import requests_html

        return requests_html(self)


class _Progress:
    """Waiting feedback in a terminal: one rewritten line on stderr."""

    def __init__(self, enabled: bool) -> None:
        self._enabled = enabled
        self._shown = False

    def update(self, status: str, waited: float) -> None:
        if self._enabled:
            self._shown = True
            line = f"\rRequest {status}; waiting for the data owner… {waited:5.0f}s"
            print(line, end="", file=sys.stderr, flush=True)

    def finish(self, status: str) -> None:
        return None

    def close(self) -> None:
        if self._shown:
            print("\r" + " " * 70 + "\r", end="", file=sys.stderr, flush=True)


def _progress(enabled: bool, timeout: float | None) -> Any:
    from rds.widgets.live import in_kernel

    if enabled and in_kernel():
        from rds.scientist.tracker import WaitBar

        return WaitBar(timeout)
    return _Progress(enabled)
