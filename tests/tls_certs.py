"""Certificates the tests make: a CA, the node's certificate signed by it for 127.0.0.1,
and a second CA that signed nothing the node serves (a till that trusts only it must not
connect)."""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
from pathlib import Path

import msgspec
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = ec.EllipticCurvePrivateKey


class Pki(msgspec.Struct, frozen=True):
    ca_file: Path
    cert_file: Path
    key_file: Path
    # A CA the node's certificate does not chain to.
    other_ca_file: Path
    # The SHA-256 of the node's certificate (DER), 64 hex digits.
    cert_sha256: str


# A CA signs certificates and revocation lists, and nothing else.
_CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=False,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)


def new_key() -> PrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def new_ca(common_name: str) -> tuple[x509.Certificate, PrivateKey]:
    key = new_key()
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_CA_KEY_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return certificate, key


def server_certificate(
    ca: x509.Certificate, ca_key: PrivateKey, key: PrivateKey, *, expired: bool = False
) -> x509.Certificate:
    """A certificate for 127.0.0.1 and localhost, signed by `ca`; valid a day, or expired."""
    now = datetime.datetime.now(datetime.UTC)
    start, end = (
        (now - datetime.timedelta(days=2), now - datetime.timedelta(days=1))
        if expired
        else (now - datetime.timedelta(hours=1), now + datetime.timedelta(days=1))
    )
    return (
        x509.CertificateBuilder()
        .subject_name(_name("coopnode test node"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )


def write_certificate(path: Path, certificate: x509.Certificate) -> Path:
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return path


def write_key(path: Path, key: PrivateKey) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    return path


def make_pki(directory: Path) -> Pki:
    ca, ca_key = new_ca("coopnode test CA")
    other_ca, _ = new_ca("someone else's CA")
    key = new_key()
    certificate = server_certificate(ca, ca_key, key)
    der = certificate.public_bytes(serialization.Encoding.DER)
    return Pki(
        ca_file=write_certificate(directory / "ca.pem", ca),
        cert_file=write_certificate(directory / "node-cert.pem", certificate),
        key_file=write_key(directory / "node-key.pem", key),
        other_ca_file=write_certificate(directory / "other-ca.pem", other_ca),
        cert_sha256=hashlib.sha256(der).hexdigest(),
    )
