"""Connection profiles: saved by connect(save_as=) and Domain.open(save_as=), used by name."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

import rds
from rds.profiles import Profile, ProfileStore, default_path


@pytest.fixture(autouse=True)
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    where = tmp_path / "config"
    monkeypatch.setenv("RDS_CONFIG_DIR", str(where))
    return where


@pytest.fixture(scope="module")
def hospital(served_module: tuple[Path, str]) -> dict[str, Any]:
    """A served domain and one scientist's login, shared: no test here changes the domain."""
    path, url = served_module
    with rds.Domain.open(path) as domain:
        creds = domain.add_scientist("ada@uni.example.org")
    return {"path": path, "url": url, "email": creds.email, "password": creds.password}


def test_save_as_then_connect_by_profile(hospital: dict[str, Any], config_dir: Path) -> None:
    h = hospital
    rds.connect(h["url"] + "/", email=h["email"], password=h["password"], save_as="hospital")
    file = config_dir / "profiles.json"
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert stat.S_IMODE(config_dir.stat().st_mode) == 0o700
    saved = json.loads(file.read_text())["profiles"]
    assert saved == [
        {
            "name": "hospital",
            "kind": "scientist",
            "url": h["url"],  # the trailing slash is dropped
            "email": h["email"],
            "password": h["password"],
            "path": None,
            "verify": None,  # no CA: plain HTTP, or a certificate from a public CA
        }
    ]
    session = rds.connect(profile="hospital")
    assert session.email == h["email"] and session.dataset("patients").rows == 400
    assert "password" not in repr(ProfileStore().get("hospital"))
    assert "password" not in ProfileStore().get("hospital").public()


def test_a_failed_login_saves_nothing(hospital: dict[str, Any], config_dir: Path) -> None:
    h = hospital
    with pytest.raises(rds.AuthenticationFailed):
        rds.connect(h["url"], email=h["email"], password="wrong", save_as="hospital")
    with pytest.raises(rds.InvalidInput, match="profile name"):
        rds.connect(h["url"], email=h["email"], password=h["password"], save_as="no/slashes")
    assert not (config_dir / "profiles.json").exists()


def test_owner_profile_from_domain_open(tmp_path: Path) -> None:
    rds.Domain.create("Mine", path=tmp_path / "mine").close()
    rds.Domain.open(tmp_path / "mine", save_as="mine").close()
    profile = ProfileStore().get("mine")
    assert profile.kind == "owner" and profile.path == str((tmp_path / "mine").resolve())
    with pytest.raises(rds.InvalidInput, match=r"Domain\.open"):
        rds.connect(profile="mine")


def test_unknown_profiles_and_bad_arguments() -> None:
    store = ProfileStore()
    store.save(Profile("a", kind="scientist", url="http://x:1", email="e@x.org", password="p"))
    with pytest.raises(rds.ProfileNotFound, match=r"'b'.*saved: a"):
        rds.connect(profile="b")
    with pytest.raises(rds.InvalidInput, match="no URL"):
        rds.connect("http://x:1", profile="a")
    with pytest.raises(rds.InvalidInput, match="email= and password="):
        rds.connect("http://x:1")
    with pytest.raises(rds.InvalidInput, match="http"):
        Profile("c", kind="scientist", url="ftp://x", email="e@x.org", password="p")
    with pytest.raises(rds.InvalidInput, match="kind"):
        Profile("c", kind="admin", path="/x")
    with pytest.raises(rds.ProfileNotFound):
        store.remove("nope")
    store.remove("a")
    assert store.all() == []


def test_embedded_domains_cannot_be_saved(domain: rds.Domain, scientist: rds.Credentials) -> None:
    with pytest.raises(rds.InvalidInput, match="no URL"):
        rds.connect(domain, email=scientist.email, password=scientist.password, save_as="x")


def test_a_profiles_file_others_can_read_is_refused(config_dir: Path) -> None:
    store = ProfileStore()
    store.save(Profile("a", kind="scientist", url="http://x:1", email="e@x.org", password="p"))
    os.chmod(config_dir / "profiles.json", 0o644)
    with pytest.raises(rds.InvalidInput, match="chmod 600"):
        store.all()


def test_default_path_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("RDS_CONFIG_DIR")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert default_path() == tmp_path / "xdg" / "rds" / "profiles.json"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_path() == tmp_path / "home" / ".config" / "rds" / "profiles.json"
