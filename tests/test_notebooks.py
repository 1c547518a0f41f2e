"""The tutorial course executes, top to bottom, in a real kernel."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import nbformat
import pytest

from tests.conftest import NOTEBOOKS

COURSE = sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))
EXPECTED = {
    "01-quickstart.ipynb": [
        "denied: Row-level data",
        "entries verified:",
        "failed on the mock",
        "returned a matplotlib.figure.Figure on the mock",
        "draw the plot locally from the released result",  # the message, whole
        "from  patients",
    ],
    "02-privacy-checks.ipynb": [
        "refused: Refused: COPY",
        "Release policy",  # ds.policy as a table
        "people each exact output cell needs",
        "scientist sees on_fail: suppress",  # session.refresh() reads the new policy
        "Checks failed (threshold",
        "denied: Cells under 10 patients",
        "verdict: fail",
        "combinations of sex, decade have no row",
        "record_level",
        "private_rows",
        "scientist sees: awaiting review",
        "same query, other conditions",
        "denied: denied",
        "entries verified:",
    ],
    "03-dp-sql.ipynb": [
        "Answered with differential privacy: ε=0.5 spent",
        "patients_ci_low",
        "Differentially private answer",  # the answer's display, with relative errors
        "progression ± relative",
        "noise scale (its units)",  # req.privacy as a table
        "the noise is as large as the value",  # the answer on a handful of patients
        "patients_rel_error",
        "refused: Refused for a DP query: GROUP BY 'age'",
        "budget untouched: 2.0",
        "halfwidth_n100",
        "CAST",
        "below the data owner's minimum of ε=0.01",
        "only ε=0.5 of your budget remains",
        "<Budget diabetes: ε spent 1.9",
        "entries verified:",
    ],
    "04-owner-review.ipynb": [
        "approve enabled before a private run: False",
        "scientist sees: released",
        "failed checks: ['threshold', 'zeros']",
        "approve enabled without a justification: False",
        "imports os",
        "denied: Cells under 10 patients",
        "status: released   verdict: pass",
        "entries verified:",
    ],
}


def test_course_exists() -> None:
    assert [p.name for p in COURSE][:4] == [
        "01-quickstart.ipynb",
        "02-privacy-checks.ipynb",
        "03-dp-sql.ipynb",
        "04-owner-review.ipynb",
    ]


def _run(path: Path, cwd: Path) -> tuple[str, list[dict[str, Any]], Any]:
    """Execute ``path`` in a fresh kernel (as ``tests.conftest.run_notebook`` does): its
    text outputs, every message the kernel sent, and the executed notebook."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    seen: list[dict[str, Any]] = []

    class Recording(NotebookClient):  # type: ignore[misc]
        def process_message(self, msg: dict[str, Any], cell: Any, cell_index: int) -> Any:
            seen.append(msg)
            return super().process_message(msg, cell, cell_index)

    Recording(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    ).execute()
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            parts.extend(str(v) for v in out.get("data", {}).values())
    return "\n".join(parts), seen, nb


@pytest.mark.parametrize("path", COURSE, ids=lambda p: p.name)
def test_notebook_runs(path: Path, tmp_path: Path) -> None:
    text, messages, nb = _run(path, tmp_path)
    for expected in EXPECTED.get(path.name, []):
        assert expected in text, f"{path.name}: {expected!r} not in the outputs"
    if path.name == "04-owner-review.ipynb":
        _desk_stays_open(nb, messages)


def _desk_stays_open(nb: Any, messages: list[dict[str, Any]]) -> None:
    """The review desk the notebook shows is never closed: a saved or live notebook keeps
    a working desk, not an empty box."""
    shown = next(i for i, c in enumerate(nb.cells) if c.source.strip().endswith("desk"))
    views = [
        o["data"]["application/vnd.jupyter.widget-view+json"]["model_id"]
        for o in nb.cells[shown].outputs
        if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
    ]
    assert len(views) == 1, "the desk cell shows one widget"
    closed = {m["content"]["comm_id"] for m in messages if m["msg_type"] == "comm_close"}
    assert views[0] not in closed, "the notebook closes the review desk it shows"


def _code(path: Path) -> list[str]:
    """A notebook's code cells, without IPython's %magics and !shell lines."""
    nb = nbformat.read(path, as_version=4)
    return [
        "\n".join(line for line in c.source.splitlines() if line.lstrip()[:1] not in "%!")
        for c in nb.cells
        if c.cell_type == "code"
    ]


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_notebooks_use_public_attributes_only(path: Path) -> None:
    private = []
    for source in _code(path):
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Attribute) and re.fullmatch(r"_(?!_).*|_", node.attr):
                private.append(f"{ast.unparse(node)} (line {node.lineno})")
    assert not private, f"{path.name} reads private attributes: {private}"


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_notebooks_print_messages_whole(path: Path) -> None:
    cut = re.compile(r"str\(exc\)\s*(\[|\.split|\.splitlines|\.partition)")
    for source in _code(path):
        assert not cut.search(source), f"{path.name} cuts an error message: {source!r}"
