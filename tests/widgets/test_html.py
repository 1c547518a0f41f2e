"""The HTML building blocks: offline, escaped in every argument position, readable."""

from __future__ import annotations

import re
import subprocess
import sys
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from rds.errors import InvalidInput
from rds.widgets.html import (
    STYLE,
    badge,
    card,
    esc,
    fields,
    frame,
    highlight,
    status_tone,
    table,
    verdict_tone,
)

PAYLOADS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '"><svg onload=alert(1)>',
    "'><a href='javascript:alert(1)'>click</a>",
    "</style><script>alert(1)</script>",
    "</pre></td></table><iframe src=//evil.example>",
    "javascript:alert(1)",
]
ALLOWED_TAGS = {"div", "span", "style", "pre", "table", "thead", "tbody", "tr", "th", "td"}
ALLOWED_TAGS |= {"dl", "dt", "dd"}
ALLOWED_ATTRIBUTES = {"class", "style", "colspan"}
STYLE_TEXT = STYLE.removeprefix("<style>").removesuffix("</style>")


class Page(HTMLParser):
    """Parses rendered HTML the way a browser tokenises it, collecting what matters."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str]] = []
        self.styles: list[str] = []
        self.text = ""
        self._in_style = False
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += [(name, value or "") for name, value in attrs]
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)
        else:
            self.text += data


def assert_inert(markup: str) -> Page:
    """No tag outside the allow-list, no handler, no URL attribute, no foreign stylesheet."""
    page = Page(markup)
    assert set(page.tags) <= ALLOWED_TAGS, set(page.tags) - ALLOWED_TAGS
    for name, value in page.attributes:
        assert not name.startswith("on"), name
        assert name in ALLOWED_ATTRIBUTES, name
        assert "javascript:" not in value.lower()
        assert "url(" not in value.lower()
    # The only <style> content is ours: a payload cannot open or extend one.
    assert all(css == STYLE_TEXT for css in page.styles), page.styles
    return page


def assert_offline(markup: str) -> None:
    lowered = markup.lower()
    for marker in ("http://", "https://", "src=", "href=", "@import", "url(", "<link", "<script"):
        assert marker not in lowered, marker


@pytest.mark.parametrize("payload", PAYLOADS)
def test_every_argument_is_escaped(payload: str) -> None:
    df = pd.DataFrame({payload: [payload, 1], "n": [1.5, 2]}, index=[payload, "b"])
    df.index.name = payload
    rendered = {
        "esc": esc(payload),
        "badge": badge(payload, "warn"),
        "table column": table([payload, "x"], [("a", "b")]),
        "table cell": table(["a", "b"], [(payload, payload), (1, None)]),
        "table html column, other cells": table(
            ["b", "s"], [(payload, badge(payload, "ok"))], html_columns={"s"}
        ),
        "frame": frame(df),
        "frame multiindex": frame(pd.DataFrame({(payload, payload): [payload]})),
        "series": frame(pd.Series([payload], name=payload)),
        "fields key": fields([(payload, "v")]),
        "fields value": fields([("k", payload)]),
        "fields html value, other values": fields(
            [("a", payload), ("b", badge(payload, "ok"))], html_values={"b"}
        ),
        "card title": card(payload, ""),
        "card subtitle": card("t", "", subtitle=payload),
        "python source": highlight(f"x = {payload!r}  # {payload}\n{payload}", "python"),
        "sql source": highlight(f"SELECT '{payload}' -- {payload}\n{payload}", "sql"),
        "unknown language": highlight(payload, "html"),
    }
    for where, markup in rendered.items():
        page = assert_inert(markup)
        assert payload in page.text, f"{where}: the payload should be shown as text"
        assert_offline(STYLE + "".join(page.styles))


def test_nested_building_blocks_stay_inert() -> None:
    payload = PAYLOADS[1]
    body = fields(
        [("status", badge(payload, status_tone("ran"))), ("reason", payload)],
        html_values={"status"},
    )
    body += highlight(f"def f(df):\n    return {payload!r}", "python")
    body += table(
        ["verdict", "note"],
        [(badge("fail", verdict_tone("fail")), payload)],
        html_columns={"verdict"},
    )
    body += frame(pd.DataFrame({"c": [payload] * 30}))
    page = assert_inert(card(payload, body, subtitle=payload))
    # title, subtitle, badge, reason, code, table cell, and the 10 rows the frame shows
    assert page.text.count(payload) == 2 + 1 + 1 + 1 + 1 + 10
    assert page.tags.count("style") == 1


def test_esc() -> None:
    assert esc(None) == ""
    assert esc(0) == "0"
    assert (
        esc("""<a href="x">'&'</a>""") == "&lt;a href=&quot;x&quot;&gt;&#x27;&amp;&#x27;&lt;/a&gt;"
    )


def test_style_is_scoped_and_offline() -> None:
    assert STYLE.startswith("<style>") and STYLE.endswith("</style>")
    assert STYLE.count("<") == 2  # nothing but the two tags
    assert_offline(STYLE)
    selectors = re.findall(r"(?:^|})\s*([^{}]+)\{", STYLE_TEXT)
    assert selectors
    for group in selectors:
        for selector in group.split(","):
            assert selector.strip().startswith(".rds"), selector
    # Every colour follows the theme where JupyterLab defines one.
    assert "var(--jp-ui-font-color1" in STYLE and "var(--jp-border-color2" in STYLE


def test_highlight_colours_python_keywords_strings_and_comments() -> None:
    source = 'def f(df):\n    """Doc."""\n    return df["a"].mean()  # the mean\n'
    markup = highlight(source, "python")
    assert markup.startswith('<pre class="rds-code">') and markup.endswith("</pre>")
    coloured = dict(
        (text, style) for style, text in re.findall(r'<span style="([^"]+)">([^<]+)</span>', markup)
    )
    assert "color: #" in coloured["def"]
    assert "color: #" in coloured["return"]
    assert coloured["&quot;a&quot;"] != coloured["def"]
    assert "italic" in coloured["# the mean"]
    assert "df" not in coloured  # plain names keep the theme's text colour
    assert Page(markup).text == source  # nothing added, nothing lost


def test_highlight_sql_and_unknown_languages() -> None:
    markup = highlight("SELECT ward, count(*) FROM patients WHERE age > 30", "SQL")
    assert re.search(r'<span style="color: #[0-9a-f]{6}">SELECT</span>', markup)
    assert Page(markup).text == "SELECT ward, count(*) FROM patients WHERE age > 30"
    plain = highlight("x <- c(1, 2)", "r")
    assert plain == '<pre class="rds-code">x &lt;- c(1, 2)</pre>'


def test_highlight_colours_read_on_light_and_dark_backgrounds() -> None:
    def luminance(colour: str) -> float:
        channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    markup = highlight("def f():\n    return 'x' + 1  # c\n", "python")
    colours = set(re.findall(r"color: (#[0-9a-f]{6})", markup))
    assert len(colours) >= 4
    for colour in colours:
        on_white = 1.05 / (luminance(colour) + 0.05)
        on_dark = (luminance(colour) + 0.05) / (luminance("#111111") + 0.05)
        assert min(on_white, on_dark) > 3.2, colour


def test_badge_tones() -> None:
    assert badge("released", "ok") == '<span class="rds-badge rds-ok">released</span>'
    for tone in ("ok", "warn", "fail", "info", "muted"):
        assert f".rds-{tone}" in STYLE
    with pytest.raises(InvalidInput):
        badge("x", "danger")


def test_verdict_and_status_tones() -> None:
    assert [verdict_tone(v) for v in ("pass", "warn", "fail", None)] == [
        "ok",
        "warn",
        "fail",
        "muted",
    ]
    assert status_tone("released") == "ok"
    assert status_tone("denied") == "fail"
    assert status_tone("awaiting review") == status_tone("ran") == "warn"
    assert {status_tone(s) for s in ("running", "submitted", "pending")} == {"info"}
    assert status_tone("something new") == "muted"


def test_table_cells_numbers_and_html_columns() -> None:
    markup = table(
        ["name", "n", "share", "state"],
        [("a", 3, 0.123456789, badge("ok", "ok")), ("b", True, float("nan"), "")],
        html_columns={"state"},
    )
    assert '<td class="rds-num">3</td>' in markup
    assert '<td class="rds-num">0.123457</td>' in markup
    assert '<td class="rds-num">NaN</td>' in markup
    assert "<td>True</td>" in markup  # a bool is not a number to align
    # An HTML cell is a cell too: the badge sits inside its <td>, in the 4th column.
    assert '<td><span class="rds-badge rds-ok">ok</span></td></tr>' in markup
    assert markup.count("<td") == 8
    empty = table(["a", "b"], [])
    assert Page(empty).text.endswith("none")


def test_table_refuses_malformed_input() -> None:
    with pytest.raises(InvalidInput):
        table(["a", "b"], [("only one",)])
    with pytest.raises(InvalidInput):
        table(["a"], [("x",)], html_columns={"typo"})


def test_frame_truncates_rows_and_columns_and_states_the_shape() -> None:
    df = pd.DataFrame(np.arange(300).reshape(100, 3), columns=["a", "b", "c"])
    page = Page(frame(df, max_rows=5, max_columns=2))
    assert page.tags.count("tr") == 1 + 5
    assert page.tags.count("th") == 2
    assert "… 95 more rows" in page.text
    assert "… 1 more columns" in page.text
    assert "100 rows, 3 columns" in page.text
    assert "295" not in page.text  # the last row is not shown


def test_frame_without_truncation_and_default_index() -> None:
    page = Page(frame(pd.DataFrame({"x": [1.5]})))
    assert page.text == "x1.51 row, 1 column"


def test_frame_shows_a_meaningful_index_and_cuts_long_text() -> None:
    df = pd.DataFrame({"n": [1, 2]}, index=pd.Index(["onco", "cardio"], name="ward"))
    df["note"] = ["x" * 1000, "short"]
    page = Page(frame(df))
    assert page.text.startswith("wardnnote")
    assert "onco" in page.text and "cardio" in page.text
    assert "x" * 199 + "…" in page.text and "x" * 200 not in page.text


def test_fields_and_card() -> None:
    markup = fields([("rows", 10), ("contact", None)])
    assert markup == '<dl class="rds-fields"><dt>rows</dt><dd>10</dd><dt>contact</dt><dd></dd></dl>'
    full = card("Title", "<p>body</p>", subtitle="sub")
    assert full.startswith('<div class="rds">' + STYLE)
    assert Page(full).text == "Titlesubbody"
    assert 'class="rds-head"' not in card("", "<p>body</p>")


def test_importing_rds_loads_no_renderer() -> None:
    code = (
        "import sys, rds, rds.widgets.html, rds.checks.code_notes; "
        "print(sorted(m for m in ('pygments', 'ipywidgets', 'sqlglot') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
