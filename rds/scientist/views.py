"""Offline HTML for what a scientist's notebook shows: session, datasets, requests.

Built from ``rds.widgets.html``: no external assets, and every string that came from
someone else (an owner's dataset description, a scientist's reason) escaped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from rds.request.status import STAGES, scientist_status
from rds.widgets.html import badge, card, fields, frame, status_tone, table, verdict_tone

if TYPE_CHECKING:
    from rds.scientist.dataset import RemoteDataset
    from rds.scientist.request import Request
    from rds.scientist.session import Session


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
    if status == "denied":
        return badge("denied", "fail")
    if status == "withdrawn":  # Request.cancel(): the scientist took it back, undecided
        return badge("withdrawn", "muted")
    position = STAGES.index(status) if status in STAGES else 0
    parts = []
    for i, stage in enumerate(STAGES):
        tone = "ok" if i < position or status == "released" else "muted"
        if i == position and status != "released":
            tone = status_tone(stage)
        parts.append(badge(stage, tone))
    return '<span class="rds-steps">' + " → ".join(parts) + "</span>"


def request_html(req: Request) -> str:
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


_POLICY_MEANING = {
    "release": "how answers are released",
    "auto_release": "what the domain releases without the owner",
    "min_cell_count": "people each exact output cell needs",
    "dominance": "N largest people may hold at most this share of a cell",
    "p_ratio": "the rest of a cell must be at least this share of its largest person",
    "on_fail": "when a check fails: block the release or suppress the cells",
    "identifying": "columns whose values never leave the domain",
    "non_sensitive": "columns that may appear row by row",
    "epsilon_budget": "your ε budget for differentially private queries",
    "delta_budget": "your δ budget (Gaussian noise)",
    "min_epsilon": "the least ε one query may spend",
    "limits": "the sandbox's limits for one run",
}


def policy_html(policy: dict[str, object]) -> str:
    """A dataset's release policy as a table: setting, value, what it means."""
    rows = [
        (key, _policy_value(key, value), _POLICY_MEANING.get(key, ""))
        for key, value in policy.items()
    ]
    return card("Release policy", table(["setting", "value", "meaning"], rows))


def _policy_value(key: str, value: object) -> object:
    if key == "dominance" and isinstance(value, list | tuple) and len(value) == 2:
        return f"N={value[0]}, share {value[1]}"
    if key == "epsilon_budget" and value is None:
        return "no DP queries"
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "none"
    return "" if value is None else value
