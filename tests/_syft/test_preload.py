"""syft's import leaves the user's IPython alone (STYLE.md rule 12), and costs less.

Imported inside a kernel, syft registers HTML and Markdown formatters for its types and
replaces parts of the completer, for the whole kernel, and that took about 2 s of the first
``rds.connect``. rds shows no syft object, so it imports syft with IPython hidden.
"""

from __future__ import annotations

import nbformat
from nbclient import NotebookClient

CELL = """
import IPython, rds._syft
shell = IPython.get_ipython()
rds._syft.preload()
import syft
html = shell.display_formatter.formatters["text/html"]
print("syft formatters:", sorted(
    t.__name__ for t in html.type_printers if getattr(t, "__module__", "").startswith("syft")
))
print("shell restored:", IPython.get_ipython() is shell)
"""


def test_syft_is_imported_without_patching_the_notebooks_ipython() -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(CELL)]
    NotebookClient(nb, timeout=300, kernel_name="python3").execute()
    text = "".join(o.get("text", "") for o in nb.cells[0].outputs)
    assert "syft formatters: []" in text, text
    assert "shell restored: True" in text, text
