"""The node's TLS: the certificate and key of `node.tls_cert_file` / `node.tls_key_file`.

`server_tls(settings)` reads and checks them once, at start, before Ray starts, and
raises `SettingsError` with a sentence naming the setting and the file: a file that
cannot be read, one that holds no PEM certificate or key, a key that is not the
certificate's, a certificate that has expired. It gives the `ssl.SSLContext` the HTTP
site serves HTTPS and WSS with, and the SHA-256 of the node's certificate, which the
node's own kiosks are pinned to (`coopnode.reader.till_tls`).
"""

from __future__ import annotations

import datetime
import hashlib
import ssl
from pathlib import Path

import msgspec
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from coopnode.settings import NodeSettings, SettingsError


class ServerTls(msgspec.Struct, frozen=True):
    context: ssl.SSLContext
    # The SHA-256 of the node's certificate (DER), 64 hex digits.
    cert_sha256: str


def read_setting_file(setting: str, path: Path) -> bytes:
    """The file a setting names (`setting` in full, e.g. `node.tls_key_file`), or a
    `SettingsError` naming both."""
    try:
        return path.read_bytes()
    except OSError as error:
        raise SettingsError(f"{setting}: cannot read {path}: {error.strerror}") from None


def _certificate(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(read_setting_file("node.tls_cert_file", path))
    except ValueError:
        raise SettingsError(f"node.tls_cert_file: {path} holds no PEM certificate") from None


def check_key_matches(
    certificate: x509.Certificate, cert_path: Path, key_path: Path, key_setting: str
) -> None:
    """The key file (named by `key_setting` in full) holds the certificate's key, unencrypted."""
    try:
        key = serialization.load_pem_private_key(
            read_setting_file(key_setting, key_path), password=None
        )
    except (ValueError, TypeError):
        # TypeError: the key is encrypted; the node starts unattended, so it cannot ask.
        raise SettingsError(
            f"{key_setting}: {key_path} holds no unencrypted PEM private key"
        ) from None
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    encoding = serialization.Encoding.DER
    if key.public_key().public_bytes(encoding, public) != certificate.public_key().public_bytes(
        encoding, public
    ):
        raise SettingsError(
            f"{key_setting}: the key in {key_path} is not the key of the certificate in {cert_path}"
        )


def server_tls(node: NodeSettings) -> ServerTls | None:
    """The node's TLS context, or None when the settings name no certificate."""
    if not node.tls:
        return None
    cert_path, key_path = Path(node.tls_cert_file), Path(node.tls_key_file)
    certificate = _certificate(cert_path)
    check_key_matches(certificate, cert_path, key_path, "node.tls_key_file")
    expiry = certificate.not_valid_after_utc
    if expiry <= datetime.datetime.now(datetime.UTC):
        raise SettingsError(
            f"node.tls_cert_file: the certificate in {cert_path} expired on {expiry:%Y-%m-%d}"
        )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert_path, key_path)
    except ssl.SSLError as error:
        raise SettingsError(
            f"node.tls_cert_file: {cert_path} and {key_path} cannot be served: {error}"
        ) from None
    der = certificate.public_bytes(serialization.Encoding.DER)
    return ServerTls(context=context, cert_sha256=hashlib.sha256(der).hexdigest())
