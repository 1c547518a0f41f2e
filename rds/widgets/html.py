"""Offline, escaped HTML building blocks for rds reprs and widgets.

Two rules hold for everything built here:

- **Offline.** No external assets of any kind: no scripts, no stylesheets or fonts by URL, no
  images. Styling is one ``<style>`` block (``STYLE``) whose rules are all scoped under
  ``.rds``, plus inline colours on highlighted code. Colours come from JupyterLab's theme
  variables (``var(--jp-…)``) with fallbacks that read on both light and dark backgrounds.
- **Escaped.** Every value from outside — a scientist's code, reason or result, an owner's
  description, a DataFrame's values, column names and index — goes through ``esc``. The only
  unescaped inputs are arguments documented as "already HTML" (``body``, ``html_columns``,
  ``html_values``), which callers build from these same helpers.

Examples
--------
>>> card("Request 1f2e", fields([("reason", "<b>why</b>")]), subtitle="SQL")  # doctest: +ELLIPSIS
'<div class="rds"><style>...&lt;b&gt;why&lt;/b&gt;...</div>'
"""

from __future__ import annotations

import html
import numbers
from collections.abc import Collection, Iterable, Sequence
from typing import TYPE_CHECKING

from rds.errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd

TONES = ("ok", "warn", "fail", "info", "muted")

STYLE = """<style>
.rds { font-family: var(--jp-ui-font-family, system-ui, sans-serif);
  font-size: var(--jp-ui-font-size1, 13px); line-height: 1.45;
  color: var(--jp-ui-font-color1, inherit); }
.rds .rds-card { border: 1px solid var(--jp-border-color2, rgba(127, 127, 127, 0.35));
  border-radius: 4px; padding: 8px 12px; margin: 4px 0; overflow-x: auto; }
.rds .rds-head { display: flex; flex-wrap: wrap; align-items: baseline; gap: 4px 10px;
  margin-bottom: 6px; }
.rds .rds-title { font-weight: 600; font-size: var(--jp-ui-font-size2, 15px); }
.rds .rds-subtitle, .rds .rds-note { color: var(--jp-ui-font-color2, inherit); opacity: 0.9; }
.rds .rds-note { font-size: 0.9em; margin: 2px 0; }
.rds h3, .rds h4, .rds h5 { margin: 10px 0 4px; font-size: var(--jp-ui-font-size1, 13px);
  font-weight: 600; color: var(--jp-ui-font-color1, inherit); }
.rds p { margin: 4px 0; }
.rds .rds-badge { display: inline-block; padding: 0 7px; border: 1px solid currentColor;
  border-radius: 9px; font-size: 0.85em; line-height: 1.6; white-space: nowrap;
  background: transparent; background: color-mix(in srgb, currentColor 12%, transparent); }
.rds .rds-ok { color: var(--jp-success-color1, #2f8f3f); }
.rds .rds-warn { color: var(--jp-warn-color1, #9a7d00); }
.rds .rds-fail { color: var(--jp-error-color1, #d13a30); }
.rds .rds-info { color: var(--jp-info-color1, #1e88c8); }
.rds .rds-muted { color: var(--jp-ui-font-color2, #808080); }
.rds .rds-table { border-collapse: collapse; margin: 4px 0; font-size: inherit;
  table-layout: auto; }
.rds .rds-table th, .rds .rds-table td { padding: 2px 10px 2px 0; text-align: left;
  vertical-align: top; border: none;
  border-bottom: 1px solid var(--jp-border-color2, rgba(127, 127, 127, 0.25)); }
.rds .rds-table th { font-weight: 600;
  border-bottom-color: var(--jp-border-color1, rgba(127, 127, 127, 0.5)); }
.rds .rds-table td.rds-num { text-align: right; font-variant-numeric: tabular-nums; }
.rds .rds-table tbody tr:nth-child(odd) { background: transparent; }
.rds .rds-table tbody tr:hover {
  background: var(--jp-rendermime-table-row-hover-background, rgba(127, 127, 127, 0.12)); }
.rds .rds-fields { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px;
  margin: 4px 0; }
.rds .rds-fields dt { color: var(--jp-ui-font-color2, inherit); white-space: nowrap; }
.rds .rds-fields dd { margin: 0; overflow-wrap: anywhere; }
.rds .rds-code, .rds .rds-pre { font-family: var(--jp-code-font-family, monospace);
  font-size: var(--jp-code-font-size, 12px); line-height: var(--jp-code-line-height, 1.4);
  color: var(--jp-content-font-color1, inherit); padding: 6px 8px; margin: 4px 0;
  background: var(--jp-cell-editor-background, rgba(127, 127, 127, 0.08));
  border: 1px solid var(--jp-border-color2, rgba(127, 127, 127, 0.25)); border-radius: 3px;
  white-space: pre; overflow-x: auto; max-height: 32em; }
.rds .rds-pre { white-space: pre-wrap; overflow-wrap: anywhere; }
.rds .rds-steps { white-space: nowrap; }
</style>"""

# Token colours chosen to contrast at least ~4:1 with both a white and a near-black
# background, so highlighted code reads in JupyterLab's light and dark themes alike.
# Names, punctuation and plain text keep the theme's own text colour.
_TOKEN_COLOURS = {
    "Keyword": "#b854d4",
    "Operator.Word": "#b854d4",
    "Name.Builtin": "#1e88c8",
    "Name.Function": "#1e88c8",
    "Name.Class": "#228b8b",
    "Name.Decorator": "#228b8b",
    "Name.Exception": "#228b8b",
    "Literal.String": "#2f8f3f",
    "Literal.String.Doc": "#808080",
    "Literal.Number": "#c45e1a",
    "Keyword.Constant": "#c45e1a",
    "Comment": "#808080; font-style: italic",
    "Error": "#d13a30",
}
_LEXERS = {"python": "python", "sql": "sql"}


def esc(value: object) -> str:
    """``value`` as text safe inside HTML elements and quoted attributes; None is ``""``.

    Examples
    --------
    >>> esc('<img src=x onerror="alert(1)">')
    '&lt;img src=x onerror=&quot;alert(1)&quot;&gt;'
    """
    return "" if value is None else html.escape(str(value), quote=True)


def highlight(source: str, language: str) -> str:
    """``source`` as a ``<pre class="rds-code">``, coloured when ``language`` is known.

    ``"python"`` and ``"sql"`` are tokenised by Pygments (imported here, not with rds) and
    coloured with inline styles; any other language gives the escaped text uncoloured.

    Examples
    --------
    >>> highlight("SELECT 1", "sql")  # doctest: +ELLIPSIS
    '<pre class="rds-code"><span style="color: #b854d4">SELECT</span> <span ...'
    """
    lexer_name = _LEXERS.get(language.lower())
    if lexer_name is None:
        return f'<pre class="rds-code">{esc(source)}</pre>'
    from pygments import lex
    from pygments.lexers import get_lexer_by_name
    from pygments.token import string_to_tokentype

    colours = {string_to_tokentype(name): colour for name, colour in _TOKEN_COLOURS.items()}
    lexer = get_lexer_by_name(lexer_name, stripnl=False, ensurenl=False)
    runs: list[tuple[str | None, str]] = []  # (colour, text), same-colour tokens merged
    for token, text in lex(source, lexer):
        while token not in colours and token.parent is not None:
            token = token.parent
        colour = colours.get(token)
        if runs and runs[-1][0] == colour:
            runs[-1] = (colour, runs[-1][1] + text)
        else:
            runs.append((colour, text))
    code = "".join(
        f'<span style="color: {colour}">{esc(text)}</span>' if colour else esc(text)
        for colour, text in runs
    )
    return f'<pre class="rds-code">{code}</pre>'


def badge(text: str, tone: str) -> str:
    """A small rounded label: ``tone`` is one of ``ok``, ``warn``, ``fail``, ``info``, ``muted``.

    Examples
    --------
    >>> badge("released", "ok")
    '<span class="rds-badge rds-ok">released</span>'
    """
    if tone not in TONES:
        raise InvalidInput(f"A badge's tone is one of {TONES}, not {tone!r}.")
    return f'<span class="rds-badge rds-{tone}">{esc(text)}</span>'


def table(
    columns: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    html_columns: Collection[str] = (),
) -> str:
    """A table with escaped headers and cells; cells of ``html_columns`` are already HTML.

    Numbers are right-aligned and floats shown to 6 significant digits.

    Examples
    --------
    >>> table(["ward", "n"], [("<b>onco</b>", 12)])  # doctest: +ELLIPSIS
    '<table class="rds-table">...<td>&lt;b&gt;onco&lt;/b&gt;</td><td class="rds-num">12</td>...'
    """
    unknown = set(html_columns) - set(columns)
    if unknown:
        raise InvalidInput(f"html_columns names columns the table lacks: {sorted(unknown)}.")
    raw = [c in html_columns for c in columns]
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = []
    for row in rows:
        if len(row) != len(columns):
            raise InvalidInput(f"A row has {len(row)} cells; the table has {len(columns)} columns.")
        cells = "".join(
            f"<td>{v}</td>" if is_html else _cell(v) for v, is_html in zip(row, raw, strict=True)
        )
        body.append(f"<tr>{cells}</tr>")
    if not body:
        body.append(f'<tr><td class="rds-note" colspan="{max(len(columns), 1)}">none</td></tr>')
    return (
        f'<table class="rds-table"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _cell(value: object) -> str:
    if not isinstance(value, numbers.Number) or isinstance(value, bool):
        return f"<td>{esc(value)}</td>"
    text = str(value)
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        text = "NaN" if value != value else f"{value:.6g}"
    return f'<td class="rds-num">{esc(text)}</td>'


def frame(df: pd.DataFrame | pd.Series, *, max_rows: int = 10, max_columns: int = 20) -> str:
    """An escaped preview of ``df``: its first rows and columns, and its shape.

    The index is shown unless it is the default ``0, 1, 2…``; long text is cut at 200
    characters. A note says how many rows and columns were left out.

    Examples
    --------
    >>> import pandas as pd
    >>> frame(pd.DataFrame({"x": range(50)}), max_rows=3)  # doctest: +ELLIPSIS
    '<table ...<div class="rds-note">… 47 more rows</div><div ...>50 rows, 1 column</div>'
    """
    import pandas as pd

    if isinstance(df, pd.Series):
        df = df.to_frame()
    shown = df.iloc[:max_rows, :max_columns]
    columns = [_label(c) for c in shown.columns]
    rows: list[list[object]] = [[_value(v) for v in row] for row in shown.itertuples(False, None)]
    index = shown.index
    if not (isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1):
        columns.insert(0, _label(tuple(n or "" for n in index.names)))
        for row, key in zip(rows, index, strict=True):
            row.insert(0, _label(key))
    notes = []
    if len(df) > len(shown):
        notes.append(f"… {len(df) - len(shown):,} more rows")
    if df.shape[1] > shown.shape[1]:
        notes.append(f"… {df.shape[1] - shown.shape[1]:,} more columns")
    n_rows, n_cols = df.shape
    notes.append(f"{n_rows:,} row{'s' * (n_rows != 1)}, {n_cols:,} column{'s' * (n_cols != 1)}")
    return table(columns, rows) + "".join(f'<div class="rds-note">{esc(n)}</div>' for n in notes)


def _label(key: object) -> str:
    """A column or index label as text; MultiIndex tuples joined with `` / ``."""
    if isinstance(key, tuple):
        return " / ".join(str(k) for k in key if k != "")
    return str(key)


def _value(value: object) -> object:
    """Numbers as they are (``table`` formats them); anything else as text, cut at 200."""
    if isinstance(value, numbers.Number) and not isinstance(value, bool):
        return value
    text = str(value)
    return text if len(text) <= 200 else text[:199] + "…"


def fields(pairs: Iterable[tuple[str, object]], *, html_values: Collection[str] = ()) -> str:
    """Key/value lines as a ``<dl>``; the values of keys in ``html_values`` are already HTML.

    Examples
    --------
    >>> fields([("scientist", "ana@uni.example"), ("status", badge("ran", "warn"))],
    ...        html_values={"status"})  # doctest: +ELLIPSIS
    '<dl class="rds-fields"><dt>scientist</dt><dd>ana@uni.example</dd>...">ran</span></dd></dl>'
    """
    items = "".join(
        f"<dt>{esc(key)}</dt><dd>{value if key in html_values else esc(value)}</dd>"
        for key, value in pairs
    )
    return f'<dl class="rds-fields">{items}</dl>'


def card(title: str, body: str, *, subtitle: str | None = None) -> str:
    """A framed block with an escaped title and subtitle, around ``body`` (already HTML).

    The card carries ``STYLE``, so it renders the same wherever it is displayed; an empty
    title and no subtitle leave out the header.
    """
    head = ""
    if title or subtitle:
        sub = f'<span class="rds-subtitle">{esc(subtitle)}</span>' if subtitle else ""
        head = f'<div class="rds-head"><span class="rds-title">{esc(title)}</span>{sub}</div>'
    return f'<div class="rds">{STYLE}<div class="rds-card">{head}{body}</div></div>'


def styled(body: str) -> str:
    """``body`` (already HTML) with rds's styles but no frame, for a widget's bare parts."""
    return f'<div class="rds">{STYLE}{body}</div>'


def verdict_tone(verdict: str | None) -> str:
    """The badge tone of a check verdict: pass → ok, warn → warn, fail → fail, else muted."""
    return {"pass": "ok", "warn": "warn", "fail": "fail"}.get(verdict or "", "muted")


_STATUS_TONES = {
    **dict.fromkeys(["released", "approved"], "ok"),
    **dict.fromkeys(["denied", "failed", "invalid"], "fail"),
    **dict.fromkeys(["awaiting review", "ran"], "warn"),
    **dict.fromkeys(["running", "submitted", "pending"], "info"),
}


def status_tone(status: str) -> str:
    """The badge tone of a request status.

    released → ok, denied and invalid → fail, awaiting review and ran → warn (someone has to act),
    running, submitted and pending → info, anything else → muted.
    """
    return _STATUS_TONES.get(status, "muted")


def notice(text: str, *, tone: str) -> str:
    """A one-line message (an error, a confirmation) in the desk or a tracker."""
    return card("", f'<div class="rds-notice">{badge(tone, tone)} {esc(text)}</div>')
