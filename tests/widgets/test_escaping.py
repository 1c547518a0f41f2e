"""Text written by someone else is inert wherever rds renders it.

Owners write dataset descriptions, column names, category values and denial reasons that
scientists see; scientists write code, SQL, reasons and (through their code) results and
stdout that owners see. Every payload below goes through the real path (publish, submit,
run in the sandbox, review, deny) and every HTML rds produces is parsed: only tags from a
small allow-list, no event-handler attributes, no script, no external URL.
"""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

import rds
from rds.domain.desk import ReviewDesk
from rds.scientist.tracker import RequestTracker, SessionTracker

SCRIPT = "<script>alert('xss')</script>"
IMG = '<img src=x onerror="alert(1)">'
SVG = '"><svg onload=alert(2)>'
PAYLOAD = f"{SCRIPT}{IMG}{SVG}"

ALLOWED = {
    "div", "span", "p", "b", "i", "em", "strong", "code", "pre", "br", "h3", "h4", "h5",
    "table", "thead", "tbody", "tr", "th", "td", "dl", "dt", "dd", "ul", "li", "style",
    "small", "details", "summary", "svg", "rect", "text", "title", "header", "section",
}  # fmt: skip


class _Inspector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED:
            self.problems.append(f"tag <{tag}>")
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"attribute {name} on <{tag}>")
            if name in {"src", "href", "xlink:href", "action"}:
                self.problems.append(f"{name}={value!r} on <{tag}>")
            if value and "javascript:" in value.lower():
                self.problems.append(f"javascript: URL in {name}")


def assert_inert(html: str) -> None:
    inspector = _Inspector()
    inspector.feed(html)
    inspector.close()
    assert not inspector.problems, inspector.problems
    assert "http://" not in html and "https://" not in html  # offline: no external assets


def shout(df):
    print("<script>alert('stdout')</script>")
    return df.groupby("ward").size().rename("<img src=x onerror=alert(3)>").to_frame()


@pytest.fixture
def hostile(tmp_path: Path) -> rds.Domain:
    frame = pd.DataFrame(
        {
            "ward": [f"ward {SCRIPT}" if i % 2 else f"ward {IMG}" for i in range(60)],
            IMG: list(range(60)),
        }
    )
    domain = rds.Domain.create("Hostile <b>Hospital</b>", path=tmp_path / "d")
    with pytest.raises(rds.InvalidInput):
        domain.publish(PAYLOAD, frame, description="a name that is markup")
    domain.publish("wards", frame, description=f"Owner wrote {PAYLOAD}", contact=PAYLOAD)
    yield domain
    domain.close()


def test_every_rendering_is_inert(hostile: rds.Domain) -> None:
    creds = hostile.add_scientist("mallory@uni.example.org")
    session = rds.connect(hostile, email=creds.email, password=creds.password)
    ds = session.dataset("wards")
    req = ds.request(shout, reason=f"reason {PAYLOAD}")
    sql = ds.sql(f"SELECT ward, COUNT(*) AS n FROM wards WHERE ward <> '{IMG}' GROUP BY ward",
                 reason=PAYLOAD)  # fmt: skip

    desk = ReviewDesk(hostile, refresh_every=None, background=False)
    try:
        for target in (req, sql):
            desk.select(target.id)
            desk.run_mock_button.click()
            desk.run_private_button.click()
            rendered = [desk.header, desk.queue, desk.detail, desk.preview, desk.message]
            for widget in rendered:
                assert_inert(widget.value)
            assert "&lt;script&gt;" in desk.detail.value  # shown, escaped, not dropped
        assert "&lt;script&gt;alert(&#x27;stdout&#x27;)" in desk.preview.value or (
            "&lt;script&gt;" in desk.preview.value
        )
        desk.select(req.id)
        desk.justification.value = f"justified {PAYLOAD}"
        desk.approve_button.click()
        desk.select(sql.id)
        desk.reason.value = f"denied {PAYLOAD}"
        desk.deny_button.click()
        assert_inert(desk.history.value)
        assert "denied &lt;script&gt;" in desk.history.value
        assert_inert(hostile.request(req.id)._repr_html_())
    finally:
        desk.close()

    req.result(timeout=30, progress=False)
    with pytest.raises(rds.RequestDenied):
        sql.result(timeout=30, progress=False)
    for html in (
        session._repr_html_(),
        session.datasets._repr_html_(),
        ds._repr_html_(),
        req._repr_html_(),
        sql._repr_html_(),
        session.requests._repr_html_(),
        session.budgets._repr_html_(),
    ):
        assert_inert(html)
    assert "Owner wrote &lt;script&gt;" in ds._repr_html_()
    assert "denied &lt;script&gt;" in sql._repr_html_()
    for tracker in (RequestTracker(req), RequestTracker(sql), SessionTracker(session)):
        for child in tracker.children:
            assert_inert(child.value)
        tracker.close()
    assert req.checks is not None
    assert_inert(req.checks._repr_html_())
