"""A development CA for a cluster of hosts: `coopnode cluster dev-ca DIR --hosts a,b,c`.

It writes a CA and, for each host, a certificate signed by it that serves both ends of a
link (Ray's gRPC uses one certificate as server and as client, and so do the wallet
shards' links), so that a cluster on one machine, or a few machines on a desk, runs with
the TLS of a real one:

    DIR/ca.pem, DIR/ca-key.pem            the CA (its key, mode 0600, signs more hosts)
    DIR/<host>/ca.pem, cert.pem, key.pem  what a host needs: copy the folder to the host

Each host's certificate names the host (a DNS name, or an IP address when the host is
given as one), the address given after `=` (`b=10.0.0.6`), and `localhost` and
127.0.0.1, so that a cluster of loopback "hosts" verifies too. Keys are ECDSA P-256,
written unencrypted (the node starts unattended) with mode 0600.

A directory that already holds a CA keeps it: the command then adds the hosts it does
not hold yet, and refuses to overwrite a host's files. Not for production: a co-op's
cluster certificates come from its own CA, whose key never sits beside the hosts'.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
from pathlib import Path

import msgspec
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# A host's name: a DNS label or name, or an IP address (checked apart); no path parts.
_HOST_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$")
# A cluster on a desk has a few hosts; a list far longer is a typing mistake.
DEV_CA_HOSTS_MAX = 64
# A development CA outlives the experiments it serves, but not by years.
DEV_CA_DAYS_MAX = 825
DEV_CA_DAYS_DEFAULT = 365

CA_CERT_NAME = "ca.pem"
CA_KEY_NAME = "ca-key.pem"
HOST_CERT_NAME = "cert.pem"
HOST_KEY_NAME = "key.pem"

_Key = ec.EllipticCurvePrivateKey
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class DevCaError(Exception):
    """The command cannot do what it was asked; the message says why."""


class HostSpec(msgspec.Struct, frozen=True):
    name: str
    # Another name or address the host is reached at, besides its name and loopback.
    address: str = ""


class HostFiles(msgspec.Struct, frozen=True):
    name: str
    ca_file: Path
    cert_file: Path
    key_file: Path


def parse_hosts(text: str) -> list[HostSpec]:
    """`a,b=10.0.0.6,c` → hosts; refuse a name that could not be a host or a folder."""
    hosts: list[HostSpec] = []
    for item in (part.strip() for part in text.split(",")):
        name, _, address = item.partition("=")
        if not _HOST_NAME.match(name) or name.endswith(".") or ".." in name:
            raise DevCaError(f"--hosts: {item!r} is not a host name (letters, digits, . and -)")
        if address and not _HOST_NAME.match(address) and not _is_address(address):
            raise DevCaError(f"--hosts: {address!r} is not a host name or an IP address")
        hosts.append(HostSpec(name=name, address=address))
    names = [host.name for host in hosts]
    if len(set(names)) != len(names):
        raise DevCaError("--hosts: a host is named twice")
    if not 1 <= len(hosts) <= DEV_CA_HOSTS_MAX:
        raise DevCaError(f"--hosts: name 1 to {DEV_CA_HOSTS_MAX} hosts")
    return hosts


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "CoopNode development cluster"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _write_private(path: Path, data: bytes) -> None:
    """Written with mode 0600 from the first byte, never world-readable for a moment."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)


def _key_pem(key: _Key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _new_ca(days: int) -> tuple[x509.Certificate, _Key]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    usage = x509.KeyUsage(
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
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name("CoopNode development cluster CA"))
        .issuer_name(_name("CoopNode development cluster CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return certificate, key


def _alt_names(host: HostSpec) -> list[x509.GeneralName]:
    """The host's names and addresses, then localhost and 127.0.0.1, each once."""
    names: list[x509.GeneralName] = []
    for value in (host.name, host.address, "localhost", "127.0.0.1"):
        if not value:
            continue
        general: x509.GeneralName = (
            x509.IPAddress(ipaddress.ip_address(value))
            if _is_address(value)
            else x509.DNSName(value)
        )
        if general not in names:
            names.append(general)
    return names


def _host_certificate(
    host: HostSpec, ca: x509.Certificate, ca_key: _Key, key: _Key, days: int
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=True,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    # Both ends of a link present this certificate: it serves and it is a client.
    both_ends = x509.ExtendedKeyUsage(
        [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    )
    return (
        x509.CertificateBuilder()
        .subject_name(_name(host.name))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(min(now + datetime.timedelta(days=days), ca.not_valid_after_utc))
        .add_extension(x509.SubjectAlternativeName(_alt_names(host)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(both_ends, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )


def _load_or_make_ca(directory: Path, days: int) -> tuple[x509.Certificate, _Key]:
    cert_path, key_path = directory / CA_CERT_NAME, directory / CA_KEY_NAME
    if not cert_path.exists() and not key_path.exists():
        ca, ca_key = _new_ca(days)
        cert_path.write_bytes(_cert_pem(ca))
        _write_private(key_path, _key_pem(ca_key))
        return ca, ca_key
    try:
        ca = x509.load_pem_x509_certificate(cert_path.read_bytes())
        loaded = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as error:
        raise DevCaError(
            f"{directory} holds a CA that cannot be used ({CA_CERT_NAME} and {CA_KEY_NAME}, "
            f"unencrypted PEM): {error}"
        ) from None
    if not isinstance(loaded, ec.EllipticCurvePrivateKey):
        raise DevCaError(f"{key_path} is not an ECDSA key made by this command")
    return ca, loaded


def make_dev_ca(
    directory: Path, hosts: list[HostSpec], days: int = DEV_CA_DAYS_DEFAULT
) -> list[HostFiles]:
    """Write the CA (or keep the one there) and a certificate and key for every host."""
    if not 1 <= days <= DEV_CA_DAYS_MAX:
        raise DevCaError(f"--days: 1 to {DEV_CA_DAYS_MAX} days")
    taken = [host.name for host in hosts if (directory / host.name).exists()]
    if taken:
        raise DevCaError(
            f"{directory} already holds files for {', '.join(taken)}; "
            "remove them first or name other hosts"
        )
    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_key = _load_or_make_ca(directory, days)
    written: list[HostFiles] = []
    for host in hosts:
        folder = directory / host.name
        folder.mkdir(mode=0o755)
        key = ec.generate_private_key(ec.SECP256R1())
        files = HostFiles(
            name=host.name,
            ca_file=folder / CA_CERT_NAME,
            cert_file=folder / HOST_CERT_NAME,
            key_file=folder / HOST_KEY_NAME,
        )
        files.ca_file.write_bytes(_cert_pem(ca))
        files.cert_file.write_bytes(_cert_pem(_host_certificate(host, ca, ca_key, key, days)))
        _write_private(files.key_file, _key_pem(key))
        written.append(files)
    return written
