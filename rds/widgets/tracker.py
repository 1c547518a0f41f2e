"""The scientist's live view: a request's progress, their requests, and waiting in result().

Each widget polls the domain from a daemon thread (``Poller``) until everything it shows
has ended, so nobody refreshes by hand. Every figure comes from the same objects the
Python API returns; the widgets add no logic.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import ipywidgets as w

from rds.scientist.request import FINAL, STAGES, scientist_status
from rds.widgets import reprs

if TYPE_CHECKING:
    from rds.scientist.request import Request
    from rds.scientist.session import Session

#: Seconds between polls, and how long a widget keeps polling a request nobody decides.
POLL_SECONDS = 2.0
GIVE_UP_SECONDS = 6 * 3600.0


class Poller:
    """Call ``tick`` every ``interval`` seconds on a daemon thread until it returns False.

    A tick that raises stops the poller and hands the error to ``on_error`` (the widget
    shows it); ``stop()`` ends it from outside, e.g. when the widget is closed.
    """

    def __init__(
        self,
        tick: Callable[[], bool],
        *,
        interval: float = POLL_SECONDS,
        on_error: Callable[[Exception], None] | None = None,
        give_up: float = GIVE_UP_SECONDS,
    ) -> None:
        self._tick = tick
        self._interval = interval
        self._on_error = on_error
        self._give_up = give_up
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rds-poller", daemon=True)

    def start(self) -> Poller:
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """End the polling; from another thread, also wait for a tick in flight to finish,
        so that nothing it does (a read of the domain) happens after the widget is closed."""
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and not self._stop.is_set()

    def _loop(self) -> None:
        started = time.monotonic()
        while not self._stop.wait(self._interval):
            if time.monotonic() - started > self._give_up:
                return
            try:
                if not self._tick():
                    return
            except Exception as exc:  # shown in the widget; a poller must not die silently
                if self._on_error is not None:
                    self._on_error(exc)
                return


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
        self.steps.value = reprs.request_html(self.request)
        return self._status not in FINAL

    def _failed(self, exc: Exception) -> None:
        self.steps.value += reprs.notice(f"Stopped following this request: {exc}", tone="fail")

    def close(self) -> None:
        if self._poller is not None:
            self._poller.stop()
        super().close()


class SessionTracker(w.VBox):
    """A session's datasets and requests; the request table updates while any is open."""

    def __init__(self, session: Session, *, poll: float = POLL_SECONDS) -> None:
        self.session = session
        self.header = w.HTML(reprs.session_html(session, requests=False))
        self.table = w.HTML()
        super().__init__([self.header, self.table])
        self.add_class("rds-tracker")
        self._poller: Poller | None = None
        if self.update():
            self._poller = Poller(self.update, interval=poll, on_error=self._failed).start()

    def update(self) -> bool:
        """Redraw the request table once; False when no request is still open."""
        requests = self.session.requests
        self.table.value = reprs.requests_html(requests)
        return any(
            scientist_status(r._record) not in FINAL for r in requests if r._record is not None
        )

    def _failed(self, exc: Exception) -> None:
        self.table.value += reprs.notice(f"Stopped refreshing: {exc}", tone="fail")

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
        }.get(status, f"Still {status}; stopped waiting.")

    def close(self) -> None:
        if not self._finished:
            self.bar.bar_style = "warning"
            self.label.value = "Stopped waiting (interrupted)."
