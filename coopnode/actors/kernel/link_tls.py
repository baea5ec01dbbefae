"""Mutual TLS for the links between a cluster's hosts: the SSL contexts both ends use.

A host holds three files: the cluster's CA, its own certificate and its key. On a link,
the listening end (a wallet shard) serves its host's certificate and requires the
connecting end's, and the connecting end (a front) presents its host's and checks the
listener's against the CA and the address it dialled. Nothing but the cluster's CA is
trusted: not the system's store, since any web server's certificate would pass it.

Where a host's files are found: the node gives Ray the cluster's files in Ray's own
variables (RAY_USE_TLS, RAY_TLS_SERVER_CERT, RAY_TLS_SERVER_KEY, RAY_TLS_CA_CERT), for
`ray start` on every host and for every driver; Ray's workers inherit them from their
host's raylet. So an actor reads its host's files from those variables
(`files_from_ray_environment`): a shard that Ray placed on host B serves B's certificate
whatever the settings of the front on host A that created it say.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping

import msgspec

RAY_USE_TLS = "RAY_USE_TLS"
RAY_TLS_CA_CERT = "RAY_TLS_CA_CERT"
RAY_TLS_SERVER_CERT = "RAY_TLS_SERVER_CERT"
RAY_TLS_SERVER_KEY = "RAY_TLS_SERVER_KEY"


class LinkTlsError(Exception):
    """A host's TLS files are missing or unusable; the message says which and why."""


class ClusterTlsFiles(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    ca_file: str
    cert_file: str
    key_file: str


def files_from_ray_environment(
    environ: Mapping[str, str] | None = None,
) -> ClusterTlsFiles:
    """This host's files, as Ray was started with them (see the module's docstring)."""
    environ = os.environ if environ is None else environ
    if environ.get(RAY_USE_TLS, "0").lower() not in ("1", "true"):
        raise LinkTlsError(
            f"cluster TLS is on, but this host's Ray runs without it ({RAY_USE_TLS} is not "
            "1): start Ray on this host with the environment `coopnode cluster env` prints"
        )
    names = (RAY_TLS_CA_CERT, RAY_TLS_SERVER_CERT, RAY_TLS_SERVER_KEY)
    missing = [name for name in names if not environ.get(name)]
    if missing:
        raise LinkTlsError(f"{RAY_USE_TLS} is 1 but {', '.join(missing)} is not set")
    return ClusterTlsFiles(
        ca_file=environ[RAY_TLS_CA_CERT],
        cert_file=environ[RAY_TLS_SERVER_CERT],
        key_file=environ[RAY_TLS_SERVER_KEY],
    )


def _context(purpose: ssl.Purpose, files: ClusterTlsFiles) -> ssl.SSLContext:
    context = ssl.SSLContext(
        ssl.PROTOCOL_TLS_SERVER if purpose is ssl.Purpose.CLIENT_AUTH else ssl.PROTOCOL_TLS_CLIENT
    )
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    try:
        context.load_verify_locations(cafile=files.ca_file)
        context.load_cert_chain(files.cert_file, files.key_file)
    except (OSError, ssl.SSLError) as error:
        raise LinkTlsError(
            f"the cluster's TLS files cannot be used (CA {files.ca_file}, certificate "
            f"{files.cert_file}, key {files.key_file}): {error}"
        ) from None
    return context


def link_server_context(files: ClusterTlsFiles) -> ssl.SSLContext:
    """The listening end's: serves this host's certificate, requires the peer's, from the
    cluster's CA only."""
    return _context(ssl.Purpose.CLIENT_AUTH, files)


def link_client_context(files: ClusterTlsFiles) -> ssl.SSLContext:
    """The connecting end's: presents this host's certificate and checks the listener's
    against the cluster's CA and the address it dialled."""
    context = _context(ssl.Purpose.SERVER_AUTH, files)
    context.check_hostname = True
    return context
