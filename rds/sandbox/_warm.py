"""Warm jails: the next run's jail, started before the run exists.

Most of a small run's cost is a fresh interpreter importing numpy, pandas and pyarrow. A
jail's command line no longer depends on its run (data arrives as descriptors, limits with
the job), so the pool starts one ahead: ``take`` hands out the waiting jail for a
configuration, if there is a live one, and asks a background thread to start the next.
Each jail still serves exactly one run and exits (see ``_spawn``): warming changes when a
jail starts, never what one run can leave for another.

- When to start the next jail: its imports take ~0.3 s of CPU, and on two cores running
  them beside a run slowed that run's own pandas work (a 10M-row group-by: median +15%,
  worst 3x). So if the taken jail was ready (runs come slower than jails import), the next
  one starts when no run is in progress, or ``DEFER_SECONDS`` later if runs go on. If the
  run found no jail, or one still importing (runs come back to back), the next starts at
  once, so that it has the run's duration to import. A jail still importing is taken
  anyway: waiting for it is never slower than starting one.
- One waiting jail per configuration (``JailConfig``), for the ``CAPACITY`` configurations
  used most recently; the others' jails are stopped.
- Nothing starts at import: the first ``take`` starts the thread, and that run is cold.
- A waiting jail that died is found by ``take``, removed and replaced, never used.
- The thread that starts jails lives as long as the pool, because ``--die-with-parent``
  ties a jail's life to the *thread* that started it. ``shutdown`` (run at exit) stops it
  and kills and reaps every waiting jail; a forked child forgets the parent's jails.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator

from rds.sandbox._spawn import Jail, JailConfig

CAPACITY = 2
DEFER_SECONDS = 1.0
JOIN_SECONDS = 15.0


class WarmPool:
    """Waiting jails by configuration, and the thread that starts them.

    Parameters
    ----------
    start
        Starts a jail for a configuration (``Jail.start``; tests may wrap it).
    capacity
        How many configurations keep a waiting jail.
    """

    def __init__(self, start: Callable[[JailConfig], Jail] = Jail.start, capacity: int = CAPACITY):
        self._start = start
        self._capacity = capacity
        self._reset()
        self._exit_hook = False
        #: Why the last jail could not be started, for diagnostics.
        self.last_error: Exception | None = None

    def _reset(self) -> None:
        self._cond = threading.Condition()
        self._ready: dict[JailConfig, Jail] = {}
        self._wanted: OrderedDict[JailConfig, None] = OrderedDict()  # least recent first
        self._requests: OrderedDict[JailConfig, None] = OrderedDict()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._running = 0
        self._hurry = False

    def take(self, config: JailConfig) -> Jail | None:
        """The waiting jail for ``config``, if a live one is there; have the next one started.

        The jail may still be importing (see ``Jail.ready``). Returns None when there is
        none (the caller starts one itself), or once the pool is shut down.
        """
        stale: list[Jail] = []
        with self._cond:
            if self._closed:
                return None
            jail = self._ready.pop(config, None)
            self._wanted[config] = None
            self._wanted.move_to_end(config)
            while len(self._wanted) > self._capacity:
                evicted, _ = self._wanted.popitem(last=False)
                self._requests.pop(evicted, None)
                if evicted in self._ready:
                    stale.append(self._ready.pop(evicted))
            self._requests[config] = None
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="rds-warm", daemon=True)
                self._thread.start()
                if not self._exit_hook:
                    atexit.register(self.shutdown)
                    self._exit_hook = True
            self._cond.notify()
        if jail is not None and not jail.alive():
            stale.append(jail)
            jail = None
        if jail is None or not jail.ready:
            with self._cond:  # runs come faster than jails import: start the next one now
                self._hurry = True
                self._cond.notify()
        for old in stale:
            old.close()
        return jail

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """Count a run as in progress; the next jail's imports wait for it (up to a limit)."""
        with self._cond:
            self._running += 1
        try:
            yield
        finally:
            with self._cond:
                self._running -= 1
                self._cond.notify_all()

    def waiting(self, config: JailConfig) -> Jail | None:
        """The jail waiting for ``config``, left in place (for tests and diagnostics)."""
        with self._cond:
            return self._ready.get(config)

    def shutdown(self) -> None:
        """Stop starting jails; kill and reap the waiting ones. Later ``take``s return None."""
        with self._cond:
            self._closed = True
            jails = list(self._ready.values())
            self._ready.clear()
            thread = self._thread
            self._cond.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join(JOIN_SECONDS)
        for jail in jails:
            jail.close()

    def forget(self) -> None:
        """In a forked child: drop the parent's jails without touching them; start afresh."""
        for jail in self._ready.values():
            with contextlib.suppress(OSError):
                jail.channel.close()
        self._reset()

    def _defer(self) -> bool:
        return not self._closed and not self._hurry and self._running > 0

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._closed and not self._requests:
                    self._cond.wait()
                deadline = time.monotonic() + DEFER_SECONDS
                while self._defer() and time.monotonic() < deadline:
                    self._cond.wait(deadline - time.monotonic())
                self._hurry = False
                if self._closed:
                    return
                if not self._requests:  # evicted meanwhile
                    continue
                config, _ = self._requests.popitem(last=False)
                if config in self._ready:
                    continue
            try:
                jail = self._start(config)
            except Exception as exc:  # the run that needs a jail starts its own, and reports
                self.last_error = exc
                continue
            with self._cond:
                keep = not self._closed and config in self._wanted and config not in self._ready
                if keep:
                    self._ready[config] = jail
            if not keep:
                jail.close()


POOL = WarmPool()
os.register_at_fork(after_in_child=POOL.forget)
