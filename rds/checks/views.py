"""Offline HTML for a check report, for the owner's desk and the scientist's notebook."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rds.widgets.html import badge, card, table, verdict_tone

if TYPE_CHECKING:
    from rds.checks.report import CheckReport


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
