"""Hostile functions: each must fail, and no secret may appear in anything that comes back."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

from rds.errors import LimitExceeded, ResultTypeRefused
from rds.sandbox import RunResult, SandboxLimits, runner
from rds.sandbox import result as result_module
from tests.sandbox.conftest import SECRET, TIGHT, run

PACKAGE = Path(runner.__file__).resolve().parent


def leaked(result: RunResult, secret: str = SECRET) -> bool:
    """Whether ``secret`` shows up anywhere in what a run returned."""
    texts = [result.stdout, result.stderr, result.error or "", result.error_type or ""]
    return any(secret in t for t in texts) or secret.encode() in (result.payload or b"")


@pytest.fixture
def domain_dir(tmp_path: Path, make_dataset: Callable[..., Path]) -> Path:
    """A fake domain: secrets beside ``private/<dataset>``, like a real domain's layout."""
    root = tmp_path / "domain"
    (root / "secrets").mkdir(parents=True)
    (root / "keys.json").write_text(f'{{"signing_key": "{SECRET}"}}')
    (root / "secrets" / "admin.json").write_text(f'{{"password": "{SECRET}"}}')
    (root / "syft.db").write_bytes(b"SQLite format 3\x00" + SECRET.encode())
    (root / "ledger.jsonl").write_text(f'{{"event": "ran", "note": "{SECRET}"}}\n')
    make_dataset(pd.DataFrame({"age": [40, 50]}), name="public_ok", root=root / "private")
    return root


@pytest.fixture
def listener() -> Iterator[tuple[int, list[bytes]]]:
    """A real TCP server on the host's 127.0.0.1; records anything that connects."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    received: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                received.append(conn.recv(1024) or b"<connected>")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], received
    stop.set()
    thread.join()
    server.close()


def test_network_is_unreachable(dataset: Path, listener: tuple[int, list[bytes]]) -> None:
    port, received = listener
    result = run(
        f"""
        def f(df):
            import socket
            s = socket.create_connection(("127.0.0.1", {port}), timeout=2)
            s.sendall(df.patient_id.iloc[0].encode())
        """,
        [dataset],
    )
    assert not result.ok
    assert result.error_type == "ConnectionRefusedError"
    outside = run(
        """
        def f(df):
            import socket
            socket.create_connection(("1.1.1.1", 53), timeout=2)
        """,
        [dataset],
    )
    assert outside.error_type == "OSError"
    assert "Network is unreachable" in (outside.error or "")
    time.sleep(0.3)
    assert received == []


def test_etc_passwd_is_not_visible(dataset: Path) -> None:
    result = run("def f(df):\n    return open('/etc/passwd').read()\n", [dataset])
    assert result.error_type == "FileNotFoundError"
    assert not leaked(result, "root:x:0:0")
    listing = run(
        "def f(df):\n    import os\n    return [sorted(os.listdir('/')), os.listdir('/root')]\n",
        [dataset],
    ).value()
    assert isinstance(listing, list)
    assert "etc" not in listing[0] and "home" not in listing[0]
    assert listing[1] == [".pyenv"] or "root" not in listing[0]  # only the interpreter


@pytest.mark.parametrize("target", ["keys.json", "syft.db", "ledger.jsonl", "secrets/admin.json"])
def test_domain_files_beside_the_dataset_are_out_of_reach(domain_dir: Path, target: str) -> None:
    dataset = domain_dir / "private" / "public_ok"
    result = run(
        f"""
        def f(df):
            import os
            for path in [{str(domain_dir / target)!r}, "/data/0/../../{target}",
                         "/proc/1/root{domain_dir / target}",
                         "/proc/self/root{domain_dir / target}"]:
                try:
                    print(open(path, "rb").read())
                except OSError as exc:
                    print("refused", type(exc).__name__)
            return open({str(domain_dir / target)!r}, "rb").read().decode()
        """,
        [dataset],
    )
    assert not result.ok
    assert result.error_type in {"FileNotFoundError", "PermissionError"}
    assert result.stdout.count("refused") == 4
    assert not leaked(result)


def test_other_datasets_are_out_of_reach(make_dataset: Callable[..., Path], tmp_path: Path) -> None:
    mine = make_dataset(pd.DataFrame({"age": [1, 2]}), name="a")
    other = make_dataset(name="b")  # holds SECRET in patient_id
    result = run(
        f"""
        def f(df):
            import os
            print(os.path.exists("/data"))  # data arrives as descriptors; nothing is mounted
            for path in ["/data/0/data.arrow", "/data/1/data.arrow", {str(other / "data.arrow")!r}]:
                try:
                    print(open(path, "rb").read())
                except OSError as exc:
                    print("refused", type(exc).__name__)
            return open({str(other / "data.arrow")!r}, "rb").read()
        """,
        [mine],
    )
    assert not result.ok
    assert result.stdout.startswith("False")
    assert result.stdout.count("refused") == 3
    assert not leaked(result)


def test_nothing_is_written_outside_scratch(dataset: Path, tmp_path: Path) -> None:
    marker = f"rds-escape-{os.getpid()}"
    targets = [
        "/data/0/" + marker,
        str(dataset / marker),
        "/opt/rds/rds/sandbox/" + marker,
        str(PACKAGE / marker),
        str(tmp_path / marker),
        "/" + marker,
        "/usr/" + marker,
        "/dev/shm/" + marker,
    ]
    result = run(
        f"""
        def f(df):
            results = []
            for path in {targets!r}:
                try:
                    with open(path, "w") as handle:
                        handle.write("x")
                    results.append("WROTE " + path)
                except OSError as exc:
                    results.append(type(exc).__name__)
            with open("scratch-file", "w") as handle:  # the scratch dir itself is writable
                handle.write("fine")
            import tempfile  # temporary files go to scratch (TMPDIR), never to the host

            with open(tempfile.gettempdir() + "/{marker}", "w") as handle:
                handle.write("fine")
            results.append(tempfile.gettempdir())
            return results
        """,
        [dataset],
    )
    outcomes = result.value()
    assert isinstance(outcomes, list)
    assert not [o for o in outcomes if o.startswith("WROTE")]
    assert outcomes[-1] == "/scratch"
    for path in [dataset / marker, PACKAGE / marker, tmp_path / marker, Path("/tmp") / marker]:
        assert not path.exists()


def test_host_environment_processes_and_privileges_are_out_of_reach(
    dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RDS_ADMIN_PASSWORD", SECRET)
    result = run(
        f"""
        def f(df):
            import os, signal
            status = dict(
                line.split(":\\t", 1) for line in open("/proc/self/status").read().splitlines()
            )
            try:
                os.kill({os.getpid()}, signal.SIGKILL)  # the data owner's process
                killed = "killed"
            except OSError as exc:
                killed = type(exc).__name__
            return {{
                "env": dict(os.environ),
                "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
                "uid": os.getuid(),
                "caps": [status["CapEff"], status["CapPrm"], status["CapBnd"]],
                "no_new_privs": status["NoNewPrivs"],
                "kill": killed,
            }}
        """,
        [dataset],
    )
    seen = result.value()
    assert isinstance(seen, dict)
    assert "RDS_ADMIN_PASSWORD" not in seen["env"] and not leaked(result)
    assert seen["pids"] == [1, 2]  # bwrap's init and the function: no host processes
    assert seen["kill"] == "ProcessLookupError"
    assert seen["caps"] == ["0000000000000000"] * 3 and seen["no_new_privs"] == "1"
    assert seen["uid"] != 0 or os.geteuid() != 0


def test_fork_bomb_is_stopped_by_the_process_limit(dataset: Path) -> None:
    start = time.monotonic()
    result = run(
        """
        def f(df):
            import os
            while True:
                os.fork()
        """,
        [dataset],
    )
    assert result.error_type == "LimitExceeded:processes"
    assert "max_processes=24" in (result.error or "")
    assert time.monotonic() - start < TIGHT.wall_seconds


def test_memory_bomb_is_stopped(dataset: Path) -> None:
    result = run(
        """
        def f(df):
            hoard = []
            while True:
                hoard.append(bytearray(64 * 1024 * 1024))
        """,
        [dataset],
    )
    assert result.error_type == "LimitExceeded:memory"
    assert "memory_mb=1024" in (result.error or "")


def test_infinite_loop_is_stopped_by_the_cpu_limit(dataset: Path) -> None:
    start = time.monotonic()
    result = run("def f(df):\n    while True:\n        pass\n", [dataset])
    assert result.error_type == "LimitExceeded:cpu"
    assert time.monotonic() - start < TIGHT.wall_seconds


def test_sleeping_loop_is_stopped_by_the_wall_clock(dataset: Path) -> None:
    limits = SandboxLimits(cpu_seconds=3, memory_mb=1024, wall_seconds=2, output_mb=4)
    token = f"1000.{os.getpid()}"
    start = time.monotonic()
    result = run(
        f"""
        def f(df):
            import os, time
            if os.fork() == 0:  # a second process, which must die with the first
                os.execv("/bin/sleep", ["sleep", "{token}"])
            while True:
                print("still here")
                time.sleep(0.2)
        """,
        [dataset],
        limits=limits,
    )
    assert result.error_type == "LimitExceeded:wall"
    assert "still here" in result.stdout  # the owner sees what it printed before the kill
    assert 2 <= time.monotonic() - start < 6
    deadline = time.monotonic() + 3
    while _processes_with(token) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _processes_with(token)


def _processes_with(text: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if text.encode() in (entry / "cmdline").read_bytes():
                found.append(entry.name)
        except OSError:
            continue
    return found


def test_giant_result_is_refused(dataset: Path) -> None:
    result = run("def f(df):\n    return np.zeros(1_000_000)\n", [dataset])  # 8 MB > 4 MiB
    assert result.error_type == "LimitExceeded:output"
    assert result.payload is None
    with pytest.raises(LimitExceeded) as info:
        result.value()
    assert info.value.limit == "output"


def test_scratch_cannot_fill_the_host_disk(dataset: Path) -> None:
    # Many files, each under the per-file cap, written until the space runs out.
    result = run(
        """
        def f(df):
            chunk = b"x" * (1024 * 1024)
            written = 0
            try:
                for i in range(10_000):
                    with open(f"fill-{i}", "wb") as handle:
                        handle.write(chunk * 2)
                    written += 2
            except OSError as exc:
                return {"written_mb": written, "error": exc.strerror}
            return {"written_mb": written, "error": None}
        """,
        [dataset],
        limits=SandboxLimits(
            cpu_seconds=10, memory_mb=1024, wall_seconds=30, output_mb=4, scratch_mb=32
        ),
    )
    outcome = result.value()
    assert isinstance(outcome, dict)
    assert outcome["error"] == "No space left on device"
    assert outcome["written_mb"] <= 32


def test_giant_stdout_is_capped(dataset: Path) -> None:
    result = run(
        """
        def f(df):
            line = df.patient_id.iloc[0] * 1000
            while True:
                print(line)
        """,
        [dataset],
    )
    assert result.error_type == "LimitExceeded:output"
    assert len(result.stdout) <= result_module.STDIO_CHARS + 100
    assert "[truncated:" in result.stdout


@pytest.mark.parametrize(
    "expression",
    ["{1, 2}", "lambda: 1", "(i for i in range(3))", "df.__class__", "type('C', (), {})()"],
)
def test_results_of_other_types_are_refused(dataset: Path, expression: str) -> None:
    result = run(f"def f(df):\n    return {expression}\n", [dataset])
    assert result.error_type == "ResultTypeRefused"
    assert "Allowed:" in (result.error or "")
    with pytest.raises(ResultTypeRefused):
        result.value()


SMUGGLER = """
def f(df):
    class Smuggler:
        def __reduce__(self):
            return (open, ({marker!r}, "w"))
    return {expression}
"""


@pytest.mark.parametrize(
    "expression",
    [
        "Smuggler()",
        "{'ok': 1, 'model': Smuggler()}",
        "pd.DataFrame({'x': [Smuggler()]})",
        "pd.Series([Smuggler()])",
        "np.array([Smuggler()], dtype=object)",
    ],
)
def test_pickle_cannot_be_smuggled_out(dataset: Path, tmp_path: Path, expression: str) -> None:
    marker = tmp_path / "unpickled"
    result = run(SMUGGLER.format(marker=str(marker), expression=expression), [dataset])
    assert result.error_type == "ResultTypeRefused"
    assert result.payload is None
    assert not marker.exists()
