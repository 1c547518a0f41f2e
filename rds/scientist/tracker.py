"""The scientist's live view: a request's progress, their requests, and waiting in result().

Each widget polls the domain from a daemon thread (``Poller``) until everything it shows
has ended, so nobody refreshes by hand. Every figure comes from the same objects the
Python API returns; the widgets add no logic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import ipywidgets as w

from rds.request.status import FINAL, STAGES, scientist_status
from rds.scientist import views
from rds.widgets.html import notice
from rds.widgets.poller import POLL_SECONDS, Poller

if TYPE_CHECKING:
    from rds.scientist.request import Request
    from rds.scientist.session import Session


class RequestTracker(w.VBox):
    """A request's steps (submitted → awaiting review → released, or denied).

    Examples
    --------
    >>> req = ds.request(mean_age, reason="...")
    >>> req          # in a notebook: this widget, updating itself
    """

    def __init__(self, request: Request, *, poll: float = POLL_SECONDS) -> None:
        self.request = request
        self.steps = w.HTML()
        super().__init__([self.steps])
        self.add_class("rds-tracker")
        self.update()
        self._poller: Poller | None = None
        if self.status not in FINAL:
            self._poller = Poller(self.update, interval=poll, on_error=self._failed).start()

    @property
    def status(self) -> str:
        return self._status

    def update(self) -> bool:
        """Read the request's state once and redraw; False once it has ended."""
        record = self.request.refresh()
        self._status = scientist_status(record)
        self.steps.value = views.request_html(self.request)
        return self._status not in FINAL

    def _failed(self, exc: Exception) -> None:
        self.steps.value += notice(f"Stopped following this request: {exc}", tone="fail")

    def close(self) -> None:
        if self._poller is not None:
            self._poller.stop()
        super().close()


class SessionTracker(w.VBox):
    """A session's datasets and requests; the request table updates while any is open."""

    def __init__(self, session: Session, *, poll: float = POLL_SECONDS) -> None:
        self.session = session
        self.header = w.HTML(views.session_html(session, requests=False))
        self.table = w.HTML()
        super().__init__([self.header, self.table])
        self.add_class("rds-tracker")
        self._poller: Poller | None = None
        if self.update():
            self._poller = Poller(self.update, interval=poll, on_error=self._failed).start()

    def update(self) -> bool:
        """Redraw the request table once; False when no request is still open."""
        requests = self.session.requests
        self.table.value = views.requests_html(requests)
        return any(
            scientist_status(r._record) not in FINAL for r in requests if r._record is not None
        )

    def _failed(self, exc: Exception) -> None:
        self.table.value += notice(f"Stopped refreshing: {exc}", tone="fail")

    def close(self) -> None:
        if self._poller is not None:
            self._poller.stop()
        super().close()


class WaitBar:
    """The progress bar ``Request.result()`` shows in a notebook while it waits.

    It appears only once there is something to wait for (an answer already there shows no
    bar). With a timeout it fills with the time spent; without one it moves a step per stage.
    """

    def __init__(self, timeout: float | None) -> None:
        self._timeout = timeout
        self.bar = w.FloatProgress(value=0.0, min=0.0, max=1.0, description="submitted")
        self.label = w.Label("Waiting for the data owner…")
        self.box = w.HBox([self.bar, self.label])
        self.shown = False
        self._finished = False

    def update(self, status: str, waited: float) -> None:
        if not self.shown:
            from IPython.display import display

            display(self.box)
            self.shown = True
        if self._timeout:
            self.bar.value = min(1.0, waited / self._timeout)
            left = max(0.0, self._timeout - waited)
            self.label.value = f"{status} · {waited:.0f}s waited, gives up in {left:.0f}s"
        else:
            step = STAGES.index(status) if status in STAGES else 0
            self.bar.value = (step + 1) / (len(STAGES) + 1)
            self.label.value = f"{status} · {waited:.0f}s waited"
        self.bar.description = status

    def finish(self, status: str) -> None:
        self._finished = True
        self.bar.value = 1.0
        self.bar.description = status
        self.bar.bar_style = {"released": "success", "denied": "danger"}.get(status, "warning")
        self.label.value = {
            "released": "Released.",
            "denied": "Denied by the data owner.",
            "withdrawn": "Withdrawn by you (cancel()) before a decision.",
        }.get(status, f"Still {status}; stopped waiting.")

    def close(self) -> None:
        if not self._finished:
            self.bar.bar_style = "warning"
            self.label.value = "Stopped waiting (interrupted)."
