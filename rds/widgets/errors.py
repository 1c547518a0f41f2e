"""rds's errors in IPython and Jupyter: the message first, the traceback one ``%tb`` away.

An ``rds.RDSError`` says what happened and what to do next; under IPython's default
rendering that sentence sits below thirty lines of rds's own frames. :func:`install`
registers a custom exception handler (IPython's ``set_custom_exc``) that prints the error's
class and message, its notes (a request's id), and where the full traceback is.
``%tb`` shows that traceback: the handler stores the exception in ``sys.last_type``,
``sys.last_value`` and ``sys.last_traceback`` as IPython's own handler does.

Kept free of IPython imports: outside IPython :func:`install` does nothing and costs
nothing.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any

from rds.errors import RDSError

#: What the compact rendering says after the message.
FULL_TRACEBACK = "(rds's full traceback: run %tb)"
_RED, _DIM, _RESET = "\x1b[31;1m", "\x1b[2m", "\x1b[0m"


def install() -> bool:
    """Show rds's errors compactly in the running IPython shell, if there is one.

    Idempotent; leaves alone a shell whose custom exception handler someone else set.
    Returns whether rds's handler is in place.

    Examples
    --------
    >>> from rds.widgets import errors
    >>> errors.install()   # outside IPython: nothing to do
    False
    """
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    if shell is None or not hasattr(shell, "set_custom_exc"):
        return False
    current = tuple(getattr(shell, "custom_exceptions", ()))
    if current == (RDSError,):
        return True
    if current:
        return False  # another tool's handler: not ours to replace
    shell.set_custom_exc((RDSError,), _show)
    return True


def compact(value: BaseException) -> list[str]:
    """The lines shown for ``value``: ``Class: message``, its notes, where the rest is.

    Examples
    --------
    >>> compact(RDSError("It failed. Do this next."))  # doctest: +NORMALIZE_WHITESPACE
    ['\\x1b[31;1mRDSError\\x1b[0m: It failed. Do this next.',
     "\\x1b[2m(rds's full traceback: run %tb)\\x1b[0m"]
    """
    name = type(value).__qualname__
    lines = [f"{_RED}{name}{_RESET}: {value}"]
    lines.extend(str(note) for note in getattr(value, "__notes__", ()))
    lines.append(f"{_DIM}{FULL_TRACEBACK}{_RESET}")
    return lines


def _show(
    shell: Any,
    etype: type[BaseException],
    value: BaseException,
    tb: TracebackType | None,
    tb_offset: int | None = None,
) -> list[str]:
    # As IPython's own handler does (InteractiveShell._get_exc_info), so that %tb and
    # %debug find this exception.
    sys.last_type, sys.last_value, sys.last_traceback = etype, value, tb
    lines = compact(value)
    # IPython 8 no longer shows what a custom handler returns (7 did): the handler shows it,
    # through the shell's own channel (in a kernel, an "error" output).
    if sys.modules["IPython"].version_info >= (8,):
        shell._showtraceback(etype, value, lines)
        return []
    return lines
