"""Cluster TLS from the settings: checked at start, given to Ray, printed for `ray start`.

`[cluster.tls]` names this host's certificate and key and the cluster's CA. This module
imports no Ray, on purpose: Ray reads its TLS variables when it starts its processes and
channels, so `set_ray_tls_environment` runs in `coopnode serve` before Ray is imported
(beside `local_ray.keep_local_ray_on_loopback`), and `coopnode cluster env` prints the
same variables for `ray start` on a host:

    RAY_USE_TLS=1  RAY_TLS_CA_CERT=<ca_file>  RAY_TLS_SERVER_CERT=<cert_file>
    RAY_TLS_SERVER_KEY=<key_file>

Ray then speaks TLS on every gRPC channel (GCS, raylets, workers, object transfer), with
each host's certificate as both server and client, and refuses a peer whose certificate
the CA did not sign. Its workers inherit the variables, which is how a wallet shard finds
its own host's files for its link (`actors.kernel.link_tls`).

The files are checked before anything starts, each failure a sentence naming the setting
and the file: one that cannot be read, holds no PEM certificate or key, a key that is
encrypted or not the certificate's, a certificate expired, not signed by the CA, or not
allowed to serve and to connect (extended key usage without serverAuth or clientAuth).
"""

from __future__ import annotations

import datetime
import itertools
import os
import shlex
from collections.abc import MutableMapping
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID

from coopnode.actors.kernel.link_tls import (
    RAY_TLS_CA_CERT,
    RAY_TLS_SERVER_CERT,
    RAY_TLS_SERVER_KEY,
    RAY_USE_TLS,
    ClusterTlsFiles,
    LinkTlsError,
    link_client_context,
    link_server_context,
)
from coopnode.node.tls import check_key_matches, read_setting_file
from coopnode.settings import Settings, SettingsError

# Ray would otherwise report usage over the network, which a co-op's hosts must not.
RAY_USAGE_STATS = "RAY_USAGE_STATS_ENABLED"


def _certificates(setting: str, path: Path) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(read_setting_file(f"cluster.tls.{setting}", path))
    except ValueError:
        raise SettingsError(f"cluster.tls.{setting}: {path} holds no PEM certificate") from None


def _check_certificate(
    chain: list[x509.Certificate], path: Path, cas: list[x509.Certificate]
) -> None:
    """The host's certificate (the chain's first) is in time, chains to the CA through the
    intermediates after it, and may serve and connect."""
    certificate = chain[0]
    expiry = certificate.not_valid_after_utc
    if expiry <= datetime.datetime.now(datetime.UTC):
        raise SettingsError(
            f"cluster.tls.cert_file: the certificate in {path} expired on {expiry:%Y-%m-%d}"
        )
    links = all(_issued_by(below, above) for below, above in itertools.pairwise(chain))
    if not links or not any(_issued_by(chain[-1], ca) for ca in cas):
        raise SettingsError(
            f"cluster.tls.cert_file: the certificate in {path} is not signed by the CA of "
            "cluster.tls.ca_file: the other hosts would refuse it"
        )
    try:
        usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return  # No restriction: it may serve and connect.
    wanted = {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    if not wanted <= set(usage):
        raise SettingsError(
            f"cluster.tls.cert_file: the certificate in {path} must allow both TLS server "
            "and client use (extended key usage serverAuth and clientAuth): a host both "
            "serves its links and connects to the others' with it"
        )


def _issued_by(certificate: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _absolute(path: str) -> Path:
    """Ray's processes and the actors run in other working directories."""
    return Path(path).expanduser().resolve()


def cluster_tls_files(settings: Settings) -> ClusterTlsFiles | None:
    """The checked files of `[cluster.tls]`, absolute; None when it names none."""
    tls = settings.cluster.tls
    if not tls.enabled:
        return None
    ca_path, cert_path, key_path = (
        _absolute(tls.ca_file),
        _absolute(tls.cert_file),
        _absolute(tls.key_file),
    )
    cas = _certificates("ca_file", ca_path)
    chain = _certificates("cert_file", cert_path)
    check_key_matches(chain[0], cert_path, key_path, "cluster.tls.key_file")
    _check_certificate(chain, cert_path, cas)
    files = ClusterTlsFiles(ca_file=str(ca_path), cert_file=str(cert_path), key_file=str(key_path))
    try:  # What OpenSSL says of them, as both ends of a link will use them.
        link_server_context(files)
        link_client_context(files)
    except LinkTlsError as error:
        raise SettingsError(f"cluster.tls: {error}") from None
    return files


def ray_tls_environment(files: ClusterTlsFiles) -> dict[str, str]:
    """Ray's variables for these files (for a driver and for `ray start`)."""
    return {
        RAY_USE_TLS: "1",
        RAY_TLS_CA_CERT: files.ca_file,
        RAY_TLS_SERVER_CERT: files.cert_file,
        RAY_TLS_SERVER_KEY: files.key_file,
        RAY_USAGE_STATS: "0",
    }


def set_ray_tls_environment(
    settings: Settings, environ: MutableMapping[str, str] | None = None
) -> ClusterTlsFiles | None:
    """Before Ray is imported: give Ray the cluster's TLS files, checked.

    Variables already set (by the operator's shell) must agree with the settings: a
    driver whose Ray speaks TLS with other files than its wallet links would be a
    cluster half configured, so that is refused with a sentence, as is RAY_USE_TLS
    without `[cluster.tls]` (the wallet links would then be plain).
    """
    environ = os.environ if environ is None else environ
    files = cluster_tls_files(settings)
    if files is None:
        if environ.get(RAY_USE_TLS, "0").lower() in ("1", "true"):
            raise SettingsError(
                f"{RAY_USE_TLS} is set but cluster.tls names no files: name the same CA, "
                "certificate and key in cluster.tls, so that the wallet links use TLS too"
            )
        return None
    wanted = ray_tls_environment(files)
    for name, value in wanted.items():
        given = environ.get(name)
        if name != RAY_USAGE_STATS and given is not None and given != value:
            raise SettingsError(
                f"{name} is {given!r} in the environment but cluster.tls gives {value!r}: "
                "unset it, or make them agree"
            )
    for name, value in wanted.items():
        environ.setdefault(name, value)
    return files


def ray_start_environment_lines(settings: Settings) -> list[str]:
    """`export NAME=value` lines for `ray start` on this host (`coopnode cluster env`)."""
    files = cluster_tls_files(settings)
    if files is None:
        raise SettingsError(
            "cluster.tls names no files: Ray's links between hosts would be plain. Name "
            "this host's ca_file, cert_file and key_file (`coopnode cluster dev-ca` makes "
            "a development set)"
        )
    return [
        f"export {name}={shlex.quote(value)}" for name, value in ray_tls_environment(files).items()
    ]
