"""The owner's everyday commands: rds dataset, rds scientist, rds ledger show."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import rds
from rds.cli import main
from tests.conftest import patients


def rds_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(list(argv))
    out, err = capsys.readouterr()
    return int(done.value.code or 0), out, err


def test_datasets_scientists_and_the_ledger_from_the_shell(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(tmp_path / "domain")
    csv = tmp_path / "admissions.csv"
    patients().assign(admitted="2024-03-01").to_csv(csv, index=False)
    assert rds_cli(capsys, "domain", "create", "Shell Hospital", "--path", path)[0] == 0

    code, out, _ = rds_cli(
        capsys, "dataset", "publish", "patients", str(csv), "--path", path,
        "--description", "Admissions", "--bounds", "age=0:120",
        "--categories", "ward=cardio,onco,neuro", "--epsilon-budget", "2",
    )  # fmt: skip
    assert code == 0 and "400 rows" in out and "dates: admitted" in out
    code, out, _ = rds_cli(capsys, "dataset", "list", "--path", path)
    assert code == 0 and "patients" in out and "Admissions" in out
    code, _, err = rds_cli(capsys, "dataset", "publish", "patients", str(csv), "--path", path)
    assert code == 2 and "already published" in err and "replace" in err
    code, _, err = rds_cli(
        capsys, "dataset", "publish", "x", str(csv), "--path", path, "--bounds", "age"
    )
    assert code == 2 and "COLUMN=VALUE" in err

    invite = tmp_path / "ada.rds-invite"
    code, out, _ = rds_cli(
        capsys, "scientist", "add", "ada@uni.example.org", "--path", path, "--invite", str(invite)
    )
    assert code == 0 and invite.read_text().startswith("rds-invite-1:")
    code, out, _ = rds_cli(capsys, "scientist", "add", "bo@uni.example.org", "--path", path)
    assert code == 0 and "password: " in out
    code, out, _ = rds_cli(capsys, "scientist", "reset", "bo@uni.example.org", "--path", path)
    assert code == 0 and "New password for bo@uni.example.org" in out
    code, out, _ = rds_cli(capsys, "scientist", "list", "--path", path)
    assert code == 0 and "ada@uni.example.org" in out and "bo@uni.example.org" in out
    code, out, _ = rds_cli(
        capsys, "scientist", "remove", "bo@uni.example.org", "--path", path, "--note", "left"
    )
    assert code == 0 and "Removed bo@uni.example.org" in out
    code, _, err = rds_cli(capsys, "scientist", "remove", "bo@uni.example.org", "--path", path)
    assert code == 2 and "No scientist" in err

    newer = tmp_path / "newer.csv"
    patients(n=450, seed=2).to_csv(newer, index=False)
    code, out, _ = rds_cli(
        capsys, "dataset", "replace", "patients", str(newer), "--path", path, "--note", "2025"
    )
    assert code == 0 and "version 2, 450 rows" in out
    code, out, _ = rds_cli(capsys, "dataset", "unpublish", "patients", "--path", path)
    assert code == 0 and "Unpublished 'patients'" in out

    code, out, _ = rds_cli(capsys, "ledger", "show", path)
    for event in ("published", "scientist_added", "password_reset", "scientist_removed"):
        assert event in out
    assert "replaced" in out and "unpublished" in out
    code, out, _ = rds_cli(capsys, "ledger", "show", path, "--event", "replaced")
    assert code == 0 and out.count("replaced") == 1 and "note=2025" in out
    code, out, _ = rds_cli(capsys, "ledger", "show", path, "--last", "1")
    assert len(out.strip().splitlines()) == 2  # the header and one entry
    with rds.Domain.open(path) as domain:  # what the shell did is the domain's state
        assert domain.ledger.verify() >= 9  # created, published, people, replaced, unpublished
        assert list(domain.datasets["name"]) == []


@pytest.mark.parametrize(
    ("command", "words"),
    [
        (["dataset", "publish"], "private store"),
        (["dataset", "replace"], "next version"),
        (["dataset", "unpublish"], "archived, not deleted"),
        (["scientist", "add"], "one-time"),
        (["scientist", "remove"], "deny its waiting"),
        (["ledger", "show"], "one line per entry"),
    ],
)
def test_every_command_has_real_help(command: list[str], words: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rds.cli", *command, "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert words in " ".join(done.stdout.split()), done.stdout
