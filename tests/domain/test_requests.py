"""Owner-side request handling on a real domain: the sandbox boundary around real state."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import rds
from rds.sandbox import runner
from tests.conftest import jail_cannot_start


def _submit(session: rds.Session, source: str, dataset: str = "patients") -> str:
    namespace: dict = {}
    exec(compile(source, "<test>", "exec"), namespace)
    fn = next(v for k, v in namespace.items() if callable(v) and not k.startswith("__"))
    import linecache

    linecache.cache["<test>"] = (len(source), None, source.splitlines(True), "<test>")
    return session.dataset(dataset).request(fn, reason="attack").id


PROBE = """
def probe(df):
    paths = {paths!r}
    seen = {{}}
    for label, path in paths.items():
        try:
            with open(path, "rb") as handle:
                seen[label] = "READ " + handle.read(64).hex()
        except Exception as exc:
            seen[label] = type(exc).__name__
    return seen
"""


def test_a_request_cannot_reach_the_domains_own_state(
    domain: rds.Domain, session: rds.Session, private_frame: pd.DataFrame
) -> None:
    domain.publish("other", private_frame.assign(age=private_frame["age"] + 1))
    layout = domain.layout
    targets = {
        "admin_password": str(layout.admin),
        "signing_key": str(layout.identity),
        "syft_sqlite": str(layout.syft_state / "syft.db"),
        "ledger": str(layout.ledger),
        "domain_config": str(layout.config),
        "other_dataset": str(layout.private / "other" / "data.parquet"),
        "own_parquet_by_path": str(layout.private / "patients" / "data.parquet"),
        "etc_passwd": "/etc/passwd",
    }
    for path in targets.values():
        if path != "/etc/passwd":
            assert Path(path).exists(), path  # each target is real on the host
    # On the mock the scientist's machine has none of these files either.
    request_id = _submit(session, PROBE.format(paths=targets).replace("{{", "{").replace("}}", "}"))
    preview = domain.request(request_id).run()
    assert preview.ok, preview.error
    assert all(not v.startswith("READ") for v in preview.result.values()), preview.result
    password = json.loads(layout.admin.read_text())["password"]
    assert password not in json.dumps(preview.result) + preview.stdout + preview.stderr


def test_without_bubblewrap_runs_are_refused_and_recorded(
    domain: rds.Domain, session: rds.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    def n(df):
        return len(df)

    req = session.dataset("patients").request(n, reason="count")
    monkeypatch.setattr(runner, "BWRAP", None)
    with pytest.raises(rds.SandboxUnavailable, match="bubblewrap"):
        domain.request(req.id).run()
    assert domain.ledger.events(event="run_refused", request=req.id)
    assert domain.request(req.id).status == "submitted"


def test_unsandboxed_opt_in_warns_and_is_in_the_ledger(
    tmp_path: Path, private_frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    with rds.Domain.create("Lab", path=tmp_path / "lab", allow_unsandboxed=True) as d:
        d.publish("patients", private_frame)
        creds = d.add_scientist("u@lab.example.org")
        s = rds.connect(d, email=creds.email, password=creds.password)

        def n(df):
            return len(df)

        req = s.dataset("patients").request(n, reason="count")
        monkeypatch.setattr(runner, "BWRAP", None)
        with pytest.warns(RuntimeWarning, match="WITHOUT the bubblewrap sandbox"):
            preview = d.request(req.id).run()
        assert preview.ok and not preview.sandboxed and preview.result == len(private_frame)
        assert d.ledger.events(event="unsandboxed_run", request=req.id)
        assert d.ledger.events(event="domain_created")[0].data["allow_unsandboxed"] is True


def test_approve_needs_a_run_and_releases_what_was_previewed(
    domain: rds.Domain, session: rds.Session
) -> None:
    def n(df):
        return len(df)

    req = session.dataset("patients").request(n, reason="count")
    owner = domain.request(req.id)
    with pytest.raises(rds.RequestStateError, match="Run the request first"):
        owner.approve()
    owner.run()
    # Someone swaps the stored result after the owner looked at it: release is refused.
    (domain.layout.runs / req.id / "payload.bin").write_bytes(b"tampered")
    with pytest.raises(rds.RequestStateError, match="no longer matches"):
        owner.approve()
    assert req.status == "awaiting review"


def test_runs_dir_is_owner_only(domain: rds.Domain, session: rds.Session) -> None:
    def n(df):
        return len(df)

    req = session.dataset("patients").request(n, reason="count")
    domain.request(req.id).run()
    run_dir = domain.layout.runs / req.id
    assert run_dir.stat().st_mode & 0o077 == 0
    assert (run_dir / "run.json").stat().st_mode & 0o077 == 0


def test_a_domain_failure_cannot_be_approved_and_says_whose_it_is(
    domain: rds.Domain, session: rds.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    def n(df):
        return len(df)

    req = session.dataset("patients").request(n, reason="count")
    owner = domain.request(req.id)
    with jail_cannot_start(monkeypatch):
        preview = owner.run()
    assert not preview.ok and preview.fault == "domain"
    assert "domain's failure" in (preview.next_step or "")
    assert "domain's fault" in repr(preview)
    assert "what to do" in preview._repr_html_()
    for kwargs in ({}, {"justification": "I know"}):
        with pytest.raises(rds.RequestStateError, match="domain's side"):
            owner.approve(**kwargs)
    assert req.status == "awaiting review"  # the scientist is told nothing yet
    # Mended, it runs again and is the scientist's result to release.
    preview = owner.run()
    assert preview.ok and preview.fault is None and preview.next_step is None
    owner.approve()
    assert req.result() == len(domain.store.read("patients"))


def test_a_scientists_failure_says_what_each_side_can_do(
    domain: rds.Domain, session: rds.Session
) -> None:
    def bad(df):
        return df["no_such_column"].sum() if len(df) > 300 else 0

    req = session.dataset("patients").request(bad, reason="count")
    owner = domain.request(req.id)
    preview = owner.run()
    assert not preview.ok and preview.fault == "code"
    assert "scientist's code failed (KeyError)" in (preview.next_step or "")
    owner.approve()
    with pytest.raises(rds.RequestFailed, match=r"KeyError.*Run it on the mock") as info:
        req.result()
    assert "no_such_column" not in str(info.value)  # the message stays with the owner
