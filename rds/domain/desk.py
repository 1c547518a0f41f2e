"""The data owner's review desk: ``domain.review()``.

A queue of requests (filterable, refreshing itself), the selected request in detail (code
highlighted, the scientist's reason, static notes, datasets, policy, ε cost), and the
actions: run on the mock, run on the private data in the sandbox (with a progress bar),
approve & release, deny. A second tab shows every decision from the ledger. Each action
calls the same ``OwnerRequest`` method a script would; the desk adds no rules of its own,
it only disables buttons whose action would be refused.

Examples
--------
>>> desk = domain.review()
>>> desk                                   # in a notebook: the widget
>>> desk.select(request_id)                # or click a row of the queue
>>> desk.run_private_button.click(); desk.wait()
>>> desk.approve_button.click()
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from rds.domain import desk_html
from rds.errors import RDSError
from rds.ledger import entries_frame
from rds.widgets.html import notice
from rds.widgets.poller import Poller

if TYPE_CHECKING:
    from rds.domain.domain import Domain
    from rds.domain.requests import OwnerRequest, RunPreview

FILTERS = (
    ("Waiting", "waiting"),
    ("All", "all"),
    ("Released", "released"),
    ("Denied", "denied"),
    ("Withdrawn", "withdrawn"),  # the scientist cancelled it undecided (Request.cancel)
)
WAITING = ("submitted", "invalid", "ran")
REFRESH_SECONDS = 3.0
LEDGER_LINES = 200  # ledger entries the History tab shows, newest first


class ReviewDesk(w.VBox):
    """An ipywidgets desk over ``domain.requests``; see the module docstring."""

    def __init__(
        self,
        domain: Domain,
        *,
        refresh_every: float | None = REFRESH_SECONDS,
        background: bool = True,
    ) -> None:
        self.domain = domain
        self.background = background
        self._requests: dict[str, OwnerRequest] = {}
        self._signature: tuple[Any, ...] = ()
        self._lock = threading.RLock()
        self._worker: threading.Thread | None = None
        self._busy = False
        self._shown: str | None = None  # the request the detail view last showed

        self.header = w.HTML()
        self.filter = w.ToggleButtons(options=FILTERS, value="waiting")
        self.refresh_button = _button("Refresh", "refresh")
        self.refreshed = w.Label()
        self.queue = w.HTML()
        self.selector = w.Select(options=[], rows=6, layout=w.Layout(width="100%"))
        self.detail = w.HTML()
        self.run_mock_button = _button("Run on mock", "flask")
        self.run_private_button = _button("Run on private", "play", "primary")
        self.approve_button = _button("Approve & release", "check", "success")
        self.deny_button = _button("Deny", "times", "danger")
        self.progress = w.FloatProgress(value=0.0, min=0.0, max=1.0, layout={"display": "none"})
        self.progress_label = w.Label()
        self.justification = w.Textarea(layout=w.Layout(width="100%", height="4em"))
        self.release_logs = w.Checkbox(
            value=False, description="Also release stdout/stderr", indent=False
        )
        self.reason = w.Textarea(
            placeholder="Reason for the scientist (required to deny)",
            layout=w.Layout(width="100%", height="4em"),
        )
        self.message = w.HTML()
        self.preview = w.HTML()
        self.history = w.HTML()

        actions = w.HBox(
            [
                self.run_mock_button,
                self.run_private_button,
                self.approve_button,
                self.deny_button,
            ]
        )
        requests_page = w.VBox(
            [
                w.HBox([self.filter, self.refresh_button, self.refreshed]),
                self.queue,
                self.selector,
                self.detail,
                actions,
                w.HBox([self.progress, self.progress_label]),
                self.message,
                self.preview,
                self.justification,
                self.release_logs,
                self.reason,
            ]
        )
        self.tabs = w.Tab([requests_page, self.history])
        self.tabs.set_title(0, "Requests")
        self.tabs.set_title(1, "History")
        super().__init__([self.header, self.tabs])
        self.add_class("rds-review-desk")

        self.filter.observe(lambda _: self.refresh(force=True), "value")
        self.selector.observe(lambda _: self._show_selected(), "value")
        self.justification.observe(lambda _: self._sync_buttons(), "value")
        self.reason.observe(lambda _: self._sync_buttons(), "value")
        self.refresh_button.on_click(lambda _: self.refresh(force=True))
        self.run_mock_button.on_click(lambda _: self._start("mock"))
        self.run_private_button.on_click(lambda _: self._start("private"))
        self.approve_button.on_click(lambda _: self._decide(self._approve))
        self.deny_button.on_click(lambda _: self._decide(self._deny))

        self.refresh(force=True)
        self._poller: Poller | None = None
        if refresh_every:
            self._poller = Poller(
                lambda: self.refresh() or True, interval=refresh_every, on_error=self._poll_failed
            ).start()

    # -- the queue -----------------------------------------------------------------
    def refresh(self, *, force: bool = False) -> bool:
        """Re-read the requests; redraw if anything changed (or ``force``). True if redrawn."""
        with self._lock:
            requests = self.domain.requests
            signature = tuple((r.id, r.listed_status, r._record.stage) for r in requests)
            self.refreshed.value = f"refreshed {time.strftime('%H:%M:%S')}"
            if signature == self._signature and not force:
                return False
            self._signature = signature
            self._requests = {r.id: r for r in requests}
            shown = [r for r in requests if self._matches(r)]
            self.header.value = desk_html.desk_header(self.domain.name, requests)
            self.queue.value = desk_html.queue_table(shown)
            current = self.selector.value
            options = [(desk_html.queue_label(r), r.id) for r in shown]  # oldest first
            self.selector.options = options
            ids = [value for _, value in options]
            # Keep the selection; once it is decided (or filtered out), go on to the oldest
            # request shown, as the next one to look at.
            self.selector.value = current if current in ids else (ids[0] if ids else None)
            entries = self.domain.ledger.entries()
            self.history.value = desk_html.history_table(entries) + desk_html.ledger_table(
                entries_frame(entries[-LEDGER_LINES:])
            )
            self._show_selected()
            return True

    def _matches(self, req: OwnerRequest) -> bool:
        status = req.listed_status
        wanted = self.filter.value
        return wanted == "all" or status == wanted or (wanted == "waiting" and status in WAITING)

    def select(self, request_id: str) -> None:
        """Show one request (switching the filter to "All" if it is filtered out)."""
        if request_id not in self._requests:
            self.refresh(force=True)
        if request_id not in [value for _, value in self.selector.options]:
            self.filter.value = "all"
        self.selector.value = request_id

    @property
    def selected(self) -> OwnerRequest | None:
        value = self.selector.value
        return None if value is None else self._requests.get(value)

    def _show_selected(self) -> None:
        req = self.selected
        shown = None if req is None else req.id
        if shown != self._shown:  # a message belongs to the request it was about
            self.message.value = ""
            self._shown = shown
        if req is None:
            self.detail.value = desk_html.nothing_selected(self.filter.value)
            self.preview.value = ""
            self._sync_buttons()
            return
        self.detail.value = desk_html.request_detail(self.domain, req)
        preview = req.preview
        self.preview.value = "" if preview is None else desk_html.preview_html(preview)
        self._sync_buttons()

    # -- buttons -------------------------------------------------------------------
    def _sync_buttons(self) -> None:
        req = self.selected
        status = None if req is None else req.listed_status
        open_ = status in WAITING and not self._busy
        runnable = open_ and req is not None and req.kind in ("python", "sql", "dp")
        failed = bool(req is not None and status == "ran" and _failed_checks(req))
        justified = bool(self.justification.value.strip())
        preview = req.preview if req is not None and status == "ran" else None
        domain_fault = preview is not None and preview.fault == "domain"
        self.run_mock_button.disabled = not runnable
        # A DP answer's noise is drawn once; running again would only show the same answer.
        self.run_private_button.disabled = not runnable or (
            req is not None and req.kind == "dp" and status == "ran" and not domain_fault
        )
        self.approve_button.disabled = (
            not open_ or status != "ran" or domain_fault or (failed and not justified)
        )
        self.deny_button.disabled = not open_ or not self.reason.value.strip()
        self.justification.placeholder = (
            "Justification (required: a check failed; it goes in the ledger)"
            if failed
            else "Note for the ledger (optional)"
        )
        self.approve_button.tooltip = _approve_hint(status, failed, justified, domain_fault)
        self.deny_button.tooltip = "" if self.reason.value.strip() else "Write a reason first."

    def _start(self, where: str) -> None:
        req = self.selected
        if req is None or self._busy:
            return
        self._busy = True
        self._sync_buttons()
        if self.background:
            self._worker = threading.Thread(
                target=self._run, args=(req, where), name="rds-review-run", daemon=True
            )
            self._worker.start()
        else:
            self._run(req, where)

    def wait(self, timeout: float | None = None) -> None:
        """Wait for a run started by a button (tests and scripted notebooks use this)."""
        if self._worker is not None:
            self._worker.join(timeout)

    def _run(self, req: OwnerRequest, where: str) -> None:
        label = "Running on the mock…" if where == "mock" else "Running on the private data…"
        from rds.worker.policy import sandbox_limits

        limit = sandbox_limits(self.domain, req.datasets).wall_seconds
        done = threading.Event()
        ticker = threading.Thread(target=self._tick, args=(label, limit, done), daemon=True)
        self.progress.bar_style = ""
        self.progress.layout.display = None
        ticker.start()
        try:
            preview = req.run_on_mock() if where == "mock" else req.run()
        except Exception as exc:  # a worker thread's error would otherwise be lost
            self._show_error(exc)
            self.progress.bar_style = "danger"
        else:
            self._show_run(preview)
            self.progress.bar_style = "success" if preview.ok else "warning"
        finally:
            done.set()
            ticker.join()
            self._busy = False
            self.refresh(force=True)

    def _tick(self, label: str, limit: float, done: threading.Event) -> None:
        start = time.monotonic()
        while not done.wait(0.2):
            elapsed = time.monotonic() - start
            self.progress.value = min(0.99, elapsed / limit)
            self.progress_label.value = f"{label} {elapsed:.1f}s (limit {limit:g}s)"
        self.progress.value = 1.0
        self.progress_label.value = f"Finished in {time.monotonic() - start:.2f}s"

    def _show_run(self, preview: RunPreview) -> None:
        html = desk_html.preview_html(preview)
        if preview.on_mock:
            # A mock run is shown but not kept; the private preview stays on disk.
            self.message.value = html
        else:
            self.preview.value = html

    # -- decisions -----------------------------------------------------------------
    def _decide(self, action: Callable[[OwnerRequest], str]) -> None:
        req = self.selected
        if req is None or self._busy:
            return
        try:
            done = action(req)
        except RDSError as exc:
            self._show_error(exc)
            return
        self.justification.value = ""
        self.reason.value = ""
        self.refresh(force=True)
        self.message.value = notice(done, tone="ok")

    def _approve(self, req: OwnerRequest) -> str:
        text = self.justification.value.strip() or None
        failed = _failed_checks(req)
        req.approve(
            note=None if failed else text,
            justification=text if failed else None,
            release_logs=self.release_logs.value,
        )
        return f"Released request {req.id[:8]} to {req.scientist}."

    def _deny(self, req: OwnerRequest) -> str:
        req.deny(self.reason.value)
        return f"Denied request {req.id[:8]}; {req.scientist} sees your reason."

    def _show_error(self, exc: BaseException) -> None:
        self.message.value = notice(str(exc), tone="fail")

    def _poll_failed(self, exc: Exception) -> None:
        self.refreshed.value = f"auto-refresh stopped: {exc}"

    def close(self) -> None:
        if self._poller is not None:
            self._poller.stop()
        super().close()


def _button(description: str, icon: str, style: str = "") -> w.Button:
    """A button as wide as its label (ipywidgets' fixed width cuts longer labels)."""
    return w.Button(
        description=description, icon=icon, button_style=style, layout=w.Layout(width="auto")
    )


def _failed_checks(req: OwnerRequest) -> list[str]:
    report = req.checks
    return [] if report is None else [c.rule for c in report.failed]


def _approve_hint(status: str | None, failed: bool, justified: bool, domain_fault: bool) -> str:
    if status not in WAITING:
        return "Already decided."
    if status != "ran":
        return "Run it on the private data first, and look at the preview."
    if domain_fault:
        return "The sandbox did not start (the domain's failure): mend it and run again."
    if failed and not justified:
        return "A check failed: write a justification to release anyway."
    return ""
