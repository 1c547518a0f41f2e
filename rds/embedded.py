"""``rds.connect``: a URL is a scientist's login; a ``Domain`` object is wired here.

Embedded mode (owner and scientist in one process, as the course's first notebooks and
many tests run) connects the scientist's ``Session`` to the domain's in-process syft
server and hands it one callback: after each submission the domain records the request and
applies its owner's policy (``Domain.auto_release``). Neither role imports the other; this
module, above both, is the only place that knows both.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from rds.errors import InvalidInput

if TYPE_CHECKING:
    from rds.domain.domain import Domain
    from rds.scientist.session import Session


def connect(
    target: str | Domain | None = None,
    *,
    email: str | None = None,
    password: str | None = None,
    profile: str | None = None,
    save_as: str | None = None,
    verify: str | os.PathLike[str] | None = None,
    invitation: str | os.PathLike[str] | None = None,
) -> Session:
    """Log in to a domain as a data scientist.

    Parameters
    ----------
    target
        The domain's URL (``http://127.0.0.1:8081``) or a ``Domain`` object (embedded).
    profile
        Instead of ``target``, ``email`` and ``password``: a saved connection profile.
    save_as
        After logging in, save this connection as a profile of that name (in the per-user
        profiles file, mode 0600), for ``connect(profile=...)`` and the Remote Data panel.
    verify
        For an ``https://`` URL: the CA certificate (PEM) to check the domain's certificate
        against, such as the one its owner handed over with the credentials. Without it,
        ``REQUESTS_CA_BUNDLE`` or ``SSL_CERT_FILE``, else the usual public CAs. A
        certificate that does not verify is refused (``DomainError``).
    invitation
        Instead of ``email`` and ``password``: a one-time invitation token from the data
        owner (``domain.invite``), or the file holding it. The first use replaces its
        password with a new random one, saved as the profile ``save_as`` (default: the
        domain's name), so the token works only once.

    Examples
    --------
    >>> session = rds.connect("http://127.0.0.1:8081", email="ada@uni.example.org", password=pw,
    ...                       save_as="hospital")
    >>> session = rds.connect(profile="hospital")   # later, or in another notebook
    >>> session = rds.connect("https://rds.hospital.example.org:8443", email=..., password=pw,
    ...                       verify="hospital-ca.pem")
    >>> session = rds.connect(domain, email="ada@uni.example.org", password=pw)  # embedded
    """
    from rds.domain.domain import Domain
    from rds.scientist import session

    if isinstance(target, Domain) and invitation is not None:
        if target.url is None:
            raise InvalidInput(
                "An invitation is for a served domain (rds domain start); for an embedded "
                "one, use the credentials of domain.add_scientist()."
            )
        served = session.connect(target.url, invitation=invitation, save_as=save_as)
        return session.Session(served._conn, on_submit=target.auto_release)
    if not isinstance(target, Domain):
        return session.connect(
            target,
            email=email,
            password=password,
            profile=profile,
            save_as=save_as,
            verify=verify,
            invitation=invitation,
        )
    if profile is not None:
        raise InvalidInput("connect(profile=...) takes no URL, email or password.")
    if email is None or password is None:
        raise InvalidInput("connect() needs email= and password= (or profile=).")
    if target.url is not None:
        served = session.connect(target.url, email=email, password=password, save_as=save_as)
        return session.Session(served._conn, on_submit=target.auto_release)
    if save_as is not None:
        raise InvalidInput(
            "An embedded domain has no URL to save; serve it (rds domain start) and "
            "connect to its URL to save a profile."
        )
    from rds._syft.client import Connection

    where: Any = target._server
    conn = Connection.login(where, email=email, password=password)
    return session.Session(conn, on_submit=target.auto_release)
