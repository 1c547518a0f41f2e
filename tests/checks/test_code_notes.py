"""Static notes on submitted code: what an owner is pointed at, and where."""

from __future__ import annotations

import sys
import textwrap

import pytest

from rds.checks.code_notes import CodeNote, python_notes, sql_notes

BENIGN = '''
def mean_los_by_ward(df):
    """Average length of stay per ward (see https://example.org/method)."""
    import numpy as np
    import pandas as pd
    from collections import Counter

    out = df.groupby("ward")["los_days"].mean().round(2)
    sizes = Counter(df["ward"])
    return pd.DataFrame({"ward": out.index, "mean": np.asarray(out), "n": list(sizes.values())})
'''


def warnings_of(source: str) -> list[tuple[str, int | None]]:
    return [(n.kind, n.line) for n in python_notes(source) if n.severity == "warn"]


def only_warning(source: str) -> CodeNote:
    """The one non-import warning of ``source``."""
    found = [n for n in python_notes(source) if n.severity == "warn" and n.kind != "import"]
    assert len(found) == 1, found
    return found[0]


def test_a_benign_pandas_function_gets_only_info_notes() -> None:
    notes = python_notes(BENIGN)
    assert notes, "imports and calls are always summarised"
    assert all(n.severity == "info" for n in notes), notes
    imports = [n.text for n in notes if n.kind == "import"]
    assert imports == [
        "imports numpy as np",
        "imports pandas as pd",
        "imports Counter from collections",
    ]
    assert [n.line for n in notes if n.kind == "import"] == [4, 5, 6]


def test_the_call_summary_lists_distinct_calls_sorted() -> None:
    (summary,) = [n for n in python_notes(BENIGN) if n.kind == "call"]
    assert summary.severity == "info"
    assert summary.text == (
        "calls: Counter, df.groupby, list, mean, np.asarray, pd.DataFrame, round, sizes.values"
    )


def test_a_long_call_summary_is_truncated() -> None:
    source = "\n".join(f"f{i:03d}()" for i in range(200))
    (summary,) = [n for n in python_notes(source) if n.kind == "call"]
    assert len(summary.text) < 300
    assert summary.text.endswith("(+176 more)")


@pytest.mark.parametrize(
    "module", ["os", "sys", "subprocess", "shutil", "pathlib", "socket", "requests", "ctypes"]
)
def test_risky_imports_warn(module: str) -> None:
    (note,) = python_notes(f"\n\nimport {module}\n")
    assert (note.kind, note.severity, note.line) == ("import", "warn", 3)
    assert note.text.startswith(f"imports {module} (")


def test_from_imports_are_judged_by_their_package() -> None:
    notes = python_notes("from urllib.request import urlopen\nfrom math import sqrt")
    assert [(n.severity, n.text) for n in notes if n.kind == "import"] == [
        ("warn", "imports urlopen from urllib.request (network)"),
        ("info", "imports sqrt from math"),
    ]


@pytest.mark.parametrize(
    ("source", "kind", "line"),
    [
        # files
        ("def f():\n    return open('/etc/passwd').read()", "file", 2),
        ("import pandas as pd\n\npd.read_csv('/data/all.csv')", "file", 3),
        ("def f(df):\n    df.to_parquet('/tmp/leak.parquet')", "file", 2),
        ("def f(df):\n    df.to_csv(path_or_buf='/tmp/leak.csv')", "file", 2),
        ("import numpy as np\nnp.save('/tmp/x.npy', [1])", "file", 2),
        ("from pathlib import Path\nPath('/etc/shadow').read_text()", "file", 2),
        ("import os\nos.listdir('/')", "file", 2),
        ("import os\nos.remove('/data/x')", "file", 2),
        ("import shutil\nshutil.rmtree('/data')", "file", 2),
        # network
        ("import socket\ns = socket.socket()", "network", 2),
        ("import urllib.request\nurllib.request.urlopen(u)", "network", 2),
        ("import requests\nrequests.post(u, data=d)", "network", 2),
        ("import httpx\nhttpx.get(u)", "network", 2),
        ("import http.client\nhttp.client.HTTPSConnection(h)", "network", 2),
        ("def f(df):\n    x = 1\n    return df.assign(u='https://evil.example/?q=')", "network", 3),
        # processes
        ("import subprocess\nsubprocess.run(['id'])", "process", 2),
        ("import subprocess\nsubprocess.Popen('id', shell=True)", "process", 2),
        ("import os\nos.system('id')", "process", 2),
        ("import os\nos.popen('id')", "process", 2),
        ("import os\nos.execv('/bin/sh', [])", "process", 2),
        ("import os\nos.fork()", "process", 2),
        ("import os\nos.kill(1, 9)", "process", 2),
        ("import os\nsecret = os.environ['TOKEN']", "process", 2),
        # dynamic code
        ("x = 1\neval('1 + 1')", "dynamic", 2),
        ("exec(code)", "dynamic", 1),
        ("compile(src, 'f', 'exec')", "dynamic", 1),
        ("m = __import__('os')", "dynamic", 1),
        ("def f(obj, name):\n    return getattr(obj, name)", "dynamic", 2),
        ("setattr(obj, key, 1)", "dynamic", 1),
        ("getattr(f, '__globals__')", "dynamic", 1),
        ("g = f.__globals__", "dynamic", 1),
        ("b = f.__builtins__", "dynamic", 1),
        ("c = f.__code__", "dynamic", 1),
        ("x = ().__class__.__base__", "dynamic", 1),
        ("b = __builtins__", "dynamic", 1),
        ("import pickle\npickle.loads(blob)", "dynamic", 2),
        ("import importlib\nimportlib.import_module(name)", "dynamic", 2),
    ],
)
def test_each_dangerous_pattern_warns_with_its_kind_and_line(
    source: str, kind: str, line: int
) -> None:
    note = only_warning(source)
    assert (note.kind, note.line) == (kind, line), note


def test_subclasses_escape_is_flagged_at_each_step() -> None:
    source = "x = ().__class__.__bases__[0].__subclasses__()"
    texts = [n.text for n in python_notes(source) if n.kind == "dynamic"]
    assert any("__bases__" in t for t in texts)
    assert any("__subclasses__" in t for t in texts)


def test_aliases_are_followed() -> None:
    source = textwrap.dedent(
        """\
        import subprocess as sp
        from os import system as run_it
        import os.path as osp
        from builtins import eval as ev
        sp.check_output(['id'])
        run_it('id')
        osp.getsize('/data/private.parquet')
        ev('2')
        """
    )
    behaviour = [(n.kind, n.line, n.text) for n in python_notes(source) if n.line and n.line > 4]
    assert behaviour == [
        ("process", 5, "runs a program: sp.check_output (subprocess.check_output)"),
        ("process", 6, "runs a program: run_it (os.system)"),
        ("file", 7, "looks at files: osp.getsize (os.path.getsize)"),
        ("dynamic", 8, "evaluates a string as code: ev (eval)"),
    ]


def test_star_imports_are_followed() -> None:
    source = "from subprocess import *\nrun(['id'])"
    assert ("process", 2) in warnings_of(source)


def test_an_alias_can_make_a_dangerous_looking_name_harmless() -> None:
    # re.compile and a string-only os.path function: nothing to look at beyond the import.
    source = "from re import compile\nimport os.path\ncompile('a+')\nos.path.join('a', 'b')"
    assert warnings_of(source) == [("import", 2)]


def test_writers_without_a_destination_return_text_and_are_not_file_use() -> None:
    assert warnings_of("def f(df):\n    return df.to_csv(index=False)") == []
    assert warnings_of("def f(df):\n    return df.to_csv('/tmp/x.csv')") == [("file", 2)]


def test_docstring_urls_are_not_network_use() -> None:
    assert warnings_of('def f():\n    """See https://example.org."""\n    return 1') == []


def test_notes_keep_source_order_and_drop_duplicates() -> None:
    source = "import os\nos.system('a'); os.system('a')\nopen('x')"
    notes = [(n.kind, n.line) for n in python_notes(source)]
    assert notes == [("import", 1), ("process", 2), ("file", 3), ("call", None)]


def test_indented_source_is_read_as_is() -> None:
    source = "    def f():\n        import os\n        os.system('id')\n"
    assert ("process", 3) in warnings_of(source)


def test_a_syntax_error_is_one_warning() -> None:
    (note,) = python_notes("def f(df):\n    return df.groupby(\n")
    assert note.severity == "warn"
    assert note.text.startswith("does not parse: ")
    assert note.line is not None and note.text.endswith(f"(line {note.line})")


def test_pathological_nesting_is_a_warning_not_a_crash() -> None:
    depth = sys.getrecursionlimit() + 100
    (note,) = python_notes("x = " + "-" * depth + "1")
    assert note.severity == "warn"


# -- SQL ---------------------------------------------------------------------------------


def sql(query: str) -> list[tuple[str, str]]:
    return [(n.severity, n.text) for n in sql_notes(query)]


def test_an_aggregate_query_is_described_without_warnings() -> None:
    notes = sql("SELECT ward, avg(age), count(*) FROM patients WHERE age > 30 GROUP BY ward")
    assert notes == [
        ("info", "reads tables: patients"),
        ("info", "aggregate functions: AVG, COUNT"),
        ("info", "returns aggregated rows, grouped by ward"),
        ("info", "filters on: age"),
    ]
    assert all(n.kind == "sql" for n in sql_notes("SELECT count(*) FROM patients"))


def test_a_record_level_query_warns() -> None:
    notes = sql("SELECT patient_id, age FROM patients WHERE ward = 'onco'")
    assert ("warn", "returns individual records: the top-level SELECT does not aggregate") in notes
    assert ("info", "filters on: ward") in notes


@pytest.mark.parametrize(
    "query",
    [
        "SELECT name, count(*) OVER () FROM patients",  # a window keeps every row
        "SELECT name, (SELECT avg(age) FROM patients) FROM patients",  # so does a scalar subquery
        "SELECT ward FROM patients UNION ALL SELECT count(*) FROM patients",
        "SELECT DISTINCT name FROM patients",
    ],
)
def test_aggregates_that_do_not_aggregate_the_output_still_warn(query: str) -> None:
    assert any(s == "warn" and "individual records" in t for s, t in sql(query))


@pytest.mark.parametrize(
    "query",
    [
        "WITH t AS (SELECT ward, count(*) AS n FROM patients GROUP BY ward) SELECT * FROM t",
        "SELECT * FROM (SELECT ward, avg(age) AS a FROM patients GROUP BY ward) WHERE a > 40",
    ],
)
def test_selecting_from_an_aggregate_is_aggregated(query: str) -> None:
    assert [t for s, t in sql(query) if s == "warn"] == []


def test_joins_and_their_tables_are_listed() -> None:
    notes = sql(
        "SELECT v.kind, count(*) FROM patients p LEFT JOIN visits v ON p.id = v.pid GROUP BY 1"
    )
    assert ("info", "reads tables: patients, visits") in notes
    assert ("info", "joins: LEFT JOIN visits AS v ON p.id = v.pid") in notes


def test_file_reads_warn() -> None:
    for query in ["SELECT * FROM 'private.parquet'", "SELECT * FROM read_csv('/etc/passwd')"]:
        kinds = [(n.kind, n.severity) for n in sql_notes(query)]
        assert ("file", "warn") in kinds, query


def test_statements_that_are_not_one_query_warn() -> None:
    assert ("warn", "is not a query: DROP statement") in sql("DROP TABLE patients")
    assert ("warn", "contains 2 statements") in sql("SELECT 1; SELECT 2")


@pytest.mark.parametrize("query", ["SELEC * FROM patients", "SELECT (", "", "SELECT 'open"])
def test_bad_sql_is_one_warning(query: str) -> None:
    (note,) = sql_notes(query)
    assert (note.kind, note.severity) == ("sql", "warn")
    assert "<class" not in note.text
