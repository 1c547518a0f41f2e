"""A logged-in syft client, seen through rds-level operations and plain records.

Nothing outside ``rds._syft`` touches a syft object: callers get ``DatasetRecord`` and
``RequestRecord`` values and hand back names, ids, strings and bytes.
"""

from __future__ import annotations

import functools
import inspect
import json
import linecache
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import pandas as pd

from rds._syft import submission
from rds._syft.rows import MAX_IDS, ROWS
from rds._syft.server import quiet
from rds._syft.withdraw import PATH as WITHDRAW
from rds._syft.withdraw import TAG as WITHDRAWN_TAG
from rds.errors import AuthenticationFailed, DomainError, DomainUnreachable, InvalidInput, RDSError

META_PREFIX = "rds-meta:"
STAGE_TAG = "rds-stage:"
CHECKS_TAG = "rds-checks:"
_DENIAL_REREADS = 15
_STATUSES = frozenset({"pending", "approved", "denied"})
_CURSOR_MARGIN = 5.0  # seconds: a listing since a cursor re-reads a little before it
T = TypeVar("T")


@dataclass(frozen=True)
class DatasetRecord:
    """A published dataset as syft holds it: metadata and mock only."""

    name: str
    description: str
    meta: dict[str, Any]
    asset: Any = field(repr=False)

    def mock(self) -> pd.DataFrame:
        """Fetch the mock table (one round trip)."""
        with quiet():
            data = self.asset.mock
        return data if isinstance(data, pd.DataFrame) else pd.DataFrame(data)


@dataclass(frozen=True)
class RequestStub:
    """A request's identity without its code or state (see ``Connection.request_stubs``)."""

    id: str
    scientist: str
    submitted_at: datetime


@dataclass(frozen=True)
class RequestRecord:
    """A computation request: its code, who sent it, and syft's view of its state."""

    id: str
    code_id: str
    source: str
    meta: dict[str, Any]
    scientist: str
    status: str  # "pending" | "approved" | "denied"
    deny_reason: str | None
    submitted_at: datetime
    stage: str | None = None  # the owner's progress on a pending request: "running", "review"
    checks: str | None = None  # the released result's check verdict: "pass", "warn", "fail"
    withdrawn: bool = False  # the scientist withdrew it while undecided (rds._syft.withdraw)


class Connection:
    """One login (as owner or scientist) to a syft datasite, in-process or over HTTP."""

    def __init__(self, client: Any, *, email: str) -> None:
        self._client = client
        self.email = email
        # syft requests whose tags this connection set: set_tags needs the object, and
        # fetching it again for each stage would double the cost of a stage change.
        self._tag_targets: dict[str, Any] = {}
        self._tag_lock = threading.Lock()  # a served domain's worker sets stages from a pool
        # What never changes about a request, read once: (code id, source, header).
        self._fixed: dict[str, tuple[str, str, dict[str, Any]]] = {}
        self._stubs: dict[str, RequestStub] = {}  # request_stubs(): everything listed so far
        self._cursor: str | None = None  # ... and where the next listing starts
        self._lock = threading.Lock()

    @classmethod
    def login(
        cls, target: Any, *, email: str, password: str, verify: str | os.PathLike[str] | None = None
    ) -> Connection:
        """Log in to ``target``: an ``http(s)://host:port`` URL or an in-process server.

        Over HTTPS the domain's certificate is checked against ``verify`` (a CA bundle or
        the domain's own certificate, PEM), else ``REQUESTS_CA_BUNDLE`` or
        ``SSL_CERT_FILE``, else the certificates requests trusts by default (certifi).
        """
        import requests  # type: ignore[import-untyped]

        from rds._syft import preload

        preload()  # with IPython hidden from syft's import (see there)
        import syft as sy
        from syft.types.errors import SyftException

        try:
            with quiet():
                if isinstance(target, str) and target.startswith("https://"):
                    client = _https_login(target, email=email, password=password, verify=verify)
                elif isinstance(target, str):
                    url, port = _split_url(target)
                    client = sy.login(url=url, port=port, email=email, password=password)
                else:
                    guest = target.get_guest_client(verbose=False)
                    client = guest.login(email=email, password=password)
        except requests.exceptions.SSLError as exc:
            raise DomainError(
                f"Could not verify the domain at {target}: {_tls_reason(exc)}. If its owner "
                "gave you a CA certificate, connect with verify='/path/to/ca.pem' (or set "
                "REQUESTS_CA_BUNDLE); check that the URL names the host its certificate is for."
            ) from None
        except requests.exceptions.ConnectionError as exc:
            hint = (
                " If it serves HTTPS, use an https:// URL."
                if isinstance(target, str) and target.startswith("http://")
                else ""
            )
            raise DomainUnreachable(
                f"No rds domain answers at {target}. Is it running? "
                f"Start it with `rds domain start NAME --path DIR`.{hint}"
            ) from exc
        except SyftException as exc:
            message = str(exc).lower()
            if any(word in message for word in ("password", "email", "credentials", "not found")):
                raise AuthenticationFailed(
                    f"The domain refused the login for {email!r}: wrong email or password."
                ) from None
            raise DomainError(f"Login failed: {exc.public_message}") from None
        return cls(client, email=email)

    @property
    def is_admin(self) -> bool:
        from syft.service.user.user_roles import ServiceRole

        return bool(self._client.user_role == ServiceRole.ADMIN)

    @property
    def domain_name(self) -> str:
        return str(self._client.name)

    # -- datasets ---------------------------------------------------------------
    def upload_dataset(
        self, name: str, *, description: str, mock: pd.DataFrame, meta: dict[str, Any]
    ) -> None:
        """Publish metadata and mock; syft's "private" slot gets an empty frame of the schema."""
        import syft as sy

        asset = sy.Asset(
            name=name,
            description=META_PREFIX + json.dumps(meta, sort_keys=True, default=str),
            data=mock.head(0),
            mock=mock,
        )
        dataset = sy.Dataset(name=name, description=description, asset_list=[asset])
        with quiet():
            self._client.upload_dataset(dataset)

    def replace_dataset_meta(self, name: str, meta: dict[str, Any]) -> None:
        """Replace a dataset's public metadata, keeping its description and mock.

        syft 0.9.5 has no dataset update, so the dataset is soft-deleted (its assets kept,
        so requests already made against it stay valid) and published again under the same
        name. If publishing again fails, the old metadata is put back.
        """
        with quiet():
            found = [d for d in self._client.api.services.dataset.get_all() if d.name == name]
        if not found:
            raise InvalidInput(f"No dataset named {name!r} in syft.")
        old = found[0]
        asset = old.asset_list[0]
        with quiet():
            mock = asset.mock
            old_meta = _meta(_text(asset.description))
            self._client.api.services.dataset.delete(uid=old.id, delete_assets=False)
        frame = mock if isinstance(mock, pd.DataFrame) else pd.DataFrame(mock)
        description = _text(old.description)
        try:
            self.upload_dataset(name, description=description, mock=frame, meta=meta)
        except Exception:
            self.upload_dataset(name, description=description, mock=frame, meta=old_meta)
            raise

    def datasets(self) -> list[DatasetRecord]:
        """Every published dataset (mocks are fetched lazily)."""
        with quiet():
            found = list(self._client.api.services.dataset.get_all())
        records = []
        for ds in found:
            if not ds.asset_list:
                continue
            asset = ds.asset_list[0]
            records.append(
                DatasetRecord(
                    name=ds.name,
                    description=_text(ds.description),
                    meta=_meta(_text(asset.description)),
                    asset=asset,
                )
            )
        return records

    # -- users ------------------------------------------------------------------
    def create_user(self, *, email: str, name: str, password: str) -> None:
        from syft.types.errors import SyftException

        try:
            with quiet():
                self._client.users.create(
                    email=email, name=name, password=password, password_verify=password
                )
        except SyftException as exc:
            raise InvalidInput(f"Could not create user {email!r}: {exc.public_message}") from None

    def _user_id(self, email: str) -> Any:
        with quiet():
            found = [u for u in self._client.users.search(email=email) if u.email == email]
        if not found:
            raise InvalidInput(f"No account {email!r} on this domain.")
        return found[0].id

    def set_password(self, email: str, password: str) -> None:
        """Give the account ``email`` a new password (its old one stops working)."""
        uid = self._user_id(email)
        with quiet():
            self._client.users.update(uid=uid, password=password)

    def change_own_password(self, password: str) -> None:
        """Replace this account's password (an invitation's, on first use)."""
        with quiet():
            me = self._client.api.services.user.get_current_user()
            self._client.api.services.user.update(uid=me.id, password=password)

    def delete_user(self, email: str) -> None:
        """Delete the account ``email``; its sessions stop working with it."""
        uid = self._user_id(email)
        with quiet():
            self._client.users.delete(uid=uid)

    def remove_dataset(self, name: str) -> None:
        """Take a dataset out of syft's listing; its assets stay, so the requests and
        released results that point at them stay readable."""
        with quiet():
            found = [d for d in self._client.api.services.dataset.get_all() if d.name == name]
            for dataset in found:
                self._client.api.services.dataset.delete(uid=dataset.id, delete_assets=False)

    # -- requests ---------------------------------------------------------------
    def submit(self, *, source: str, datasets: list[DatasetRecord], meta: dict[str, Any]) -> str:
        """Submit ``source`` (one decorator-free function) as a request on ``datasets``.

        The function takes one argument per dataset, in order.
        """
        import syft as sy

        body, name, params = submission.function_source(source)
        meta = {**meta, "nonce": uuid.uuid4().hex}
        text = submission.with_header(body, meta)
        filename = f"<rds-request-{meta['nonce']}>"
        # syft reads the source through inspect.getsource, which reads linecache.
        linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
        namespace: dict[str, Any] = {submission.HEADER: lambda _meta: lambda fn: fn}
        exec(compile(text, filename, "exec"), namespace)  # noqa: S102 - defines the function only
        fn = namespace[name]
        with quiet():
            inputs = {param: ds.asset for param, ds in zip(params, datasets, strict=True)}
            syft_fn = sy.syft_function_single_use(**inputs)(fn)
            request = self._client.code.request_code_execution(syft_fn)
        return str(request.id.no_dash)

    def request_stubs(self) -> list[RequestStub]:
        """Who sent which request when, however many requests there are.

        The first call lists them all; later calls on this connection ask only for the
        requests stored since (an indexed read: a poller's cost does not grow with history).
        """
        since = None if self._cursor is None else _before(self._cursor, _CURSOR_MARGIN)
        found = self._rows(since=since)
        with self._lock:
            for row in found["rows"]:
                self._stubs.setdefault(
                    row["id"],
                    RequestStub(
                        id=row["id"],
                        scientist=row["scientist"],
                        submitted_at=_utc(row["submitted_at"]),
                    ),
                )
            if found["cursor"] is not None:
                self._cursor = max(self._cursor or "", found["cursor"])
            return list(self._stubs.values())

    def requests(self) -> list[RequestRecord]:
        """The requests this login can see (all for the owner, own for a scientist).

        One round trip, plus one for the code of requests this connection has not read yet
        (a request's code never changes, so it is read once).
        """
        return self._records(self._rows()["rows"])

    def request(self, request_id: str) -> RequestRecord:
        """One request, read by id. A denial is re-read until its reason resolves.

        Over HTTP under load, syft 0.9.5 sometimes computes a request's status from a stale
        view and reports a released request as rejected, without a reason; a real denial
        always has one (rds requires it), so such a reading is checked again.
        """
        wanted = _request_id(request_id)
        for _ in range(_DENIAL_REREADS):
            found = self._records(self._rows(ids=[wanted])["rows"])
            if not found:
                raise InvalidInput(f"No request with id {request_id!r} on this domain.")
            record = found[0]
            if record.status != "denied" or record.deny_reason:
                return record
            time.sleep(0.2)
        return record

    def _rows(self, **kwargs: Any) -> dict[str, Any]:
        """rds's own request read (``rds._syft.rows``): one round trip, plain values."""
        from syft.client.api import SyftAPICall
        from syft.service.response import SyftError, SyftSuccess

        api = self._client.api
        call = SyftAPICall(
            server_uid=api.server_uid, path=ROWS, args=[], kwargs=kwargs, blocking=True
        )
        with quiet():
            result = api.make_call(call)
        if isinstance(result, SyftError):
            raise DomainError(f"The domain refused the call: {result.message}")
        text = result.value if isinstance(result, SyftSuccess) else None
        try:
            value = json.loads(text) if isinstance(text, str) else None
        except ValueError:
            value = None
        if not isinstance(value, dict) or not isinstance(value.get("rows"), list):
            raise DomainError("The domain answered a request listing with something else.")
        return value

    def _records(self, rows: list[dict[str, Any]]) -> list[RequestRecord]:
        """Records for ``rows``, reading the code of those not seen before (in pages)."""
        with self._lock:
            unknown = [r["id"] for r in rows if r["id"] not in self._fixed]
        for start in range(0, len(unknown), MAX_IDS):
            page = self._rows(ids=unknown[start : start + MAX_IDS], code=True)["rows"]
            with self._lock:
                for row in page:
                    meta, source = submission.split_header(row.get("raw_code") or "")
                    self._fixed[row["id"]] = (str(row["code_id"]), source, meta)
        records = []
        for row in rows:
            with self._lock:
                fixed = self._fixed.get(row["id"])
            if fixed is None:  # not readable (yet): skipped, as syft would not list it
                continue
            code_id, source, meta = fixed
            status = row["status"] if row["status"] in _STATUSES else "pending"
            tags = list(row.get("tags") or ())
            reason = row.get("deny_reason") if status == "denied" else None
            records.append(
                RequestRecord(
                    id=row["id"],
                    code_id=code_id,
                    source=source,
                    meta=meta,
                    scientist=row["scientist"],
                    status=status,
                    deny_reason=reason if isinstance(reason, str) else None,
                    submitted_at=_utc(row["submitted_at"]),
                    stage=_tag(tags, STAGE_TAG),
                    checks=_tag(tags, CHECKS_TAG) if status == "approved" else None,
                    withdrawn=status == "pending" and WITHDRAWN_TAG in tags,
                )
            )
        return records

    def set_stage(self, request_id: str, stage: str, *, checks: str | None = None) -> None:
        """Tell the scientist how far the owner is with a pending request (request tags).

        ``checks`` is set only just before a release: a verdict shown earlier would tell the
        scientist something about the private data that nobody decided to release.
        """
        req = self._tag_targets.get(request_id)
        if req is None:
            req = self._get(request_id)
            with self._tag_lock:
                if len(self._tag_targets) >= 256:
                    self._tag_targets.pop(next(iter(self._tag_targets)))
                self._tag_targets[request_id] = req
        # rds owns a request's tags (syft sets none); syft looks the request up by id.
        tags = [STAGE_TAG + stage] + ([CHECKS_TAG + checks] if checks is not None else [])
        with quiet():
            self._client.api.services.request.set_tags(req, tags)

    def deposit(self, request_id: str, payload: bytes) -> None:
        """Release ``payload`` for the request (approves it in syft)."""
        req = self._get(request_id)
        with quiet():
            req.deposit_result(payload, approve=True)

    def withdraw(self, request_id: str) -> bool:
        """Withdraw one's own undecided request; ``False`` if it was withdrawn already.

        rds's own call (``rds._syft.withdraw``): the server checks that the request is the
        caller's and still undecided, and refuses otherwise (``RequestStateError`` for a
        decided one, ``InvalidInput`` for an id that is not the caller's).
        """
        from syft.client.api import SyftAPICall
        from syft.service.response import SyftError

        from rds.errors import RequestStateError

        api = self._client.api
        call = SyftAPICall(
            server_uid=api.server_uid,
            path=WITHDRAW,
            args=[],
            kwargs={"request_id": str(request_id).replace("-", "").lower()},  # checked there
            blocking=True,
        )
        with quiet():
            result = api.make_call(call)
        if isinstance(result, SyftError):
            if "already" in result.message:
                raise RequestStateError(result.message)
            raise InvalidInput(result.message)
        return getattr(result, "value", None) == "withdrawn"

    def deny(self, request_id: str, reason: str) -> None:
        req = self._get(request_id)
        with quiet():
            req.deny(reason)

    def fetch_result(self, request_id: str) -> bytes | None:
        """The released payload, or ``None`` while there is none."""
        from syft.types.uid import UID

        code_id = self._code_id(request_id)
        with quiet():
            jobs = self._client.api.services.job.get_by_user_code_id(UID(code_id))
            if not jobs:
                return None
            value = jobs[-1].result.get() if jobs[-1].result is not None else None
        return value if isinstance(value, bytes) else None

    def _code_id(self, request_id: str) -> str:
        wanted = _request_id(request_id)
        with self._lock:
            fixed = self._fixed.get(wanted)
        return fixed[0] if fixed is not None else self.request(wanted).code_id

    def _get(self, request_id: str) -> Any:
        from syft.types.errors import SyftException
        from syft.types.uid import UID

        try:
            with quiet():
                return self._client.api.services.request.get_by_uid(UID(request_id))
        except SyftException:
            raise InvalidInput(f"No request with id {request_id!r} on this domain.") from None


def _https_login(target: str, *, email: str, password: str, verify: Any) -> Any:
    """syft's login over HTTPS, with every call of this client verified against ``verify``.

    syft passes ``verify=True`` on each request and sends API calls with module-level
    ``requests.post``; here the connection's session gets an adapter that puts the CA in,
    and HTTPS calls go through that session (``_https_fixes``).
    """
    from syft.client.client import HTTPConnection
    from syft.types.server_url import ServerURL

    url, port = _split_url(target)
    ca = _ca_bundle(verify)
    _https_fixes()
    connection = HTTPConnection(url=ServerURL.from_url(f"{url}:{port}"))
    connection.session_cache = _verifying_session(ca)
    guest = connection.get_client_type().unwrap()(connection=connection)
    return guest.login(email=email, password=password, cache=False)


def _ca_bundle(verify: Any) -> str | None:
    """The CA file to verify with: ``verify``, else ``SSL_CERT_FILE`` when requests' own
    variables are unset (requests reads ``REQUESTS_CA_BUNDLE`` itself), else None."""
    if verify is None:
        if os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE"):
            return None
        verify = os.environ.get("SSL_CERT_FILE") or None
        if verify is None:
            return None
    if isinstance(verify, bool):
        raise InvalidInput(
            "verify= takes the path of a CA certificate (PEM); rds always verifies HTTPS."
        )
    path = os.fspath(verify)
    if not os.path.isfile(path):
        raise InvalidInput(f"No CA certificate file at {path!r} (verify= / SSL_CERT_FILE).")
    return path


def _verifying_session(ca: str | None) -> Any:
    import requests
    from requests.adapters import HTTPAdapter  # type: ignore[import-untyped]
    from urllib3.util import Retry

    class Verifying(HTTPAdapter):
        def send(self, request: Any, **kwargs: Any) -> Any:
            if ca is not None and kwargs.get("verify") is not False:
                kwargs["verify"] = ca
            return super().send(request, **kwargs)

    session = requests.Session()
    session.mount("https://", Verifying(max_retries=Retry(total=3, backoff_factor=0.5)))
    return session


_SESSION_CALLS = threading.Lock()


def _https_fixes() -> None:
    """Two of syft 0.9.5's HTTPS gaps, closed once per process (plain HTTP is untouched):

    - ``ServerURL.from_url`` sets port 443 for any ``https://`` URL, even one that names
      its port, and every copy of a URL goes through it: an explicit port is kept.
    - An HTTPS connection's API calls go through its session (syft uses a bare
      ``requests.post``, which a per-connection CA cannot reach).
    """
    from urllib.parse import urlsplit

    from syft.client.client import HTTPConnection
    from syft.serde.deserialize import _deserialize
    from syft.serde.serialize import _serialize
    from syft.types.server_url import ServerURL
    from syft.util.util import verify_tls

    with _SESSION_CALLS:
        original = HTTPConnection.make_call
        if getattr(original, "_rds_session_calls", False):
            return
        from_url = ServerURL.from_url.__func__

        def from_url_keeping_port(cls: Any, url: Any) -> Any:
            found = from_url(cls, url)
            if isinstance(url, str) and url.startswith("https://"):
                explicit = urlsplit(url).port
                if explicit is not None:
                    found.set_port(explicit)
            return found

        ServerURL.from_url = classmethod(from_url_keeping_port)

        def make_call(self: Any, signed_call: Any) -> Any:
            import requests

            if self.url.protocol != "https" or self.rtunnel_token:
                return original(self, signed_call)
            response = self.session.post(
                str(self.api_url),
                data=_serialize(obj=signed_call, to_bytes=True),
                headers=self.headers,
                verify=verify_tls(),
            )
            if response.status_code != 200:
                raise requests.ConnectionError(
                    f"Failed to fetch metadata. Response returned with code {response.status_code}"
                )
            return _deserialize(response.content, from_bytes=True)

        make_call._rds_session_calls = True  # type: ignore[attr-defined]
        HTTPConnection.make_call = make_call


def _tls_reason(exc: Exception) -> str:
    """The certificate problem in its own words, from a requests ``SSLError``'s chain."""
    import ssl

    stack: list[BaseException] = [exc]
    seen: set[int] = set()
    while stack:
        error = stack.pop()
        if id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, ssl.SSLCertVerificationError):
            return str(error.verify_message)
        if isinstance(error, ssl.SSLError):
            return str(error.reason or error)
        reason = getattr(error, "reason", None)  # urllib3's MaxRetryError
        linked = [*error.args, reason, error.__cause__, error.__context__]
        stack += [e for e in linked if isinstance(e, BaseException)]
    return "its certificate was refused"


def _tag(tags: list[str], prefix: str) -> str | None:
    values = [t[len(prefix) :] for t in tags if t.startswith(prefix)]
    return values[-1] if values else None


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=UTC)


def _request_id(request_id: str) -> str:
    """A request id as syft stores it (32 hex digits), or ``InvalidInput``."""
    text = str(request_id).replace("-", "").lower()
    if len(text) != 32 or any(c not in "0123456789abcdef" for c in text):
        raise InvalidInput(f"No request with id {request_id!r} on this domain.")
    return text


def _before(cursor: str, seconds: float) -> str:
    """The cursor ``seconds`` earlier (syft stores ``_created_at`` to the second)."""
    from datetime import timedelta

    moment = datetime.fromisoformat(cursor) - timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _split_url(target: str) -> tuple[str, int]:
    from urllib.parse import urlsplit

    parts = urlsplit(target)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise InvalidInput(f"Not a domain URL: {target!r} (expected http://host:port).")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{parts.hostname}", port


def _text(description: Any) -> str:
    return str(getattr(description, "text", description) or "")


def _meta(text: str) -> dict[str, Any]:
    if not text.startswith(META_PREFIX):
        return {}
    try:
        loaded = json.loads(text[len(META_PREFIX) :])
    except ValueError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _at_the_seam(method: Callable[..., T]) -> Callable[..., T]:
    """Translate syft's and the network's failures into rds's errors, here and only here.

    A transport failure (the domain went away) is ``DomainUnreachable``; an error syft
    raised on purpose is ``DomainError`` with syft's public message. rds's own errors pass
    through, and anything else is a bug (rds's or syft's) and stays what it is, so that the
    panel shows it as one (a 500 with a log line) instead of as a domain that is down.
    """

    @functools.wraps(method)
    def translated(self: Connection, *args: Any, **kwargs: Any) -> T:
        from syft.types.errors import SyftException

        try:
            return method(self, *args, **kwargs)
        except RDSError:
            raise
        except OSError as exc:  # requests' ConnectionError and Timeout are OSErrors too
            raise DomainUnreachable(f"The domain stopped answering: {exc}") from exc
        except SyftException as exc:
            raise DomainError(f"The domain refused the call: {exc.public_message}") from None

    return translated


# Every operation of a connection crosses the seam (login translates its own failures,
# which it tells apart: a refused password, a domain that is not there).
for _name, _member in list(vars(Connection).items()):
    if not _name.startswith("_") and _name != "login" and inspect.isfunction(_member):
        setattr(Connection, _name, _at_the_seam(_member))
# A dataset's mock is fetched lazily, through the asset syft handed over: the same seam.
DatasetRecord.mock = _at_the_seam(DatasetRecord.mock)  # type: ignore[method-assign]
