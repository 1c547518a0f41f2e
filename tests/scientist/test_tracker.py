"""The scientist's side: live status, request listing, budget bars, offline reprs."""

from __future__ import annotations

import time

import pytest

import rds
from rds.scientist.tracker import RequestTracker, SessionTracker, WaitBar


def mean_age(df):
    return float(df["age"].mean())


def _until(predicate, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_request_tracker_follows_every_step(domain: rds.Domain, session: rds.Session) -> None:
    req = session.dataset("patients").request(mean_age, reason="age profile")
    tracker = RequestTracker(req, poll=0.1)
    try:
        # An embedded domain picks a request up as it is submitted.
        assert tracker.status == "awaiting review"
        assert "awaiting review" in tracker.steps.value
        owner = domain.request(req.id)
        owner.run()
        owner.approve()
        assert _until(lambda: tracker.status == "released")
        assert _until(lambda: not tracker._poller.running)  # stops once the request ended
        assert "released" in tracker.steps.value and "pass" in tracker.steps.value
    finally:
        tracker.close()


def test_no_verdict_before_a_release(domain: rds.Domain, session: rds.Session) -> None:
    # The stage is a request tag the owner sets; the scientist reads it over syft.
    req = session.dataset("patients").request(mean_age, reason="age profile")
    domain._conn.set_stage(req.id, "review", checks="fail")
    assert req.status == "awaiting review"
    assert req.verdict is None  # no verdict leaks before a release


def test_denial_shows_the_owner_reason(domain: rds.Domain, session: rds.Session) -> None:
    req = session.dataset("patients").request(mean_age, reason="age profile")
    domain.request(req.id).deny("Use the DP query instead.")
    tracker = RequestTracker(req, poll=0.1)
    try:
        assert tracker.status == "denied" and tracker._poller is None
        assert "Use the DP query instead." in tracker.steps.value
    finally:
        tracker.close()


def test_session_lists_requests_with_status_and_verdicts(
    domain: rds.Domain, session: rds.Session
) -> None:
    ds = session.dataset("patients")
    released = ds.request(mean_age, reason="first")
    waiting = ds.request(mean_age, reason="second")
    owner = domain.request(released.id)
    owner.run()
    owner.approve()
    listing = session.requests
    assert [r.id for r in listing] == [released.id, waiting.id]
    frame = listing.to_frame()
    assert frame["status"].tolist() == ["released", "awaiting review"]
    assert frame["checks"].tolist() == ["pass", None]
    assert frame["reason"].tolist() == ["first", "second"]
    html = listing._repr_html_()
    assert "released" in html and "awaiting review" in html and "mean_age()" in html
    tracker = SessionTracker(session, poll=0.1)
    try:
        assert released.id[:8] in tracker.table.value
        assert tracker._poller is not None  # one request is still open
        domain.request(waiting.id).deny("duplicate")
        assert _until(lambda: not tracker._poller.running)
        assert "duplicate" in tracker.table.value
    finally:
        tracker.close()


def test_budget_is_drawn(domain: rds.Domain, session: rds.Session) -> None:
    domain.set_policy("patients", rds.Policy(epsilon_budget=2.0, auto_release="dp"))
    ds = session.dataset("patients")
    ds.sql("SELECT COUNT(*) AS n FROM patients", epsilon=0.5, reason="count").result(
        timeout=30, progress=False
    )
    budget = session.budget("patients")
    html = budget._repr_html_()
    assert "<svg" in html and "ε spent 0.5" in html and "remaining 1.5 of 2" in html
    # The spent bar is a quarter of the full one.
    assert 'width="80.0" height="20" fill="#c0392b"' in html
    budgets = session.budgets
    assert [b.dataset for b in budgets] == ["patients"]
    assert "patients" in budgets._repr_html_()


def test_reprs_outside_a_kernel_are_static_html(session: rds.Session) -> None:
    req = session.dataset("patients").request(mean_age, reason="age profile")
    bundle = req._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html"}  # no kernel: no widget
    assert "awaiting review" in bundle["text/html"]
    ds_html = session.dataset("patients")._repr_html_()
    assert "Schema" in ds_html and "Mock data" in ds_html and "age" in ds_html
    assert "NaN" not in ds_html and "None" not in ds_html  # unset bounds/categories are blank
    assert "Test Hospital" in session._repr_html_()
    assert "patients" in session.datasets._repr_html_()
    assert session.datasets["patients"].name == "patients"
    with pytest.raises(rds.DatasetNotFound):
        session.datasets["nope"]


def test_wait_bar_states() -> None:
    bar = WaitBar(timeout=10)
    assert not bar.shown  # an answer already there shows no bar
    bar.update("submitted", 2.5)
    assert bar.shown
    assert bar.bar.value == pytest.approx(0.25) and "submitted" in bar.label.value
    bar.finish("released")
    assert bar.bar.bar_style == "success" and bar.label.value == "Released."
    endless = WaitBar(timeout=None)
    endless.update("awaiting review", 40)
    assert endless.bar.value == pytest.approx(2 / 4)  # the second of three steps
    endless.close()
    assert "interrupted" in endless.label.value


def test_stopping_a_poller_waits_for_the_tick_in_flight() -> None:
    """A closed widget must not read the domain any more: its owner may delete it next."""
    import threading

    from rds.widgets.poller import Poller

    inside, finished = threading.Event(), []

    def tick() -> bool:
        inside.set()
        time.sleep(0.5)  # a slow read of the domain
        finished.append(time.monotonic())
        return True

    poller = Poller(tick, interval=0.01).start()
    assert inside.wait(10)
    poller.stop()
    stopped = time.monotonic()
    assert finished and finished[0] <= stopped  # the read ended before stop() returned
    assert not poller.running


def test_a_notebooks_own_logging_survives_widgets_polling(
    domain: rds.Domain, session: rds.Session
) -> None:
    """The desk and a tracker poll syft from daemon threads; while one is inside syft, rds
    quiets syft's loggers only, never the root logger the notebook's own logging uses."""
    import logging

    req = session.dataset("patients").request(mean_age, reason="age profile")
    tracker = RequestTracker(req, poll=0.01)
    desk = domain.review(refresh_every=0.01)
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    root, keep = logging.getLogger(), Keep()
    level = root.level
    root.addHandler(keep)
    root.setLevel(logging.INFO)
    try:
        mine = logging.getLogger("my_analysis")
        for i in range(300):
            mine.info("step %d", i)
            time.sleep(0.005)
        assert tracker._poller is not None and tracker._poller.running  # polled throughout
    finally:
        root.removeHandler(keep)
        root.setLevel(level)
        tracker.close()
        desk.close()
    assert [m for m in seen if m.startswith("step ")] == [f"step {i}" for i in range(300)]
