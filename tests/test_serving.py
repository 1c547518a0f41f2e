"""Serving a domain beyond this machine: HTTPS, the plain-HTTP guard, a second ``start``.

Every domain here is served by ``rds domain start`` in processes of its own; the scientist
connects from this process (or from a fresh one, for the environment variables). The test
certificates are made with ``cryptography``'s x509 builder: a CA, and a server certificate
it signed for 127.0.0.1 and localhost.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import socket
import ssl
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import rds
from rds.domain import serve
from tests.conftest import free_port, patients


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "rds.cli", "domain", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env, check=False)


def _listening(port: int) -> set[str]:
    """The addresses (hex, as the kernel writes them) that listen on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


def _hospital(path: Path) -> rds.Credentials:
    """A domain in ``path`` with ``patients`` published and one scientist; not served."""
    with rds.Domain.create("TLS Hospital", path=path) as domain:
        domain.publish("patients", patients(), description="Synthetic admissions")
        return domain.add_scientist("ada@uni.example.org")


# -- certificates ----------------------------------------------------------------------
def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _certificates(where: Path) -> dict[str, Path]:
    """A CA (``ca.pem``) and a server certificate it signed for 127.0.0.1 and localhost
    (``server.pem``, key ``server.key``, 0600)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("rds test CA"))
        .issuer_name(_name("rds test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    where.mkdir(parents=True, exist_ok=True)
    files = {"ca": where / "ca.pem", "cert": where / "server.pem", "key": where / "server.key"}
    files["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files["cert"].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    fd = os.open(files["key"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return files


@pytest.fixture(scope="module")
def tls_domain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A domain served over HTTPS on every interface by ``rds domain start``."""
    root = tmp_path_factory.mktemp("tls")
    certs = _certificates(root / "certs")
    path = root / "hospital"
    creds = _hospital(path)
    port = free_port()
    started = _cli(
        "start", "TLS Hospital", "--path", str(path), "--host", "0.0.0.0", "--port", str(port),
        "--tls-cert", str(certs["cert"]), "--tls-key", str(certs["key"]),
    )  # fmt: skip
    try:
        assert started.returncode == 0, started.stderr
        # The confined server holds a copy of the key while it serves...
        assert (path / "syft" / "tls" / "key.pem").is_file()
        yield {
            "path": path, "port": port, "url": f"https://127.0.0.1:{port}", "creds": creds,
            "certs": certs, "started": started,
        }  # fmt: skip
    finally:
        stopped = serve.stop(path)
    # ... and none once it has stopped.
    assert stopped and not (path / "syft" / "tls").exists()
    assert not _listening(port)


# -- HTTPS -----------------------------------------------------------------------------
def test_https_serves_a_scientist_who_has_the_ca(tls_domain: dict[str, Any]) -> None:
    started = tls_domain["started"]
    port, creds = tls_domain["port"], tls_domain["creds"]
    assert f"serving at https://0.0.0.0:{port}" in started.stdout
    assert "WARNING" not in started.stderr  # TLS beyond loopback needs no flag
    session = rds.connect(
        tls_domain["url"],
        email=creds.email,
        password=creds.password,
        verify=tls_domain["certs"]["ca"],
    )
    assert session.datasets.names == ["patients"]
    assert list(session.dataset("patients").mock.columns) == list(patients().columns)

    # A request goes out over HTTPS, the worker takes it over the loopback port, the owner
    # (Domain.open, on this machine) approves, the result comes back over HTTPS.
    def ward_counts(df):
        return df["ward"].value_counts().sort_index().to_dict()

    req = session.dataset("patients").request(ward_counts, reason="ward sizes")
    with rds.Domain.open(tls_domain["path"]) as owner:
        assert not owner.embedded
        mine = owner.request(req.id)
        assert mine.run().ok
        mine.approve()
    result = req.result(timeout=60, poll=0.2, progress=False)
    assert result == patients()["ward"].value_counts().sort_index().to_dict()


def test_the_tls_port_speaks_nothing_but_tls(tls_domain: dict[str, Any]) -> None:
    port, creds = tls_domain["port"], tls_domain["creds"]
    # The socket on every interface is the TLS one; the plain one is loopback only.
    assert _listening(port) == {"00000000"}
    info = json.loads((tls_domain["path"] / "server.json").read_text())
    assert info["public_url"] == f"https://0.0.0.0:{port}" and info["tls"] is True
    local_port = int(info["url"].rsplit(":", 1)[1])
    assert info["url"] == f"http://127.0.0.1:{local_port}" and local_port != port
    assert _listening(local_port) == {"0100007F"}
    # A plain-HTTP client to the TLS port gets no answer from syft.
    with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/metadata", timeout=10)
    with pytest.raises(rds.DomainUnreachable, match=r"use an https:// URL"):
        rds.connect(f"http://127.0.0.1:{port}", email=creds.email, password=creds.password)
    # The handshake presents the certificate given to `rds domain start`.
    context = ssl.create_default_context(cafile=str(tls_domain["certs"]["ca"]))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        served = tls.getpeercert(binary_form=True)
    assert served is not None
    expected = x509.load_pem_x509_certificate(tls_domain["certs"]["cert"].read_bytes())
    assert x509.load_der_x509_certificate(served) == expected


def test_a_client_without_the_ca_is_refused_clearly(tls_domain: dict[str, Any]) -> None:
    creds = tls_domain["creds"]
    with pytest.raises(rds.DomainError) as refused:
        rds.connect(tls_domain["url"], email=creds.email, password=creds.password)
    assert not isinstance(refused.value, rds.DomainUnreachable)
    message = str(refused.value)
    assert "Could not verify the domain at https://127.0.0.1" in message
    assert "certificate" in message and "verify=" in message
    assert "Traceback" not in message
    # A CA that did not sign it is refused the same way.
    other = _certificates(tls_domain["path"].parent / "other-ca")
    with pytest.raises(rds.DomainError, match="Could not verify"):
        rds.connect(
            tls_domain["url"], email=creds.email, password=creds.password, verify=other["ca"]
        )
    with pytest.raises(rds.InvalidInput, match="No CA certificate file"):
        rds.connect(
            tls_domain["url"], email=creds.email, password=creds.password, verify="/no/ca.pem"
        )


SCIENTIST = textwrap.dedent(
    """
    import sys
    import rds
    url, email, password = sys.argv[1:4]
    try:
        session = rds.connect(url, email=email, password=password)
    except rds.DomainError as exc:
        print("refused:", exc)
        sys.exit(3)
    print("datasets:", session.datasets.names)
    """
)


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", None])
def test_the_ca_from_the_environment(
    tls_domain: dict[str, Any], tmp_path: Path, variable: str | None
) -> None:
    script = tmp_path / "scientist.py"
    script.write_text(SCIENTIST)
    # requests reads REQUESTS_CA_BUNDLE, then CURL_CA_BUNDLE; rds adds SSL_CERT_FILE after them.
    ca_variables = {"REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR"}
    env = {k: v for k, v in os.environ.items() if k not in ca_variables}
    if variable is not None:
        env[variable] = str(tls_domain["certs"]["ca"])
    creds = tls_domain["creds"]
    argv = [sys.executable, str(script), tls_domain["url"], creds.email, creds.password]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env, check=False)
    if variable is None:
        assert out.returncode == 3, out.stderr
        assert "refused: Could not verify the domain" in out.stdout
        assert "Traceback" not in out.stderr
    else:
        assert out.returncode == 0, out.stderr
        assert "datasets: ['patients']" in out.stdout


def test_status_and_a_second_start_name_the_https_url(tls_domain: dict[str, Any]) -> None:
    path, port = tls_domain["path"], tls_domain["port"]
    again = _cli("start", "TLS Hospital", "--path", str(path))
    assert again.returncode == 0, again.stderr
    assert f"already serving at https://0.0.0.0:{port}" in again.stdout
    status = _cli("status", "--path", str(path))
    assert status.returncode == 0, status.stderr
    assert f"serving at https://0.0.0.0:{port} (this machine's processes: http://127.0.0.1:" in (
        status.stdout
    )


def test_tls_needs_a_matching_certificate_and_key(tmp_path: Path) -> None:
    certs = _certificates(tmp_path / "certs")
    other = _certificates(tmp_path / "other")
    path = tmp_path / "d"
    port = str(free_port())
    half = _cli("start", "D", "--path", str(path), "--port", port, "--tls-cert", str(certs["cert"]))
    assert half.returncode != 0 and "needs both --tls-cert FILE and --tls-key FILE" in half.stderr
    mismatched = _cli(
        "start", "D", "--path", str(path), "--port", port,
        "--tls-cert", str(certs["cert"]), "--tls-key", str(other["key"]),
    )  # fmt: skip
    assert mismatched.returncode != 0
    assert "Cannot serve HTTPS with certificate" in mismatched.stderr
    assert "Traceback" not in mismatched.stderr
    assert not _listening(int(port))


# -- plain HTTP beyond loopback ----------------------------------------------------------
def test_plain_http_beyond_loopback_needs_a_flag(tmp_path: Path) -> None:
    path = tmp_path / "open"
    port = free_port()
    refused = _cli("start", "Open", "--path", str(path), "--host", "0.0.0.0", "--port", str(port))
    assert refused.returncode != 0
    assert "Refusing to serve plain HTTP on 0.0.0.0" in refused.stderr
    assert "--tls-cert FILE --tls-key FILE" in refused.stderr
    assert "reverse proxy" in refused.stderr and "--insecure-http" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not _listening(port) and not (path / "config.json").exists()
    rds.Domain.create("Never", path=tmp_path / "never").close()
    with pytest.raises(rds.DomainError, match="Refusing to serve plain HTTP"):
        serve.start(tmp_path / "never", host="0.0.0.0", port=port)  # the library refuses too
    assert not _listening(port)

    allowed = _cli(
        "start", "Open", "--path", str(path), "--host", "0.0.0.0", "--port", str(port),
        "--insecure-http",
    )  # fmt: skip
    try:
        assert allowed.returncode == 0, allowed.stderr
        assert "WARNING: serving plain HTTP on 0.0.0.0" in allowed.stderr
        assert f"serving at http://0.0.0.0:{port}" in allowed.stdout
        assert _listening(port) == {"00000000"}
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/metadata", timeout=10) as r:
            assert json.loads(r.read())["name"] == "Open"
    finally:
        serve.stop(path)


def test_loopback_needs_no_flag() -> None:
    for host in ("127.0.0.1", "127.0.0.2", "::1", "localhost"):
        assert serve.is_loopback(host), host
    for host in ("0.0.0.0", "", "::", "192.168.1.10", "10.0.0.1"):
        assert not serve.is_loopback(host), host


# -- a second start ------------------------------------------------------------------------
def test_a_second_start_reports_the_url_and_refuses_another_port(tmp_path: Path) -> None:
    path = tmp_path / "clinic"
    port, other = free_port(), free_port()
    first = _cli("start", "Clinic", "--path", str(path), "--port", str(port))
    try:
        assert first.returncode == 0, first.stderr
        url = f"http://127.0.0.1:{port}"
        for args in ([], ["--port", str(port)], ["--host", "127.0.0.1"]):
            again = _cli("start", "Clinic", "--path", str(path), *args)
            assert again.returncode == 0, again.stderr
            assert (
                f"Domain 'Clinic' in {path.resolve()} is already serving at {url}" in again.stdout
            )
        # Another name on the command line: the domain's own is reported, and the mismatch.
        named = _cli("start", "Elsewhere", "--path", str(path))
        assert named.returncode == 0, named.stderr
        assert "Domain 'Clinic'" in named.stdout and "not 'Elsewhere'" in named.stdout
        assert "Domain 'Elsewhere'" not in named.stdout
        # A different port (or address) is refused, saying where it serves.
        moved = _cli("start", "Clinic", "--path", str(path), "--port", str(other))
        assert moved.returncode != 0
        assert f"already serving at {url}" in moved.stderr
        assert f"cannot also serve on port {other}" in moved.stderr
        assert "rds domain stop" in moved.stderr
        assert not _listening(other)
        with pytest.raises(rds.DomainError, match=f"already serving at {url}"):
            serve.start(path, port=other)
        assert serve.start(path) == url and serve.start(path, port=port) == url
        assert _listening(port) == {"0100007F"}
    finally:
        serve.stop(path)


def test_start_help_describes_serving_options() -> None:
    out = _cli("start", "--help")
    assert out.returncode == 0
    text = " ".join(out.stdout.split())
    for option in ("--tls-cert FILE", "--tls-key FILE", "--insecure-http", "--host", "--port"):
        assert option in text, option
    assert "reverse proxy" in text and "127.0.0.1" in text


def test_credentials_and_invitations_name_the_https_url(
    tls_domain: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RDS_CONFIG_DIR", str(tmp_path / "config"))
    with rds.Domain.open(tls_domain["path"]) as owner:
        assert owner.url is not None and owner.url.startswith("http://127.0.0.1")
        assert owner.public_url == f"https://0.0.0.0:{tls_domain['port']}"
        invitation = owner.invite("bo@uni.example.org")
        assert owner.reset_password("bo@uni.example.org").url == owner.public_url
        invitation = owner.invite("cy@uni.example.org")
    assert invitation.url == owner.public_url
    # Bound to every interface, the scientist names the host they reach it by.
    session = rds.connect(
        tls_domain["url"], invitation=invitation.token, verify=tls_domain["certs"]["ca"]
    )
    assert session.email == "cy@uni.example.org"
    # The profile it saved keeps the CA: the next connection needs nothing else.
    again = rds.connect(profile="tls-hospital")
    assert again.email == "cy@uni.example.org" and again.datasets.names == ["patients"]
