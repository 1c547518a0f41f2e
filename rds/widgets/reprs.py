"""Offline HTML for what a scientist's notebook shows: session, datasets, requests, budgets.

Built from ``rds.widgets.html``: no external assets, and every string that came from
someone else (an owner's dataset description, a scientist's reason) escaped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from rds.widgets.html import badge, card, esc, fields, frame, status_tone, table, verdict_tone

if TYPE_CHECKING:
    from rds.domain.requests import RunPreview
    from rds.privacy.budget import Budget
    from rds.privacy.report import CheckReport
    from rds.scientist.dataset import RemoteDataset
    from rds.scientist.request import Request
    from rds.scientist.session import Session

KIND_LABELS = {"python": "function", "sql": "SQL", "dp": "DP SQL", "invalid": "invalid"}


def notice(text: str, *, tone: str) -> str:
    """A one-line message (an error, a confirmation) in the desk or a tracker."""
    return card("", f'<div class="rds-notice">{badge(tone, tone)} {esc(text)}</div>')


def session_html(session: Session, *, requests: bool = True) -> str:
    datasets = session.datasets
    body = fields(
        [
            ("signed in as", session.email),
            ("domain", session.domain_name),
            ("datasets", len(datasets)),
        ]
    )
    body += _datasets_table(datasets)
    if requests:
        body += "<h4>Your requests</h4>" + _requests_table(session.requests)
    return card("rds session", body, subtitle=f"{session.email} @ {session.domain_name}")


def datasets_html(datasets: Sequence[RemoteDataset]) -> str:
    return card("Datasets", _datasets_table(datasets), subtitle=f"{len(datasets)} published")


def _datasets_table(datasets: Sequence[RemoteDataset]) -> str:
    if not datasets:
        return "<p>No datasets are published yet.</p>"
    return table(
        ["name", "description", "rows", "columns", "release", "contact"],
        [
            (
                d.name,
                d.description,
                d.rows,
                len(d.schema),
                d.policy.get("release", ""),
                d.contact or "",
            )
            for d in datasets
        ],
    )


def dataset_html(ds: RemoteDataset) -> str:
    policy = ds.policy
    unit = ds.privacy_unit
    pairs: list[tuple[str, object]] = [
        ("rows", ds.rows),
        ("release", policy.get("release", "")),
        ("privacy unit", _unit_text(unit)),
        ("ε budget per scientist", policy.get("epsilon_budget") or "no DP queries"),
        ("contact", ds.contact or ""),
    ]
    schema = ds.schema
    body = fields(pairs)
    body += "<h4>Schema</h4>" + table(
        list(schema.columns), [tuple(_cell(v) for v in row) for row in schema.itertuples(False)]
    )
    body += "<h4>Mock data (synthetic; the private rows never leave the domain)</h4>"
    body += frame(ds.mock, max_rows=5)
    return card(ds.name, body, subtitle=ds.description)


def _unit_text(unit: dict[str, object]) -> str:
    column = unit.get("column")
    if not column:
        return "each row"
    return f"{column} (at most {unit.get('max_contributions')} rows each)"


def _cell(value: object) -> object:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    if value is None or (isinstance(value, float) and value != value):  # None or NaN: unset
        return ""
    return value


def steps_html(status: str) -> str:
    """The request's path as a row of steps, the current one highlighted."""
    from rds.scientist.request import STAGES

    if status == "denied":
        return badge("denied", "fail")
    position = STAGES.index(status) if status in STAGES else 0
    parts = []
    for i, stage in enumerate(STAGES):
        tone = "ok" if i < position or status == "released" else "muted"
        if i == position and status != "released":
            tone = status_tone(stage)
        parts.append(badge(stage, tone))
    return '<span class="rds-steps">' + " → ".join(parts) + "</span>"


def report_html(report: CheckReport, *, framed: bool = True) -> str:
    """A check report: its verdict, then one row per rule (owner-only numbers when kept)."""
    rows = []
    for c in report.checks:
        numbers = "; ".join(f"{k} {_number_text(v)}" for k, v in c.numbers.items())
        rows.append((c.rule, badge(c.verdict, verdict_tone(c.verdict)), c.explanation, numbers))
    columns = ["rule", "verdict", "explanation"]
    if any(c.numbers for c in report.checks):
        columns.append("owner-only figures")
    body = table(columns, [r[: len(columns)] for r in rows], html_columns={"verdict"})
    verdict = badge(report.verdict, verdict_tone(report.verdict))
    if not framed:
        return f"<p>verdict {verdict}</p>{body}"
    return card("Checks", f"<p>verdict {verdict}</p>{body}", subtitle=f"{len(rows)} rules")


def _number_text(value: object) -> str:
    if isinstance(value, list):
        return f"[{', '.join(_number_text(v) for v in value[:8])}{', …' * (len(value) > 8)}]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} {_number_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def request_html(req: Request) -> str:
    from rds.scientist.request import scientist_status

    record = req._record or req.refresh()
    status = scientist_status(record)
    pairs: list[tuple[str, object]] = [
        ("status", steps_html(status)),
        ("dataset", req.dataset),
        ("submitted", record.submitted_at.strftime("%Y-%m-%d %H:%M:%S UTC")),
        ("your reason", req.reason),
    ]
    if status == "denied":
        pairs.append(("owner's reason", record.deny_reason or "no reason given"))
    if status == "released":
        verdict = req.verdict
        pairs.append(("checks", badge(verdict or "not recorded", verdict_tone(verdict))))
    body = fields(pairs, html_values={"status", "checks"})
    return card(f"Request {req.id[:8]}", body, subtitle=f"{req.what} on {req.dataset}")


def requests_html(requests: Sequence[Request]) -> str:
    return card("Your requests", _requests_table(requests), subtitle=f"{len(requests)} sent")


def _requests_table(requests: Iterable[Request]) -> str:
    rows = []
    for r in requests:
        s = r.summary()
        status, verdict = s["status"], s["verdict"]
        rows.append(
            (
                r.id[:8],
                s["what"],
                s["dataset"],
                s["submitted_at"].strftime("%Y-%m-%d %H:%M"),
                badge(status, status_tone(status)),
                badge(verdict, verdict_tone(verdict)) if verdict else "",
                s["denial_reason"] if status == "denied" else s["reason"],
            )
        )
    if not rows:
        return "<p>No requests yet.</p>"
    columns = ["id", "what", "dataset", "submitted", "status", "checks", "reason / answer"]
    return table(columns, rows, html_columns={"status", "checks"})


def budgets_html(budgets: Sequence[Budget]) -> str:
    """One bar per dataset: ε spent, pending and remaining, drawn as inline SVG."""
    if not budgets:
        return card("ε budgets", "<p>No dataset here offers differentially private queries.</p>")
    bars = "".join(_budget_bar(b) for b in budgets)
    legend = f"{badge('spent', 'fail')} {badge('pending', 'warn')} {badge('remaining', 'ok')}"
    return card("ε budgets", bars + f"<p>{legend}</p>", subtitle="differential privacy")


def _budget_bar(b: Budget) -> str:
    if b.epsilon_budget is None:
        return f"<p><b>{esc(b.dataset)}</b>: no differentially private queries offered.</p>"
    total = float(b.epsilon_budget) or 1.0
    width = 320.0
    spent = width * min(1.0, b.spent / total)
    pending = width * min(1.0 - spent / width, b.pending / total)
    label = (
        f"ε spent {b.spent:g} · pending {b.pending:g} · remaining {b.remaining:g} "
        f"of {b.epsilon_budget:g}"
    )
    svg = (
        f'<svg class="rds-budget" width="{width + 2:.0f}" height="22" role="img" '
        f'aria-label="{esc(b.dataset)}: {esc(label)}">'
        f'<rect x="1" y="1" width="{width:.1f}" height="20" rx="3" fill="#3a9a5b"/>'
        f'<rect x="1" y="1" width="{spent:.1f}" height="20" fill="#c0392b"/>'
        f'<rect x="{1 + spent:.1f}" y="1" width="{pending:.1f}" height="20" fill="#e0a526"/>'
        "</svg>"
    )
    return f'<div class="rds-budget-row"><b>{esc(b.dataset)}</b> {svg} {esc(label)}</div>'


def run_preview_html(preview: RunPreview) -> str:
    from rds.widgets.review_html import preview_html

    return preview_html(preview)
