"""Offline HTML for ε budgets: one bar per dataset (spent, pending, remaining)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rds.widgets.html import badge, card, esc

if TYPE_CHECKING:
    from rds.dp.budget import Budget


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
