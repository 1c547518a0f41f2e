"""Offline HTML for differential privacy: ε budgets as bars (spent, pending, remaining), a
released answer with each cell's relative error, and what a release spent."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rds.widgets.html import badge, card, esc, fields, notice, table

if TYPE_CHECKING:
    import pandas as pd

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


def answer_html(
    frame: pd.DataFrame,
    *,
    keys: Sequence[str],
    measures: Sequence[str],
    swamped: pd.DataFrame,
    privacy: dict[str, Any],
    max_rows: int = 50,
) -> str:
    """A released DP table: each cell's value, 95% interval and relative error, the cells
    whose noise is as large as their value flagged (``frame`` has ``<m>_rel_error``)."""
    flagged = int(sum(swamped[m].sum() for m in measures))
    cells = len(frame) * len(measures)
    columns = [*keys]
    for m in measures:
        columns += [m, f"{m} 95% interval", f"{m} ± relative"]
    rows = []
    for i in range(min(len(frame), max_rows)):
        row: list[object] = [frame[k].iloc[i] for k in keys]
        for m in measures:
            value, error = frame[m].iloc[i], float(frame[f"{m}_rel_error"].iloc[i])
            shown = esc(_number(value))
            if bool(swamped[m].iloc[i]):
                shown += " " + badge("noise ≥ value", "warn")
            interval = f"{_number(frame[f'{m}_ci_low'].iloc[i])} to "
            interval += _number(frame[f"{m}_ci_high"].iloc[i])
            row += [shown, interval, _relative(error)]
        rows.append(row)
    html_columns = set(measures)
    body = fields(
        [
            ("ε spent", _number(privacy.get("epsilon"))),
            ("δ", _number(privacy.get("delta") or 0)),
            ("noise", privacy.get("mechanism", "")),
        ]
    )
    if flagged:
        body += notice(
            f"{flagged} of {cells} cells: the noise is as large as the value (the 95% "
            "interval's half-width is at least |value|), so these are no findings. More ε, "
            "fewer or larger groups, or a wider question narrow them.",
            tone="warn",
        )
    body += table(columns, rows, html_columns=html_columns)
    if len(frame) > max_rows:
        body += f'<p class="rds-note">first {max_rows} of {len(frame)} groups</p>'
    subtitle = f"{len(frame)} group(s) · 95% intervals from the noise alone"
    return card("Differentially private answer", body, subtitle=subtitle)


def _number(value: object) -> str:
    if isinstance(value, float | int) and not isinstance(value, bool):
        return f"{value:.6g}"
    if hasattr(value, "item"):  # a NumPy scalar
        return _number(value.item())
    return str(value)


def _relative(error: float) -> str:
    if math.isnan(error):
        return "no value"
    if math.isinf(error):
        return "∞ (value 0)"
    return f"{error:.0%}" if error >= 0.01 else f"{error:.2%}"


def privacy_html(privacy: dict[str, Any]) -> str:
    """What a DP release spent (ε, δ, mechanism) and, per measure, its noise and coverage."""
    scales = privacy.get("noise_scale") or {}
    coverage = privacy.get("coverage") or {}
    body = fields(
        [
            ("ε spent", _number(privacy.get("epsilon"))),
            ("δ", _number(privacy.get("delta") or 0)),
            ("noise", privacy.get("mechanism", "")),
            ("intervals", f"{_number(100 * float(privacy.get('confidence', 0.95)))}%"),
        ]
    )
    rows = [
        (m, _number(scale), f"{100 * coverage[m]:.1f}%" if m in coverage else "")
        for m, scale in scales.items()
    ]
    body += table(["measure", "noise scale (its units)", "interval coverage"], rows)
    body += (
        '<p class="rds-note">For an average, the noise scale is its sum\'s; divided by the '
        "group's count it is the average's.</p>"
    )
    return card("Differential privacy", body, subtitle="what this answer spent")
