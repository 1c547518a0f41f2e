"""Polling from a daemon thread, for widgets that refresh themselves.

Widgets poll the domain (the owner's desk, the scientist's trackers) so that nobody
refreshes by hand; the poller knows nothing about what it polls.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

#: Seconds between polls, and how long a widget keeps polling a request nobody decides.
POLL_SECONDS = 2.0
GIVE_UP_SECONDS = 6 * 3600.0


class Poller:
    """Call ``tick`` every ``interval`` seconds on a daemon thread until it returns False.

    A tick that raises stops the poller and hands the error to ``on_error`` (the widget
    shows it); ``stop()`` ends it from outside, e.g. when the widget is closed.
    """

    def __init__(
        self,
        tick: Callable[[], bool],
        *,
        interval: float = POLL_SECONDS,
        on_error: Callable[[Exception], None] | None = None,
        give_up: float = GIVE_UP_SECONDS,
    ) -> None:
        self._tick = tick
        self._interval = interval
        self._on_error = on_error
        self._give_up = give_up
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rds-poller", daemon=True)

    def start(self) -> Poller:
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """End the polling; from another thread, also wait for a tick in flight to finish,
        so that nothing it does (a read of the domain) happens after the widget is closed."""
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and not self._stop.is_set()

    def _loop(self) -> None:
        started = time.monotonic()
        while not self._stop.wait(self._interval):
            if time.monotonic() - started > self._give_up:
                return
            try:
                if not self._tick():
                    return
            except Exception as exc:  # shown in the widget; a poller must not die silently
                if self._on_error is not None:
                    self._on_error(exc)
                return
