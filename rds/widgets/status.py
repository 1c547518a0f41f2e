"""A transient status line: shown while something slow runs, gone when it is done.

The first ``rds.connect`` in a kernel takes seconds (most of it loading PySyft) and said
nothing while it did. :func:`transient` shows a line for the length of a ``with`` block:
in a notebook a display output that is emptied at the end (the cell's other outputs stay),
in a terminal a line on stderr that is erased. Kept free of IPython imports outside a
kernel.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from rds.widgets.html import esc
from rds.widgets.live import in_kernel


@contextlib.contextmanager
def transient(text: str) -> Iterator[None]:
    """Show ``text`` while the block runs; nothing of it is left afterwards.

    Examples
    --------
    >>> with transient("Connecting to http://127.0.0.1:8081…"):
    ...     pass
    """
    if in_kernel():
        from IPython.display import display

        bundle = {"text/plain": text, "text/html": f'<span class="rds-note">{esc(text)}</span>'}
        handle = display(bundle, raw=True, display_id=True)
        try:
            yield
        finally:
            if handle is not None:
                handle.update({"text/plain": ""}, raw=True)
        return
    shown = sys.stderr.isatty()
    if shown:
        print(text, end="", file=sys.stderr, flush=True)
    try:
        yield
    finally:
        if shown:
            print("\r" + " " * len(text) + "\r", end="", file=sys.stderr, flush=True)
