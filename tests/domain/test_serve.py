"""A served domain as three processes: supervisor, confined syft server, worker.

Real syft over HTTP and real bubblewrap throughout. One module-scoped domain serves the
confinement, status, queue-limit, restart and stop tests, in that order (the last stops it);
the fairness test serves a domain of its own with one run at a time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil
import pytest

import rds
from rds.domain import serve
from rds.domain.supervisor import RESTARTS, Supervisor
from rds.sandbox import confine
from rds.worker.layout import Layout
from rds.worker.process import QUEUE_LIMIT_ACTOR, FairQueue, Worker
from tests.conftest import free_port, patients

pytestmark = pytest.mark.skipif(
    not rds.sandbox.bwrap_available(), reason="needs bubblewrap (Debian package bubblewrap)"
)

DP_QUERY = "SELECT ward, COUNT(*) AS n, AVG(age) AS mean_age FROM patients GROUP BY ward"
WARDS = ["cardio", "onco", "neuro"]
ROOT = os.geteuid() == 0
SERVER_UID = confine.SERVER_UID if ROOT else os.getuid()


def _publish_patients(domain: rds.Domain) -> None:
    domain.publish(
        "patients",
        patients(),
        description="Synthetic admissions",
        bounds={"age": (0, 120), "los_days": (0, 100)},
        categories={"ward": WARDS},
        policy=rds.Policy(epsilon_budget=10.0, auto_release="dp"),
    )


@pytest.fixture(scope="module")
def hospital(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A served domain (2 runs at once, at most 2 undecided requests per scientist)."""
    path = tmp_path_factory.mktemp("serve") / "hospital"
    limits = rds.WorkerLimits(pool_size=2, max_waiting_per_scientist=2)
    with rds.Domain.create("Serve Hospital", path=path, worker_limits=limits) as domain:
        _publish_patients(domain)
        people = {name: domain.add_scientist(f"{name}@lab.example.org") for name in ("ada", "bo")}
        people["cy"] = domain.add_scientist("cy@lab.example.org")
    started = time.monotonic()
    url = serve.start(path, port=free_port(), timeout=240)
    print(f"\nserved in {time.monotonic() - started:.1f}s")
    yield {"path": path, "url": url, "people": people}
    serve.stop(path)


def _info(path: Path) -> dict[str, Any]:
    return dict(json.loads((path / "server.json").read_text()))


def _status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {k: v.strip() for k, v in (line.split(":", 1) for line in lines)}


def _session(hospital: dict[str, Any], name: str) -> rds.Session:
    creds = hospital["people"][name]
    return rds.connect(hospital["url"], email=creds.email, password=creds.password)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "rds.cli", "domain", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


# -- the server's confinement ----------------------------------------------------------
def test_server_runs_as_its_own_user_without_capabilities(hospital: dict[str, Any]) -> None:
    info = _info(hospital["path"])
    status = _status(info["server_pid"])
    assert "rds._syft.http_main" in Path(f"/proc/{info['server_pid']}/cmdline").read_text()
    assert status["Uid"].split() == [str(SERVER_UID)] * 4
    assert info["server_uid"] == SERVER_UID
    for caps in ("CapEff", "CapPrm", "CapInh", "CapAmb", "CapBnd"):
        assert int(status[caps], 16) == 0, caps
    # The worker and the supervisor run as the owner.
    assert _status(info["worker_pid"])["Uid"].split()[0] == str(os.getuid())
    assert _status(info["pid"])["Uid"].split()[0] == str(os.getuid())


def test_server_sees_nothing_of_the_domain_but_its_state(hospital: dict[str, Any]) -> None:
    path: Path = hospital["path"]
    pid = _info(path)["server_pid"]
    view = Path(f"/proc/{pid}/root")
    private = next((path / "private").rglob("*.parquet"))
    host_paths = [
        path,
        private,
        path / "private" / "patients.policy.json",
        path / "secrets" / "admin.json",
        path / "secrets" / "identity.json",
        path / "secrets" / "ledger.key",
        path / "ledger.jsonl",
        path / "server.log",
    ]
    for host_path in host_paths:
        assert host_path.exists()
        assert not (view / str(host_path).lstrip("/")).exists(), host_path
    home = Path.home()
    for entry in home.iterdir():
        if entry.name != ".pyenv":  # the interpreter itself lives there on this machine
            assert not (view / str(entry).lstrip("/")).exists(), entry
    assert (view / "state" / "syft.db").is_file()
    identity = json.loads((view / "state" / "identity.json").read_text())
    assert set(identity) == {"name", "server_id", "signing_key", "admin_email"}
    admin = json.loads((path / "secrets" / "admin.json").read_text())
    assert admin["password"] not in (view / "state" / "identity.json").read_text()
    # Nothing it holds open leads into the domain directory (the lock, the log, the store):
    # its output goes to a pipe, and its database is open under /state.
    targets = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
    assert "/state/syft.db" in targets
    assert not [t for t in targets if t.startswith(str(path))], targets
    assert os.readlink(f"/proc/{pid}/fd/1").startswith("pipe:")


PROBE = textwrap.dedent(
    """
    import json, os, sys
    results = {}
    def attempt(name, fn):
        try:
            fn()
            results[name] = "ok"
        except Exception as exc:
            results[name] = type(exc).__name__
    for name, target in json.loads(sys.argv[1]).items():
        attempt("read " + name, lambda t=target: open(t, "rb").read(1))
    for directory in ("/home", "/root", "/work", "/etc"):
        attempt("list " + directory, lambda d=directory: os.listdir(d))
    for target in json.loads(sys.argv[2]):
        attempt("write " + target, lambda t=target: open(t, "w").write("x"))
    attempt("write /state", lambda: open("/state/probe", "w").write("x"))
    attempt("write /tmp", lambda: open("/tmp/probe", "w").write("x"))
    results["processes"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    print(json.dumps(results))
    """
)


def test_the_same_confinement_refuses_a_probe(hospital: dict[str, Any], tmp_path: Path) -> None:
    path: Path = hospital["path"]
    reads = {
        "private parquet": str(next((path / "private").rglob("*.parquet"))),
        "admin password": str(path / "secrets" / "admin.json"),
        "ledger key": str(path / "secrets" / "ledger.key"),
        "ledger": str(path / "ledger.jsonl"),
        "policy": str(path / "private" / "patients.policy.json"),
        "domain config": str(path / "domain.json"),
        "host passwd": "/etc/passwd",
        "home": str(Path.home() / ".bashrc"),
    }
    writes = [
        str(path / "ledger.jsonl"),
        "/probe",
        "/etc/probe",
        "/usr/probe",
        str(Path(rds.__file__).parent / "probe.py"),
        str(Path(sys.prefix) / "probe"),
        str(Path.home() / "probe"),
    ]
    state = tmp_path / "state"
    state.mkdir()
    confine.hand_over(state)
    with (tmp_path / "probe.log").open("wb") as log:
        probe = confine.start(
            ["-c", PROBE, json.dumps(reads), json.dumps(writes)], state_dir=state, log=log
        )
        assert probe.wait(timeout=60) == 0, (tmp_path / "probe.log").read_text()
    results = json.loads((tmp_path / "probe.log").read_text().splitlines()[-1])
    for name in reads:
        assert results[f"read {name}"] in {"FileNotFoundError", "PermissionError"}, name
    assert results["list /home"] == "FileNotFoundError"
    # Directories that exist only to hold a mount cannot be listed; one that holds none (a
    # checkout outside /work, as in CI) does not exist at all.
    for directory in ("/root", "/work", "/etc"):
        assert results[f"list {directory}"] in {"PermissionError", "FileNotFoundError"}, directory
    for target in writes:
        assert results[f"write {target}"] in {"OSError", "PermissionError", "FileNotFoundError"}
    assert results["write /state"] == "ok" and results["write /tmp"] == "ok"
    assert (state / "probe").read_text() == "x"
    assert len(results["processes"]) <= 3  # its own pid namespace: no host process in view
    assert not (path / "probe").exists()


def test_handing_over_clears_traps_a_compromised_server_could_leave(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"  # stands for /etc/passwd, a venv file, ...
    outside.write_text("precious")
    state = tmp_path / "state"
    (state / "blob").mkdir(parents=True)
    (state / "syft.db").write_text("db")
    (state / "identity.json.tmp").symlink_to(outside)  # a root writer would follow it
    (state / "blob" / "link").symlink_to(tmp_path)
    os.link(outside, state / "blob" / "hard")  # chowning it would give the file away
    os.mkfifo(state / "fifo")  # opening it would block the supervisor
    confine.hand_over(state)
    assert sorted(str(p.relative_to(state)) for p in state.rglob("*")) == ["blob", "syft.db"]
    assert outside.read_text() == "precious" and outside.stat().st_uid == os.getuid()
    assert (state / "syft.db").stat().st_uid == SERVER_UID
    assert state.stat().st_mode & 0o777 == 0o700


# -- status, the queue limit -----------------------------------------------------------
def test_status_names_each_process(hospital: dict[str, Any]) -> None:
    info = _info(hospital["path"])
    shown = _cli("status", "--path", str(hospital["path"]))
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == f"serving at {hospital['url']}"
    roles = {line.split()[0]: line for line in lines[1:]}
    assert f"pid {info['pid']} " in roles["supervisor"] and "not confined" in roles["supervisor"]
    server = roles["server"]
    assert f"pid {info['server_pid']} " in server and f"uid {SERVER_UID} " in server
    assert "confined, no capabilities" in server and "restarts 0" in server
    worker = roles["worker"]
    assert f"pid {info['worker_pid']} " in worker and "not confined" in worker
    print("\n" + shown.stdout)


def _wait(condition: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
    return value


def _mean_los(df):  # type: ignore[no-untyped-def]
    return float(df["los_days"].mean())


def test_requests_beyond_the_queue_limit_are_denied(hospital: dict[str, Any]) -> None:
    ada = _session(hospital, "ada").dataset("patients")
    waiting = [ada.request(_mean_los, reason=f"number {i}") for i in (1, 2)]
    third = ada.request(_mean_los, reason="number 3")
    with pytest.raises(rds.RequestDenied) as denied:
        third.result(timeout=60, poll=0.2, progress=False)
    assert denied.value.reason == (
        "You have 3 requests waiting for a decision; this domain accepts at most 2 at once. "
        "Wait for decisions, or ask the owner."
    )
    assert [r.status in {"submitted", "awaiting review"} for r in waiting] == [True, True]
    # Another scientist is not held back by ada's queue.
    other = _session(hospital, "bo").dataset("patients").request(_mean_los, reason="mine")
    owner = rds.Domain.open(hospital["path"])
    _wait(lambda: owner.ledger.events(event="submitted", request=other.id), 30, "the worker")
    time.sleep(2)  # a few more listings: still not denied
    assert other.status in {"submitted", "awaiting review"}
    denials = owner.ledger.events(event="denied")
    assert [(e.data["request"], e.actor) for e in denials] == [(third.id, QUEUE_LIMIT_ACTOR)]


# -- restarts and stop -----------------------------------------------------------------
def _restarted(path: Path, role: str, old_pid: int, timeout: float) -> dict[str, Any]:
    def fresh() -> dict[str, Any] | None:
        try:
            info = _info(path)
        except (OSError, ValueError):
            return None
        return info if info[f"{role}_pid"] != old_pid and info["restarts"][role] >= 1 else None

    return dict(_wait(fresh, timeout, f"the {role} to restart"))


def test_a_killed_server_is_restarted(hospital: dict[str, Any]) -> None:
    path: Path = hospital["path"]
    before = _info(path)
    started = time.monotonic()
    os.kill(before["server_pid"], signal.SIGKILL)
    after = _restarted(path, "server", before["server_pid"], 180)
    print(f"\nserver back in {time.monotonic() - started:.1f}s")
    assert after["pid"] == before["pid"] and after["worker_pid"] == before["worker_pid"]
    assert _status(after["server_pid"])["Uid"].split()[0] == str(SERVER_UID)
    assert _session(hospital, "cy").datasets.names == ["patients"]
    assert "restarts 1" in _cli("status", "--path", str(path)).stdout
    assert "the server exited" in (path / "server.log").read_text()


def test_a_killed_worker_is_restarted_and_serves(hospital: dict[str, Any]) -> None:
    path: Path = hospital["path"]
    before = _info(path)
    started = time.monotonic()
    os.kill(before["worker_pid"], signal.SIGKILL)
    _restarted(path, "worker", before["worker_pid"], 60)
    req = _session(hospital, "cy").dataset("patients").sql(DP_QUERY, epsilon=0.5, reason="wards")
    answer = req.result(timeout=180, poll=0.2, progress=False)
    print(f"\nworker back and released a DP answer in {time.monotonic() - started:.1f}s")
    assert sorted(answer["ward"]) == sorted(WARDS)
    owner = rds.Domain.open(path)
    approvals = owner.ledger.events(event="approved", request=req.id)
    assert [e.actor for e in approvals] == ["policy:dp"]
    assert owner.ledger.events(event="submitted", request=req.id)


def _domain_processes(path: Path, pids: set[int]) -> list[str]:
    found = []
    for process in psutil.process_iter(["pid", "cmdline", "status"]):
        if process.info["status"] == psutil.STATUS_ZOMBIE:  # ended, not yet reaped
            continue
        cmdline = " ".join(process.info["cmdline"] or [])
        if process.info["pid"] in pids or str(path) in cmdline:
            found.append(f"{process.info['pid']}: {cmdline[:120]}")
    return found


def test_stop_ends_every_process_and_the_owner_can_open_it(hospital: dict[str, Any]) -> None:
    path: Path = hospital["path"]
    info = _info(path)
    pids = {info["pid"], info["server_pid"], info["worker_pid"]}
    assert len(_domain_processes(path, pids)) >= 4  # supervisor, worker, bwrap, jail init, server
    stopped = _cli("stop", "--path", str(path))
    assert stopped.returncode == 0 and stopped.stdout.strip() == "Stopped."
    assert _domain_processes(path, pids) == []
    assert not (path / "server.json").exists()
    shown = _cli("status", "--path", str(path))
    assert shown.returncode == 1 and shown.stdout.strip() == "not running"
    # Root still opens what the server's uid now owns, embedded, mocks and requests included.
    with rds.Domain.open(path) as owner:
        assert owner.embedded
        assert owner.datasets["name"].tolist() == ["patients"]
        session = rds.connect(owner, email="ada@lab.example.org", password=_password(hospital))
        assert len(session.dataset("patients").mock) > 0
        assert {r.status for r in owner.requests} >= {"released", "denied", "submitted"}


def _password(hospital: dict[str, Any]) -> str:
    return str(hospital["people"]["ada"].password)


# -- fairness --------------------------------------------------------------------------
# X's queue: DP sums over a large table whose people have more rows than the declared cap,
# so each run ranks every person's rows in the sandbox before it aggregates; only DP
# requests are run by the worker on its own, so that is what a heavy queue is made of.
HEAVY = "SELECT k, COUNT(*) AS n, SUM(v) AS s FROM big GROUP BY k"
HEAVY_COUNT = 6
BIG_ROWS = 500_000


def test_one_scientists_heavy_queue_does_not_hold_up_another(tmp_path: Path) -> None:
    """One run at a time: without fairness Y would wait for all of X's runs."""
    path = tmp_path / "fair"
    rng = np.random.default_rng(3)
    big = pd.DataFrame(
        {
            "p": rng.integers(0, BIG_ROWS // 5, BIG_ROWS),
            "k": rng.integers(0, 4, BIG_ROWS),
            "v": rng.normal(size=BIG_ROWS).clip(-5, 5),
        }
    )
    with rds.Domain.create(
        "Fair Hospital", path=path, worker_limits=rds.WorkerLimits(pool_size=1)
    ) as domain:
        _publish_patients(domain)
        policy = rds.Policy(auto_release="dp", epsilon_budget=10.0)
        domain.publish(
            "big",
            big,
            description="a big table",
            mock_rows=50,
            policy=policy,
            bounds={"v": (-5, 5)},
            categories={"k": [0, 1, 2, 3]},
            privacy_unit="p",
            max_contributions=2,
        )
        x, y = (domain.add_scientist(f"{n}@lab.example.org") for n in ("x", "y"))
    url = serve.start(path, port=free_port(), timeout=240)
    try:
        owner = rds.Domain.open(path)
        ys = rds.connect(url, email=y.email, password=y.password).dataset("patients")
        xs = rds.connect(url, email=x.email, password=x.password).dataset("big")
        # The worker is held while both send, so it finds X's whole queue and then Y's
        # request in one listing, whatever the machine's speed: without fairness Y's
        # request would be served after all of X's.
        worker = next(p.pid for p in serve.processes(path) if p.role == "worker")
        os.kill(worker, signal.SIGSTOP)
        try:
            heavy = [xs.sql(HEAVY, epsilon=0.5, reason=f"heavy {i}") for i in range(HEAVY_COUNT)]
            light = ys.sql(DP_QUERY, epsilon=0.5, reason="wards")
        finally:
            os.kill(worker, signal.SIGCONT)
        asked = time.monotonic()  # the worker sees Y's request from now on
        answer = light.result(timeout=300, poll=0.1, progress=False)
        waited = time.monotonic() - asked
        assert sorted(answer["ward"]) == sorted(WARDS)
        xs_ids = {r.id for r in heavy}
        _wait(
            lambda: (
                len(
                    [
                        e
                        for e in owner.ledger.events(event="approved")
                        if e.data["request"] in xs_ids
                    ]
                )
                == HEAVY_COUNT
            ),
            600,
            "X's releases",
        )
    finally:
        serve.stop(path)
    entries = owner.ledger.entries()
    x_done = [e for e in entries if e.event == "approved" and e.data["request"] in xs_ids]
    y_queued, y_released = (
        next(e.seq for e in entries if e.event == event and e.data.get("request") == light.id)
        for event in ("submitted", "approved")
    )
    print(f"\nY waited {waited:.1f}s for its answer behind {HEAVY_COUNT} heavy DP requests")
    # All seven were queued at once, X's first: one X run, then Y's, then X's others.
    assert all(y_queued < e.seq for e in x_done)
    assert len([e for e in x_done if e.seq < y_released]) == 1


# -- the fair queue and the worker's listing, on their own ------------------------------
def test_fair_queue_takes_turns_least_recently_served_first() -> None:
    queue: FairQueue[str] = FairQueue()
    for i in range(4):
        queue.put("x", f"x{i}")
    first = queue.get()
    queue.put("y", "y0")
    queue.put("y", "y1")
    queue.put("z", "z0")
    order = [first] + [queue.get() for _ in range(6)]
    assert [item for _, item in order] == ["x0", "y0", "z0", "x1", "y1", "x2", "x3"]  # type: ignore[misc]
    assert len(queue) == 0


def test_fair_queue_starves_nobody() -> None:
    queue: FairQueue[tuple[str, int]] = FairQueue()
    scientists = [f"s{i}" for i in range(5)]
    for n in range(200):
        queue.put("heavy", ("heavy", n))
    served: list[str] = []
    for turn in range(120):
        if turn % 7 == 0:  # the others keep arriving, one request at a time
            for name in scientists:
                queue.put(name, (name, turn))
        taken = queue.get()
        assert taken is not None
        served.append(taken[0])
    # Between two turns of the heavy scientist, each other one is served at most once.
    runs = "".join("H" if s == "heavy" else "o" for s in served)
    assert "o" * (len(scientists) + 1) not in runs
    assert served.count("heavy") >= 120 // (len(scientists) + 1)
    assert all(name in served for name in scientists)


def test_fair_queue_hands_each_item_out_once_across_threads() -> None:
    queue: FairQueue[int] = FairQueue()
    got: list[int] = []
    lock = threading.Lock()

    def take() -> None:
        while (taken := queue.get()) is not None:
            with lock:
                got.append(taken[1])

    threads = [threading.Thread(target=take) for _ in range(4)]
    for thread in threads:
        thread.start()
    for n in range(400):
        queue.put(f"s{n % 7}", n)
    _wait(lambda: len(got) == 400, 10, "the takers")
    queue.close()
    for thread in threads:
        thread.join(5)
    assert sorted(got) == list(range(400)) and not any(t.is_alive() for t in threads)


def test_worker_skips_decided_requests_and_queues_the_rest(
    domain: rds.Domain, session: rds.Session
) -> None:
    ds = session.dataset("patients")
    decided = [ds.request(_mean_los, reason=f"r{i}") for i in range(3)]
    for req in decided:
        domain.request(req.id).deny("no")
    waiting = ds.request(_mean_los, reason="waiting")
    worker = Worker(domain, limits=rds.WorkerLimits(max_waiting_per_scientist=5))
    worker.poll()
    assert len(worker.queue) == 1 and worker.queue.get() == (session.email, waiting.id)
    reads: list[str] = []
    read = domain._conn.request
    domain._conn.request = lambda request_id: reads.append(request_id) or read(request_id)
    worker.poll()  # already queued: not again, and nothing is read in full
    assert len(worker.queue) == 0 and reads == []


def test_worker_limits_are_kept_with_the_domain(tmp_path: Path) -> None:
    limits = rds.WorkerLimits(pool_size=3, max_waiting_per_scientist=7)
    with rds.Domain.create("Kept", path=tmp_path / "d", worker_limits=limits) as domain:
        assert domain.worker_limits == limits
    config = json.loads((tmp_path / "d" / "domain.json").read_text())
    assert config["worker_limits"] == {
        "pool_size": 3,
        "max_waiting_per_scientist": 7,
        "dp_seconds": 4.0,
        "dp_seconds_per_million_rows": 8.0,
    }
    del config["worker_limits"]  # a domain made before worker limits existed
    (tmp_path / "d" / "domain.json").write_text(json.dumps(config))
    with rds.Domain.open(tmp_path / "d") as domain:
        assert domain.worker_limits == rds.WorkerLimits()
    with pytest.raises(rds.InvalidInput, match="WorkerLimits"):
        rds.Domain.create("Bad", path=tmp_path / "e", worker_limits={"pool_size": 2})  # type: ignore[arg-type]
    assert not (tmp_path / "e").exists()


@pytest.mark.parametrize(
    "kwargs",
    [{"pool_size": 0}, {"pool_size": 1.5}, {"max_waiting_per_scientist": -1}, {"pool_size": True}],
)
def test_worker_limits_refuse_bad_values(kwargs: dict[str, Any]) -> None:
    with pytest.raises(rds.InvalidInput, match=f"WorkerLimits.{next(iter(kwargs))}"):
        rds.WorkerLimits(**kwargs)


def test_a_domain_bound_to_every_interface_is_reached_over_loopback(tmp_path: Path) -> None:
    supervisor = Supervisor(Layout(tmp_path), host="0.0.0.0", port=8081)
    assert supervisor.url == "http://0.0.0.0:8081"
    assert supervisor.local_url == "http://127.0.0.1:8081"  # what the worker logs in to


def test_the_supervisor_gives_up_on_a_child_that_keeps_dying(tmp_path: Path) -> None:
    supervisor = Supervisor(Layout(tmp_path), host="127.0.0.1", port=8081)
    supervisor._log = os.open(tmp_path / "server.log", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        assert [supervisor._may_restart("server") for _ in range(RESTARTS + 1)] == [True] * 5 + [
            False
        ]
        assert supervisor._may_restart("worker")  # counted per child
    finally:
        os.close(supervisor._log)
    assert "giving up: the server died 6 times within 60s" in (tmp_path / "server.log").read_text()
