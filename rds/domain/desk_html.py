"""Offline HTML for the owner's review desk: the queue, one request, a run, the history.

Everything a scientist wrote (code, SQL, reason, function name) and everything a run
produced (result, stdout, stderr, error) is escaped before it reaches the page.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from rds.checks.views import report_html
from rds.request.status import KIND_LABELS
from rds.widgets.html import (
    badge,
    card,
    esc,
    fields,
    frame,
    highlight,
    status_tone,
    styled,
    table,
    verdict_tone,
)

if TYPE_CHECKING:
    from rds.domain.domain import Domain
    from rds.domain.requests import OwnerRequest, RunPreview
    from rds.ledger.ledger import Entry

#: Longest stdout/stderr/result text shown inline; the rest is cut with a note.
MAX_TEXT = 4000
DECISIONS = ("approved", "denied")


def kind_label(req: OwnerRequest) -> str:
    label = KIND_LABELS.get(req.kind, req.kind)
    return f"{label} {req.function}()" if req.kind == "python" and req.function else label


def desk_header(domain_name: str, requests: Sequence[OwnerRequest]) -> str:
    counts = Counter(r.listed_status for r in requests)
    summary = " ".join(
        badge(f"{counts[s]} {s}", status_tone(s))
        for s in ("submitted", "invalid", "ran", "released", "denied", "withdrawn")
    )
    return card("Review desk", f"<p>{summary}</p>", subtitle=domain_name)


def queue_table(requests: Sequence[OwnerRequest]) -> str:
    if not requests:
        return styled("<p>No requests here.</p>")
    rows = []
    for r in requests:  # oldest first, as the selector below lists them
        report = r.checks if r.listed_status != "submitted" else None
        verdict = None if report is None else report.verdict
        rows.append(
            (
                r.id[:8],
                kind_label(r),
                r.scientist,
                ", ".join(r.datasets),
                r.submitted_at.strftime("%Y-%m-%d %H:%M:%S"),
                badge(r.listed_status, status_tone(r.listed_status)),
                badge(verdict or "not run", verdict_tone(verdict)),
            )
        )
    columns = ["id", "kind", "scientist", "datasets", "submitted", "status", "checks"]
    return styled(table(columns, rows, html_columns={"status", "checks"}))


def queue_label(req: OwnerRequest) -> str:
    """Plain text for the queue's selector (the widget shows it as text, never HTML)."""
    when = req.submitted_at.strftime("%H:%M:%S")
    datasets = ", ".join(req.datasets)
    parts = [req.id[:8], req.listed_status, kind_label(req), datasets, req.scientist, when]
    return " · ".join(parts)


def nothing_selected(filter_value: str) -> str:
    return card("", f"<p>No request selected (showing: {esc(filter_value)}).</p>")


def request_detail(domain: Domain, req: OwnerRequest) -> str:
    """The selected request: who, why, what code, what it touches, what it costs."""
    from rds.checks.code_notes import python_notes, sql_notes
    from rds.worker.policy import combined_policy

    status = req.listed_status
    pairs: list[tuple[str, object]] = [
        ("status", badge(status, status_tone(status))),
        ("scientist", req.scientist),
        ("submitted", req.submitted_at.strftime("%Y-%m-%d %H:%M:%S UTC")),
        ("kind", kind_label(req)),
        ("datasets", ", ".join(req.datasets) or "none declared"),
        ("reason", req.reason or "(none given)"),
    ]
    if req.problem is not None:
        pairs.append(("invalid because", f"{req.problem} rds will not run it; deny it."))
    if status == "denied":
        pairs.append(("denied because", req.deny_reason or ""))
    body = fields(pairs, html_values={"status"})
    if req.problem is not None:
        header = json.dumps(req._record.meta, indent=1, sort_keys=True, default=str)
        body += "<h4>Header as submitted</h4>" + highlight(header[:MAX_TEXT], "json")
    if req.kind in ("sql", "dp"):
        body += "<h4>SQL</h4>" + highlight(req.sql, "sql")
        notes = sql_notes(req.sql)
    else:
        body += "<h4>Code</h4>" + highlight(req.code, "python")
        notes = python_notes(req.code)
    body += "<h4>Static notes</h4>"
    body += table(
        ["", "line", "note"],
        [
            (badge(n.severity, "warn" if n.severity == "warn" else "info"), n.line or "", n.text)
            for n in notes
        ],
        html_columns={""},
    )
    known = [name for name in req.datasets if name in domain.store.names()]
    if known:
        body += "<h4>Policy that applies</h4>" + _policy(combined_policy(domain, known).describe())
    if req.kind == "dp" and req.dataset:
        body += "<h4>Privacy cost</h4>" + _cost(domain, req)
    if status not in ("released", "denied") and req.datasets:
        body += _earlier(domain, req)
    return card(f"Request {req.id[:8]}", body, subtitle=f"{kind_label(req)} from {req.scientist}")


def _earlier(domain: Domain, req: OwnerRequest) -> str:
    """What this scientist already has on these datasets: the other half of a difference."""
    from rds.domain.overlap import earlier_releases

    earlier = earlier_releases(domain, req)
    title = f"<h4>Already released to {esc(req.scientist)} on these datasets</h4>"
    if not earlier:
        return title + "<p>Nothing yet: this would be the first release.</p>"
    rows = [
        (
            e.released_at[:19].replace("T", " "),
            KIND_LABELS.get(e.kind, e.kind),
            badge(e.note, "warn" if e.same_but_conditions else "info"),
            e.text if len(e.text) <= 300 else e.text[:300] + " …",
        )
        for e in earlier
    ]
    return title + table(
        ["released", "kind", "overlap", "query or code"], rows, html_columns={"overlap"}
    )


def _policy(summary: dict[str, Any]) -> str:
    return fields(
        [
            ("release", summary["release"]),
            ("min cell count", summary["min_cell_count"]),
            ("dominance (n, k)", tuple(summary["dominance"])),
            ("p-ratio", summary["p_ratio"]),
            ("on a failed check", summary["on_fail"]),
            ("identifying columns", ", ".join(summary["identifying"]) or "none"),
            ("row-level columns allowed", ", ".join(summary["non_sensitive"]) or "none"),
            ("ε budget per scientist", summary["epsilon_budget"] or "no DP queries"),
        ]
    )


def _cost(domain: Domain, req: OwnerRequest) -> str:
    dataset = req.dataset or ""
    budget = domain.budget(dataset, req.scientist)
    left = "no budget set" if budget.epsilon_budget is None else f"{budget.remaining:g}"
    return fields(
        [
            ("ε this query", f"{req.epsilon:g}" + (f" (δ {req.delta:g})" if req.delta else "")),
            (
                f"{req.scientist} on {dataset}",
                f"spent {budget.spent:g}, pending {budget.pending:g}",
            ),
            ("remaining", left),
        ]
    )


def preview_html(preview: RunPreview) -> str:
    """A run's outcome for the owner: result, logs, duration and (private runs) checks."""
    if preview.on_mock:
        title, note = "Run on mock", "on the published mock data; not checked, not released"
    else:
        title, note = "Preview on private data", "owner only: nothing here has been released"
    state = badge("ok", "ok") if preview.ok else badge(f"failed: {preview.error_type}", "fail")
    pairs: list[tuple[str, object]] = [
        ("outcome", state),
        ("duration", f"{preview.duration:.2f}s"),
        ("sandboxed", "yes (bubblewrap)" if preview.sandboxed else "NO: ran without bubblewrap"),
    ]
    if preview.privacy:
        pairs.append(("privacy", _privacy_text(preview.privacy)))
    if preview.next_step and not preview.on_mock:
        pairs.append(("what to do", preview.next_step))
    body = fields(pairs, html_values={"outcome"})
    if preview.ok:
        body += "<h4>Result</h4>" + _value(preview.result)
    elif preview.error:
        body += "<h4>Error</h4>" + _pre(preview.error)
    if preview.stdout:
        body += "<h4>stdout</h4>" + _pre(preview.stdout)
    if preview.stderr:
        body += "<h4>stderr</h4>" + _pre(preview.stderr)
    if not preview.on_mock:
        body += "<h4>Checks</h4>" + report_html(preview.checks, framed=False)
    return card(title, body, subtitle=note)


def _privacy_text(privacy: dict[str, Any]) -> str:
    eps, delta = privacy.get("epsilon"), privacy.get("delta")
    return f"ε {eps}, δ {delta}, {privacy.get('mechanism', '')} noise"


def _value(value: object) -> str:
    if isinstance(value, pd.DataFrame):
        return frame(value, max_rows=20)
    if isinstance(value, pd.Series):
        return frame(value.to_frame(), max_rows=20)
    return _pre(repr(value))


def _pre(text: str) -> str:
    cut = len(text) - MAX_TEXT
    shown = text[:MAX_TEXT] + (f"\n… {cut} more characters" if cut > 0 else "")
    return f'<pre class="rds-pre">{esc(shown)}</pre>'


def history_table(entries: Iterable[Entry]) -> str:
    """Every decision in the ledger: what, who, when, why."""
    rows = []
    for e in entries:
        if e.event not in DECISIONS:
            continue
        data = e.data
        why = (
            data.get("reason")
            or data.get("justification")
            or data.get("note")
            or (f"policy {data['policy']}" if data.get("policy") else "")
        )
        tone = "ok" if e.event == "approved" else "fail"
        failed = ", ".join(data.get("failed_checks") or [])
        checks = data.get("checks")
        rows.append(
            (
                e.time.replace("T", " ")[:19],
                str(data.get("request", ""))[:8],
                badge(e.event, tone),
                e.actor,
                why,
                (checks or "") + (f" (failed: {failed})" if failed else ""),
            )
        )
    if not rows:
        return card("History", "<p>No decisions yet.</p>")
    rows.reverse()
    columns = ["when (UTC)", "request", "decision", "by", "why", "checks"]
    return card("History", table(columns, rows, html_columns={"decision"}), subtitle="ledger")


def ledger_table(lines: pd.DataFrame) -> str:
    """The ledger's newest entries, one line each (``Ledger.to_frame``), newest first."""
    if lines.empty:
        return card("Ledger", "<p>The ledger is empty.</p>")
    shown = lines.iloc[::-1].fillna("")
    return card(
        "Ledger",
        frame(shown, max_rows=len(shown)),
        subtitle=f"the newest {len(shown)} entries; domain.ledger.to_frame() has them all",
    )
