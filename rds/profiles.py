"""Connection profiles: the domains this user connects to, kept in one per-user file.

``rds.connect(url, email=..., password=..., save_as="hospital")`` saves a scientist profile
and ``rds.connect(profile="hospital")`` uses it; ``rds.Domain.open(path, save_as=...)``
saves an owner profile (the domain directory). The Remote Data panel lists the same file.

The file holds passwords, like ``~/.pgpass``: it is written atomically with mode 0600 in a
0700 directory, and a file readable by others is refused rather than used. Its place is
``$RDS_CONFIG_DIR/profiles.json``, else ``$XDG_CONFIG_HOME/rds/profiles.json``, else
``~/.config/rds/profiles.json``.

Examples
--------
>>> store = ProfileStore()
>>> store.save(Profile("hospital", kind="scientist", url="http://127.0.0.1:8081",
...                    email="ada@uni.example.org", password="..."))
>>> store.get("hospital").url
'http://127.0.0.1:8081'
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rds.errors import InvalidInput, ProfileNotFound

KINDS = ("scientist", "owner")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_VERSION = 1


def default_path() -> Path:
    """Where profiles live for this user (see the module docstring)."""
    base = os.environ.get("RDS_CONFIG_DIR")
    if base:
        return Path(base) / "profiles.json"
    xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(xdg) / "rds" / "profiles.json"


@dataclass(frozen=True)
class Profile:
    """One saved connection: a scientist login (url, email, password) or an owned domain (path).

    ``public()`` is what may be shown or sent anywhere: everything but the password.
    """

    name: str
    kind: str
    url: str | None = None
    email: str | None = None
    password: str | None = field(default=None, repr=False)
    path: str | None = None
    verify: str | None = None  # the CA certificate an https domain is checked against

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise InvalidInput(
                f"A profile name is 1-64 letters, digits, '.', '_' or '-', starting with a "
                f"letter or digit; {self.name!r} is not."
            )
        if self.kind not in KINDS:
            raise InvalidInput(f"A profile's kind is one of {KINDS}, not {self.kind!r}.")
        if self.kind == "scientist":
            if not self.url or not self.url.startswith(("http://", "https://")):
                raise InvalidInput(
                    f"Profile {self.name!r}: a scientist profile needs the domain's "
                    f"http(s):// URL, not {self.url!r}."
                )
            if not self.email or not self.password:
                raise InvalidInput(f"Profile {self.name!r} needs an email and a password.")
        elif not self.path:
            raise InvalidInput(f"Profile {self.name!r}: an owner profile needs the domain's path.")

    def public(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("password")
        return data


class ProfileStore:
    """The profiles file: read, add or replace, remove (each write atomic, under a lock)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()

    def all(self) -> list[Profile]:
        """Every profile, in the order they were first saved."""
        return list(self._read().values())

    def get(self, name: str) -> Profile:
        profiles = self._read()
        if name not in profiles:
            known = ", ".join(sorted(profiles)) or "none yet"
            raise ProfileNotFound(
                f"No connection profile named {name!r} in {self.path} (saved: {known}). "
                f'Save one with rds.connect(url, email=..., password=..., save_as="{name}").'
            )
        return profiles[name]

    def save(self, profile: Profile) -> None:
        """Add ``profile``, or replace the one with its name."""
        with self._locked():
            profiles = self._read()
            profiles[profile.name] = profile
            self._write(profiles)

    def remove(self, name: str) -> None:
        with self._locked():
            profiles = self._read()
            if profiles.pop(name, None) is None:
                raise ProfileNotFound(f"No connection profile named {name!r} to remove.")
            self._write(profiles)

    def _read(self) -> dict[str, Profile]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return {}
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise InvalidInput(
                f"{self.path} holds passwords but others can read it (mode "
                f"{stat.S_IMODE(st.st_mode):o}); run `chmod 600 {self.path}` and try again."
            )
        try:
            data = json.loads(self.path.read_text())
            return {p["name"]: Profile(**p) for p in data["profiles"]}
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidInput(f"{self.path} is not a valid rds profiles file: {exc}") from None

    def _write(self, profiles: dict[str, Profile]) -> None:
        body = json.dumps(
            {"version": _VERSION, "profiles": [asdict(p) for p in profiles.values()]}, indent=2
        )
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".profiles-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as out:  # mkstemp creates it 0600
                out.write(body)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path.parent / ".profiles.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


# -- invitations: a one-time token that hands an account over (``Domain.invite``) ----------
INVITATION_PREFIX = "rds-invite-1:"


def encode_invitation(*, email: str, password: str, url: str | None, domain: str) -> str:
    body = json.dumps({"email": email, "password": password, "url": url, "domain": domain})
    return INVITATION_PREFIX + base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")


def decode_invitation(token: str) -> dict[str, Any]:
    """The fields of an invitation token (or of a file holding one)."""
    text = str(token).strip()
    if not text.startswith(INVITATION_PREFIX) and Path(text).is_file():
        text = Path(text).read_text().strip()
    if not text.startswith(INVITATION_PREFIX):
        raise InvalidInput(
            f"That is not an rds invitation (it should start with {INVITATION_PREFIX!r}, or be the "
            "path of a file holding one)."
        )
    raw = text[len(INVITATION_PREFIX) :]
    try:
        fields = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except ValueError:
        raise InvalidInput("The invitation is damaged: copy all of it.") from None
    if not isinstance(fields, dict) or not {"email", "password"} <= set(fields):
        raise InvalidInput("The invitation is damaged: copy all of it.")
    return fields
