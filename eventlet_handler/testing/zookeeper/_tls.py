"""TLS files for test servers, made with ``cryptography`` (a test-extra dependency).

Its own module so that the ZooKeeper harness imports ``cryptography`` only when a
test asks for TLS: a plain server, and the pytest plugin's fixtures, work without it.
It imports only :mod:`._errors` of the harness (no cycle).  Any thread; writes files only.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import os
import secrets
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ._errors import ZooKeeperUnavailable

LOOPBACK = "127.0.0.1"

@dataclasses.dataclass(frozen=True)
class TLSMaterial:
    """Paths of TLS files generated with ``cryptography`` for one test server.

    ``ca_cert`` signed the server certificate and ``client_cert``;
    ``other_ca_cert`` is an unrelated CA (a client trusting only it must be
    refused).  ``keystore`` and ``truststore`` are PKCS12 files for the
    server, both protected by ``password``; the server certificate's SAN is
    ``IP:127.0.0.1`` and ``DNS:localhost``.
    """

    ca_cert: str
    client_cert: str
    client_key: str
    other_ca_cert: str
    keystore: str
    truststore: str
    password: str
    server_cert: str
    server_key: str
    directory: str


def generate_tls_material(directory: str | os.PathLike[str], *, days: int = 30) -> TLSMaterial:
    """Create a CA, a server and a client certificate, and an unrelated CA, in ``directory``."""
    if not hasattr(pkcs12, "serialize_java_truststore"):
        raise ZooKeeperUnavailable(
            "cryptography is too old to write a Java PKCS12 truststore "
            "(pkcs12.serialize_java_truststore is missing): pip install -U 'cryptography>=45'"
        )
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    password = secrets.token_hex(12)
    encryption = serialization.BestAvailableEncryption(password.encode("ascii"))

    ca_key, ca_cert = _make_ca("eventlet_handler test CA", days)
    _other_key, other_ca_cert = _make_ca("eventlet_handler unrelated CA", days)
    server_key, server_cert = _make_leaf(ca_key, ca_cert, "localhost", days, server=True)
    client_key, client_cert = _make_leaf(ca_key, ca_cert, "kazoo-client", days, server=False)

    keystore = out / "keystore.p12"
    keystore.write_bytes(
        pkcs12.serialize_key_and_certificates(b"server", server_key, server_cert, [ca_cert], encryption)
    )
    truststore = out / "truststore.p12"
    # A plain PKCS12 of certificates is not a Java truststore: Java only
    # trusts certificate bags carrying Oracle's trusted-key-usage attribute.
    truststore.write_bytes(
        pkcs12.serialize_java_truststore([pkcs12.PKCS12Certificate(ca_cert, b"ca")], encryption)
    )
    return TLSMaterial(
        ca_cert=_write_cert(out / "ca.pem", ca_cert),
        client_cert=_write_cert(out / "client.pem", client_cert),
        client_key=_write_key(out / "client-key.pem", client_key),
        other_ca_cert=_write_cert(out / "other-ca.pem", other_ca_cert),
        keystore=str(keystore),
        truststore=str(truststore),
        password=password,
        server_cert=_write_cert(out / "server.pem", server_cert),
        server_key=_write_key(out / "server-key.pem", server_key),
        directory=str(out),
    )


def _validity(days: int) -> tuple[datetime.datetime, datetime.datetime]:
    now = datetime.datetime.now(datetime.timezone.utc)
    return now - datetime.timedelta(days=1), now + datetime.timedelta(days=days)


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _make_ca(common_name: str, days: int) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """Return ``(key, certificate)`` of a self-signed CA (EC P-256)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    not_before, not_after = _validity(days)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _make_leaf(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    common_name: str,
    days: int,
    *,
    server: bool,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """Return ``(key, certificate)`` signed by the CA, with SAN ``IP:127.0.0.1, DNS:localhost``."""
    key = ec.generate_private_key(ec.SECP256R1())
    not_before, not_after = _validity(days)
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
    if server:
        usages.insert(0, ExtendedKeyUsageOID.SERVER_AUTH)
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    san = x509.SubjectAlternativeName(
        [x509.IPAddress(ipaddress.ip_address(LOOPBACK)), x509.DNSName("localhost")]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(san, critical=False)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def _write_cert(path: Path, cert: x509.Certificate) -> str:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(path)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> str:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.write_bytes(pem)
    path.chmod(0o600)
    return str(path)
