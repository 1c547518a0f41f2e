"""The owner manages scientists: who, since when, what they spent; remove, reset, invite."""

from __future__ import annotations

from pathlib import Path

import pytest

import rds


def mean_age(df):
    return float(df["age"].mean())


def test_scientists_lists_who_since_when_and_what_they_spent(
    domain: rds.Domain, session: rds.Session
) -> None:
    domain.set_policy("patients", rds.Policy(epsilon_budget=2.0))
    domain.add_scientist("bo@uni.example.org", name="Bo")
    req = session.dataset("patients").request(mean_age, reason="one")
    domain.request(req.id).run()
    domain.request(req.id).approve()
    session.refresh()  # see the new policy now (the listing is cached for 5 s)
    dp = session.dataset("patients").sql(
        "SELECT COUNT(*) AS n FROM patients", epsilon=0.5, reason="dp"
    )
    domain.request(dp.id).run()
    domain.request(dp.id).approve()
    people = domain.scientists.set_index("email")
    assert list(people.index) == ["ada@uni.example.org", "bo@uni.example.org"]
    assert people.loc["bo@uni.example.org", "name"] == "Bo"
    assert people.loc["ada@uni.example.org", "requests"] == 2
    assert people.loc["ada@uni.example.org", "epsilon_spent"] == {"patients": 0.5}
    assert people.loc["bo@uni.example.org", "requests"] == 0
    assert people["active"].all() and people["since"].str.match(r"\d{4}-\d{2}-\d{2}").all()


def test_removing_a_scientist_denies_their_waiting_requests_and_ends_their_access(
    served: tuple[Path, str],
) -> None:
    path, url = served
    with rds.Domain.open(path) as domain:
        creds = domain.add_scientist("eve@uni.example.org")
        other = domain.add_scientist("ada@uni.example.org")
        eve = rds.connect(url, email=creds.email, password=creds.password)
        ada = rds.connect(url, email=other.email, password=other.password)
        hers = eve.dataset("patients").request(mean_age, reason="hers")
        kept = ada.dataset("patients").request(mean_age, reason="not hers")
        denied = domain.remove_scientist("eve@uni.example.org", note="left the project")
        assert denied == [hers.id]
        assert domain.request(hers.id).status == "denied"
        assert domain.request(kept.id).status in ("submitted", "ran")  # others untouched
        # Her open session and her password both stop working.
        with pytest.raises(rds.RDSError):
            eve.dataset("patients").request(mean_age, reason="again")
        with pytest.raises(rds.AuthenticationFailed):
            rds.connect(url, email=creds.email, password=creds.password)
        people = domain.scientists.set_index("email")
        assert not people.loc["eve@uni.example.org", "active"]
        with pytest.raises(rds.InvalidInput, match="No scientist"):
            domain.remove_scientist("eve@uni.example.org")
        (event,) = domain.ledger.events(event="scientist_removed")
        assert event.data["note"] == "left the project"


def test_reset_password_replaces_the_old_one(served: tuple[Path, str]) -> None:
    path, url = served
    with rds.Domain.open(path) as domain:
        old = domain.add_scientist("ada@uni.example.org")
        new = domain.reset_password("ada@uni.example.org")
        assert new.password != old.password and new.url == url
        with pytest.raises(rds.AuthenticationFailed):
            rds.connect(url, email=old.email, password=old.password)
        assert rds.connect(url, email=new.email, password=new.password).datasets is not None
        assert domain.ledger.events(event="password_reset", scientist="ada@uni.example.org")


def test_an_invitation_works_once_and_leaves_a_profile(
    served: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RDS_CONFIG_DIR", str(tmp_path / "config"))
    path, _url = served
    with rds.Domain.open(path) as domain:
        invitation = domain.invite("ada@uni.example.org", path=tmp_path / "ada.rds-invite")
        assert (tmp_path / "ada.rds-invite").stat().st_mode & 0o077 == 0
        assert "password" not in repr(invitation)
        session = rds.connect(invitation=str(tmp_path / "ada.rds-invite"))
        assert session.email == "ada@uni.example.org"
        assert list(session.datasets.to_frame()["name"]) == ["patients"]
        # The profile it saved works; the invitation does not, a second time.
        again = rds.connect(profile="served-hospital")
        assert again.email == "ada@uni.example.org"
        with pytest.raises(rds.AuthenticationFailed, match="used already, or revoked"):
            rds.connect(invitation=str(invitation))
        with pytest.raises(rds.InvalidInput, match="not an rds invitation"):
            rds.connect(invitation="hello")


def test_a_scientist_may_change_only_their_own_password(served: tuple[Path, str]) -> None:
    """The allow-list lets a scientist call syft's user.update for an invitation; an
    attacker with a plain syft client must not use it to rename themselves (another
    scientist's email inherits that scientist's ε history) or touch another account."""
    import syft as sy

    path, url = served
    with rds.Domain.open(path) as domain:
        mallory = domain.add_scientist("mallory@uni.example.org")
        ada = domain.add_scientist("ada@uni.example.org")
        ada_id = domain._conn._user_id(ada.email)  # say Mallory learned it somehow
    host, port = url.rsplit(":", 1)
    client = sy.login(url=host, port=int(port), email=mallory.email, password=mallory.password)
    me = client.api.services.user.get_current_user()
    for change in (
        {"email": "ada2@uni.example.org"},
        {"name": "Ada"},
        {"role": "ADMIN"},
        {"password": "x" * 12, "email": "ada@uni.example.org"},
    ):
        with pytest.raises(Exception, match="rds refuses"):
            client.api.services.user.update(uid=me.id, **change)
    with pytest.raises(Exception, match=r"not permitted|tried to update"):
        client.api.services.user.update(uid=ada_id, password="taken-over-1234")
    assert rds.connect(url, email=ada.email, password=ada.password).email == ada.email


def one(df):
    return 1


def test_a_request_sent_during_removal_is_denied_too(
    domain: rds.Domain, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by a red team: removal denied the requests it listed, then deleted the account;
    one sent in between stayed waiting for an account that no longer exists."""
    creds = domain.add_scientist("eve@uni.example.org")
    eve = rds.connect(domain, email=creds.email, password=creds.password)
    late: list[str] = []
    real = type(domain._conn).delete_user

    def delete_user(conn: object, email: str) -> None:
        late.append(eve.dataset("patients").request(one, reason="just in time").id)
        real(conn, email)

    monkeypatch.setattr(type(domain._conn), "delete_user", delete_user)
    denied = domain.remove_scientist("eve@uni.example.org")
    assert late and late[0] in denied
    assert domain.request(late[0]).status == "denied"
