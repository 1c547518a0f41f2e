"""Whether we are in a notebook kernel, and display bundles that carry a live widget.

Kept free of ipywidgets so that asking costs nothing outside a notebook.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any


def in_kernel() -> bool:
    """True inside a Jupyter kernel (where ipywidgets can render), False in a terminal."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def live_bundle(obj: Any, widget: Callable[[], Any]) -> dict[str, Any]:
    """``obj``'s display: its static HTML, plus the live widget ``widget()`` builds, inside
    a kernel.

    JupyterLab shows the widget; anything without a widget manager (a saved notebook
    opened elsewhere, nbconvert) falls back to the HTML.
    """
    bundle: dict[str, Any] = {"text/plain": repr(obj), "text/html": obj._repr_html_()}
    if in_kernel():
        view = widget()._repr_mimebundle_() or {}
        bundle.update({k: v for k, v in view.items() if k != "text/plain"})
    return bundle
