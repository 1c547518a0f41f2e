"""A submitted request, from the scientist's side."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

from rds.domain.release import Release
from rds.errors import RequestDenied, RequestFailed, RequestTimeout
from rds.sandbox.codec import decode

if TYPE_CHECKING:
    from rds.privacy.report import CheckReport
    from rds.scientist.session import Session


class Request:
    """A computation request sent to a domain.

    Examples
    --------
    >>> req = ds.request(mean_age, reason="Age profile for the ethics report")
    >>> req.status
    'pending'
    >>> req.result(timeout=600)
    47.3
    """

    def __init__(
        self, session: Session, request_id: str, *, meta: dict[str, Any], mock_result: Any
    ) -> None:
        self._session = session
        self.id = request_id
        self.kind: str = str(meta.get("kind", "python"))
        self.dataset: str = str(meta.get("dataset"))
        self.function: str | None = meta.get("function")
        self.sql: str | None = meta.get("sql")
        self.epsilon: float | None = meta.get("epsilon")
        self.mock_result = mock_result
        self._released: Release | None = None

    @property
    def status(self) -> str:
        """``"pending"``, ``"released"`` or ``"denied"``."""
        record = self._session._conn.request(self.id)
        return {"approved": "released"}.get(record.status, record.status)

    def result(
        self, timeout: float | None = None, *, poll: float = 1.0, progress: bool = True
    ) -> Any:
        """Wait for the owner's decision and return the released result.

        Raises ``RequestDenied`` (with the owner's reason), ``RequestFailed`` (the run failed
        on private data; a safe summary only) or ``RequestTimeout``.
        """
        start = time.monotonic()
        conn = self._session._conn
        while True:
            record = conn.request(self.id)
            if record.status == "denied":
                _done(progress)
                raise RequestDenied(record.deny_reason or "no reason given")
            if record.status == "approved":
                payload = conn.fetch_result(self.id)
                if payload is not None:
                    _done(progress)
                    return self._open(payload)
            waited = time.monotonic() - start
            if timeout is not None and waited >= timeout:
                _done(progress)
                raise RequestTimeout(
                    f"No decision on request {self.id[:8]} after {waited:.0f}s; it is still "
                    "pending with the data owner. Call result() again later."
                )
            if progress:
                print(
                    f"\rWaiting for the data owner's decision… {waited:5.0f}s",
                    end="",
                    file=sys.stderr,
                    flush=True,
                )
            time.sleep(poll if timeout is None else max(0.0, min(poll, timeout - waited)))

    @property
    def checks(self) -> CheckReport | None:
        """The disclosure checks the released result passed (verdicts and explanations only).

        ``None`` until ``result()`` has returned or raised.
        """
        from rds.privacy.report import CheckReport

        if self._released is None or self._released.checks is None:
            return None
        return CheckReport.from_dict(self._released.checks)

    @property
    def privacy(self) -> dict[str, Any] | None:
        """For a differentially private answer: ε spent, δ, mechanism and noise scales."""
        return None if self._released is None else self._released.privacy

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
            raise RequestFailed(release.summary or "unknown error")
        value = decode(release.payload)
        if release.privacy is not None and hasattr(value, "attrs"):
            value.attrs["privacy"] = release.privacy
        return value

    def __repr__(self) -> str:
        what = f"{self.function}()" if self.kind == "python" else self.kind.upper()
        return f"<rds.Request {self.id[:8]} {what} on {self.dataset!r}>"


def _done(progress: bool) -> None:
    if progress:
        print("\r" + " " * 60 + "\r", end="", file=sys.stderr, flush=True)
