"""Warm jails: started ahead of their run, yet each run still gets a fresh jail of its own."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from rds.sandbox import SandboxLimits, _warm, runner
from rds.sandbox._spawn import Jail, JailConfig
from tests.sandbox.conftest import CONFIG, SECRET, ready, run
from tests.sandbox.procs import descendants, is_bwrap


def test_consecutive_runs_share_nothing(
    pool: _warm.WarmPool, cold_starts: list[JailConfig], dataset: Path
) -> None:
    first = run(
        f"""
        def leave_traces(df):
            import builtins, os, sys, threading, time, types
            with open("/scratch/trace", "w") as handle:
                handle.write("{SECRET}")
            builtins.rds_trace = "{SECRET}"
            sys.modules["json"].rds_trace = "{SECRET}"
            sys.modules["rds_trace"] = types.ModuleType("rds_trace")
            os.environ["RDS_TRACE"] = "{SECRET}"
            threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
            if os.fork() == 0:
                time.sleep(60)
                os._exit(0)
            print("first")
            return len(os.listdir("/proc"))
        """,
        [dataset],
    )
    assert first.ok, first.error
    ready(pool)
    second = run(
        """
        def look_for_traces(df):
            import builtins, json, os, sys, threading
            print("second")
            return {
                "scratch": sorted(os.listdir("/scratch")),
                "builtins": hasattr(builtins, "rds_trace"),
                "module": hasattr(json, "rds_trace") or "rds_trace" in sys.modules,
                "env": "RDS_TRACE" in os.environ,
                "threads": threading.active_count(),
                "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
            }
        """,
        [dataset],
    )
    assert second.value() == {
        "scratch": [],
        "builtins": False,
        "module": False,
        "env": False,
        "threads": 1,
        "pids": [1, 2],  # bwrap's init and this run: the first run's processes are gone
    }
    assert second.stdout == "second\n" and SECRET not in second.stderr
    assert len(cold_starts) == 1  # the first run was cold, the second took the warm jail


def test_stdout_and_stderr_are_each_runs_own(
    pool: _warm.WarmPool, cold_starts: list[JailConfig], dataset: Path
) -> None:
    ready(pool)
    source = (
        "def f(df):\n    import sys\n    print('out {0}')\n    print('err {0}', file=sys.stderr)\n"
    )
    for tag in ("a", "b"):
        ready(pool)
        result = run(source.format(tag), [dataset])
        assert (result.stdout, result.stderr) == (f"out {tag}\n", f"err {tag}\n")
    assert cold_starts == []


@pytest.mark.parametrize("victim", ["bwrap", "python"])
def test_a_killed_warm_jail_is_replaced(
    pool: _warm.WarmPool, cold_starts: list[JailConfig], dataset: Path, victim: str
) -> None:
    jail = ready(pool)
    target = jail.process.pid if victim == "bwrap" else descendants(jail.process.pid)[-1]
    os.kill(target, signal.SIGKILL)
    time.sleep(0.2)
    result = run("def f(df):\n    return len(df)\n", [dataset])
    assert result.value() == 6
    assert cold_starts == [CONFIG]  # the dead jail was never used
    replacement = ready(pool)
    assert replacement is not jail and replacement.alive()


def test_a_jail_dying_as_it_is_taken_costs_only_a_cold_start(
    pool: _warm.WarmPool,
    cold_starts: list[JailConfig],
    dataset: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    jail = ready(pool)
    monkeypatch.setattr(Jail, "alive", lambda self: True)  # it passes the check, then dies
    os.kill(descendants(jail.process.pid)[-1], signal.SIGKILL)
    result = run("def f(df):\n    return len(df)\n", [dataset])
    assert result.value() == 6
    assert cold_starts == [CONFIG]
    assert jail.process.returncode is not None  # reaped


@pytest.mark.parametrize(
    ("body", "limit"),
    [
        ("import os\n    while True:\n        os.fork()", "processes"),
        ("while True:\n        pass", "cpu"),
        (
            "hoard = []\n    while True:\n        hoard.append(bytearray(64 * 1024 * 1024))",
            "memory",
        ),
    ],
)
def test_limits_bite_in_a_warm_jail(
    pool: _warm.WarmPool, cold_starts: list[JailConfig], dataset: Path, body: str, limit: str
) -> None:
    ready(pool)
    result = run(f"def f(df):\n    {body}\n", [dataset])
    assert result.error_type == f"LimitExceeded:{limit}"
    assert cold_starts == []


def test_cpu_limit_counts_from_the_job_not_the_imports(
    pool: _warm.WarmPool, cold_starts: list[JailConfig], dataset: Path
) -> None:
    ready(pool)
    # The imports took some CPU; with them counted, 0.8 s more would pass a 1 s limit.
    limits = SandboxLimits(cpu_seconds=1, memory_mb=1024, wall_seconds=20, max_processes=24)
    busy = "def f(df):\n    import time\n    end = time.process_time() + 0.8\n"
    busy += "    while time.process_time() < end:\n        pass\n    return 1\n"
    assert run(busy, [dataset], limits=limits).value() == 1
    assert cold_starts == []


def test_the_next_jail_waits_for_a_short_run_but_not_for_a_long_one(
    pool: _warm.WarmPool, cold_starts: list[JailConfig], dataset: Path
) -> None:
    seen: dict[str, bool] = {}

    def watch(name: str, after: float) -> threading.Thread:
        def look() -> None:
            time.sleep(after)
            seen[name] = pool.waiting(CONFIG) is not None

        thread = threading.Thread(target=look)
        thread.start()
        return thread

    sleeper = "def f(df):\n    import time\n    time.sleep({})\n    return 1\n"
    short = []  # a loaded machine can delay one look past the run: three tries
    for _ in range(3):
        ready(pool)
        watcher = watch("0.8", 0.5)
        assert run(sleeper.format(0.8), [dataset]).value() == 1
        watcher.join()
        short.append(seen["0.8"])
        if not seen["0.8"]:
            break
    long = _warm.DEFER_SECONDS + 1.5
    ready(pool)
    watcher = watch(str(long), _warm.DEFER_SECONDS + 0.8)
    assert run(sleeper.format(long), [dataset]).value() == 1
    watcher.join()
    # Beside a short run the next jail is not started (its imports would slow the run);
    # beside a long one it is, so that a run that comes meanwhile finds it.
    assert False in short, short
    assert seen[str(long)] is True
    assert cold_starts == []


def test_concurrent_runs_each_get_their_own_jail(
    pool: _warm.WarmPool, cold_starts: list[JailConfig], make_dataset: Callable[..., Path]
) -> None:
    datasets = [make_dataset(pd.DataFrame({"x": [i] * (i + 1)}), name=f"d{i}") for i in (1, 2)]
    ready(pool)
    barrier = threading.Barrier(2)
    values: dict[int, object] = {}

    def one(i: int) -> None:
        barrier.wait()
        values[i] = run(
            "def f(df):\n    return [len(df), int(df.x.sum())]\n", [datasets[i]]
        ).value()

    threads = [threading.Thread(target=one, args=(i,)) for i in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert values == {0: [2, 2], 1: [3, 6]}
    assert len(cold_starts) == 1  # one took the warm jail, the other started its own


def test_another_bwrap_or_no_bwrap_means_a_cold_start(
    pool: _warm.WarmPool,
    cold_starts: list[JailConfig],
    dataset: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    ready(pool)
    assert runner.BWRAP is not None
    other = tmp_path / "bwrap"
    other.symlink_to(runner.BWRAP)
    monkeypatch.setattr(runner, "BWRAP", str(other))
    assert run("def f(df):\n    return 1\n", [dataset]).value() == 1
    monkeypatch.setattr(runner, "BWRAP", None)
    unsandboxed = run("def f(df):\n    return 2\n", [dataset], allow_unsandboxed=True)
    assert unsandboxed.value() == 2 and not unsandboxed.sandboxed
    assert [c.bwrap for c in cold_starts] == [str(other), None]
    assert pool.waiting(CONFIG) is not None  # the warm jail for the real bwrap is untouched


def test_importing_rds_starts_nothing_and_jails_end_with_their_owner(
    dataset: Path, tmp_path: Path
) -> None:
    script = textwrap.dedent(
        f"""
        import glob, os, sys, threading, time
        import rds, rds.sandbox
        from rds.sandbox import _warm, runner
        time.sleep(0.3)
        children = "".join(open(t).read() for t in glob.glob("/proc/self/task/*/children"))
        print(threading.active_count(), len(children.split()), flush=True)  # 1 thread, 0 jails
        if sys.argv[1] == "run":
            runner.run_python("def f(df):\\n    return 1\\n", "f", datasets=[{str(dataset)!r}])
            config = runner.JailConfig.for_run(runner.BWRAP, runner.SandboxLimits())
            while _warm.POOL.waiting(config) is None:
                time.sleep(0.05)
            jail = _warm.POOL.waiting(config)
            print(jail.process.pid, jail.workdir, flush=True)
            if sys.argv[2] == "kill":
                os.kill(os.getpid(), 9)
        """
    )
    quiet = subprocess.run(
        [sys.executable, "-c", script, "idle"], capture_output=True, text=True, timeout=60
    )
    assert quiet.stdout.split() == ["1", "0"], quiet.stderr
    for how in ("exit", "kill"):
        start = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-c", script, "run", how], capture_output=True, text=True, timeout=60
        )
        assert time.monotonic() - start < 30  # no hang at exit
        threads, children, pid, workdir = done.stdout.split()
        assert (threads, children) == ("1", "0"), done.stderr
        deadline = time.monotonic() + 5
        while is_bwrap(int(pid)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not is_bwrap(int(pid)), f"the warm jail outlived its owner ({how})"
        if how == "exit":
            assert not Path(workdir).exists()  # removed at exit
        shutil.rmtree(workdir, ignore_errors=True)  # a killed owner cleans up nothing
