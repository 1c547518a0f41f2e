"""The tutorial course executes, top to bottom, in a real kernel."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import NOTEBOOKS, run_notebook

COURSE = sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))
EXPECTED = {
    "01-quickstart.ipynb": ["denied: Row-level data", "entries verified:", "failed on the mock"],
}


def test_course_exists() -> None:
    assert [p.name for p in COURSE][:1] == ["01-quickstart.ipynb"]


@pytest.mark.parametrize("path", COURSE, ids=lambda p: p.name)
def test_notebook_runs(path: Path, tmp_path: Path) -> None:
    text = run_notebook(path, tmp_path)
    for expected in EXPECTED.get(path.name, []):
        assert expected in text, f"{path.name}: {expected!r} not in the outputs"
