"""The browser-test infrastructure works: a notebook runs in real JupyterLab, widgets render."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import nbformat
from playwright.sync_api import Page, expect

from tests.ui.lab import Lab, run_notebook_in_lab, screenshot, screenshot_locator


def write_notebook(path: Path, *sources: str) -> Path:
    """Write code cells to ``path`` with the default kernel named, as Lab would save it."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    nbformat.write(nb, path)
    return path


def test_notebook_runs_in_lab_with_venv_kernel_and_live_widgets(page: Page, lab: Lab) -> None:
    marker = uuid.uuid4().hex[:10]
    notebook = write_notebook(
        lab.root / f"smoke-{marker}.ipynb",
        "import sys\nimport rds\nprint('kernel:', sys.executable)",
        "import ipywidgets as widgets\n"
        f"text = widgets.HTML('<b>widget-text-{marker}</b>')\n"
        f"button = widgets.Button(description='button-{marker}')\n"
        "clicked = widgets.HTML()\n"
        f"button.on_click(lambda _: setattr(clicked, 'value', 'clicked-{marker}'))\n"
        "widgets.VBox([text, button, clicked])",
    )

    run_notebook_in_lab(page, lab, notebook, timeout=120)

    expect(page.get_by_text(f"kernel: {sys.executable}")).to_be_visible()
    # Rendered by the widget manager, not the text/plain repr (which also holds the marker).
    box = page.locator(".jp-OutputArea-output .widget-vbox")
    expect(box.locator(".widget-html-content", has_text=f"widget-text-{marker}")).to_be_visible()
    button = box.get_by_role("button", name=f"button-{marker}")
    expect(button).to_be_visible()
    expect(page.get_by_text("Loading widget")).to_have_count(0)
    expect(page.get_by_text("VBox(children=")).to_have_count(0)
    # A click travels over the comm to the kernel and back: the widgets are live.
    button.click()
    expect(box.get_by_text(f"clicked-{marker}")).to_be_visible()

    for shot in (screenshot(page, "smoke-lab"), screenshot_locator(box, "smoke-widget")):
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert shot.stat().st_size > 2_000, shot
