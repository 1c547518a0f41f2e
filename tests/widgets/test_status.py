"""The first ``rds.connect`` in a kernel says what it is doing, and leaves nothing behind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

import rds
from rds.domain import serve
from tests.conftest import free_port, patients


@pytest.fixture
def served_login(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A domain served over HTTP by its own processes, and a scientist's login to it."""
    path = tmp_path / "served"
    with rds.Domain.create("Served Hospital", path=path) as domain:
        domain.publish("patients", patients(), description="Synthetic admissions")
        creds = domain.add_scientist("ada@uni.example.org")
    url = serve.start(path, port=free_port())
    try:
        yield {"url": url, "email": creds.email, "password": creds.password}
    finally:
        serve.stop(path)


def _run_recording(nb: Any, cwd: Path) -> list[dict[str, Any]]:
    """Execute ``nb`` in a fresh kernel; every message the kernel sent while it ran."""
    from nbclient import NotebookClient

    seen: list[dict[str, Any]] = []

    class Recording(NotebookClient):  # type: ignore[misc]
        def process_message(self, msg: dict[str, Any], cell: Any, cell_index: int) -> Any:
            seen.append(msg)
            return super().process_message(msg, cell, cell_index)

    Recording(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    ).execute()
    return seen


def test_connect_shows_a_transient_line_in_a_notebook(
    served_login: dict[str, str], tmp_path: Path
) -> None:
    login = served_login
    nb = nbformat.v4.new_notebook()
    nb.cells.append(
        nbformat.v4.new_code_cell(
            "import rds\n"
            f"session = rds.connect({login['url']!r}, email={login['email']!r}, "
            f"password={login['password']!r})\n"
            "print('datasets:', session.dataset_names())"
        )
    )
    messages = _run_recording(nb, tmp_path)
    kinds = [m["msg_type"] for m in messages]
    shown = [m for m in messages if m["msg_type"] == "display_data"]
    assert len(shown) == 1
    text = shown[0]["content"]["data"]["text/plain"]
    assert text == f"Connecting to {login['url']} (loading PySyft, a few seconds the first time)…"
    display_id = shown[0]["content"]["transient"]["display_id"]
    updates = [m for m in messages if m["msg_type"] == "update_display_data"]
    assert [u["content"]["transient"]["display_id"] for u in updates] == [display_id]
    assert updates[0]["content"]["data"] == {"text/plain": ""}
    # shown before the login's result, emptied after it
    printed = next(i for i, m in enumerate(messages) if m["msg_type"] == "stream")
    assert kinds.index("display_data") < kinds.index("update_display_data") < printed

    outputs = nb.cells[0].outputs  # what the saved notebook keeps
    texts = [o.get("text", "") for o in outputs] + [
        str(v) for o in outputs for v in o.get("data", {}).values()
    ]
    assert "datasets: ['patients']" in "".join(texts)
    assert not any("Connecting" in t for t in texts)
