"""The wallet's data plane with mutual TLS (cluster TLS), on a real loopback socket.

The certificates are the development CA's (`coopnode cluster dev-ca`): one for the shard's
host and one for the front's, and a second CA that signed neither. A peer refused by
either end has sent no batch that the shard saw.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from coopnode.actors.kernel.link_tls import (
    ClusterTlsFiles,
    LinkTlsError,
    files_from_ray_environment,
    link_client_context,
    link_server_context,
)
from coopnode.actors.wallet.link import ShardLink, serve_link
from coopnode.node.dev_ca import HostFiles, make_dev_ca, parse_hosts
from tests.actors.test_shard_link import TOKEN, Shard, op

# Patience for an answer or a refusal on loopback, not a measure of either.
PATIENCE_S = 10.0


def _files(host: HostFiles) -> ClusterTlsFiles:
    return ClusterTlsFiles(
        ca_file=str(host.ca_file), cert_file=str(host.cert_file), key_file=str(host.key_file)
    )


@pytest.fixture
def cluster(tmp_path: Path) -> dict[str, ClusterTlsFiles]:
    hosts = make_dev_ca(tmp_path / "ca", parse_hosts("shard-host,front-host"))
    strangers = make_dev_ca(tmp_path / "other-ca", parse_hosts("intruder"))
    return {host.name: _files(host) for host in [*hosts, *strangers]}


@asynccontextmanager
async def tls_shard(
    shard: TlsShard, files: ClusterTlsFiles, bind: str = "127.0.0.1"
) -> AsyncIterator[str]:
    """A stand-in shard serving mutual TLS; `shard.links_ended` is set when a link ends."""
    context = link_server_context(files)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await serve_link(
            reader,
            writer,
            token=TOKEN,
            submit=shard.submit,
            frame_max_bytes=65_536,
            tls=context,
            handshake_timeout_s=PATIENCE_S,
        )
        shard.links_ended.set()

    server = await asyncio.start_server(handle, bind, 0)
    host, port = server.sockets[0].getsockname()[:2]
    try:
        yield f"{host}:{port}"
    finally:
        server.close()


class TlsShard(Shard):
    def __init__(self) -> None:
        super().__init__()
        self.links_ended = asyncio.Event()


def _link(endpoint: str, tls: ssl.SSLContext | None) -> ShardLink:
    async def lookup() -> str:
        return endpoint

    return ShardLink(lookup, TOKEN, 65_536, tls)


async def test_a_mutual_tls_link_carries_pipelined_batches(
    cluster: dict[str, ClusterTlsFiles],
) -> None:
    shard = TlsShard()
    async with tls_shard(shard, cluster["shard-host"]) as endpoint:
        link = _link(endpoint, link_client_context(cluster["front-host"]))
        first, second = await asyncio.wait_for(
            asyncio.gather(link.call([op(1)]), link.call([op(2)])), PATIENCE_S
        )
        assert [r.message for r in first.results] == ["202600000001"]  # type: ignore[union-attr]
        assert [r.message for r in second.results] == ["202600000002"]  # type: ignore[union-attr]
        assert shard.seen == [1, 2]  # Both in flight at once, over one TLS connection.
        await link.close()


def _trusting_only(files: ClusterTlsFiles) -> ssl.SSLContext:
    """A client that checks the shard as a front would, but presents no certificate."""
    context = ssl.create_default_context(cafile=files.ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


@pytest.mark.parametrize(
    ("client", "reason"),
    [
        ("no certificate", "PEER_DID_NOT_RETURN_A_CERTIFICATE"),
        ("another CA's certificate", "CERTIFICATE_VERIFY_FAILED"),
        ("plain", "WRONG_VERSION_NUMBER"),  # The hello, where a TLS handshake should be.
    ],
)
async def test_a_front_without_a_valid_certificate_is_refused_and_changes_nothing(
    cluster: dict[str, ClusterTlsFiles], client: str, reason: str
) -> None:
    shard = TlsShard()
    contexts: dict[str, ssl.SSLContext | None] = {
        "no certificate": _trusting_only(cluster["shard-host"]),
        # The intruder trusts the cluster's CA (public), but its own was signed elsewhere.
        "another CA's certificate": _intruder(cluster),
        "plain": None,
    }
    async with tls_shard(shard, cluster["shard-host"]) as endpoint:
        link = _link(endpoint, contexts[client])
        with capture_logs() as logs:
            with pytest.raises(ConnectionError):
                await asyncio.wait_for(link.call([op(2)]), PATIENCE_S)
            # The front may hear the refusal before the shard has logged it: wait for
            # the shard's side of the link to end.
            await asyncio.wait_for(shard.links_ended.wait(), PATIENCE_S)
        assert shard.seen == []
        await link.close()
    refusals = [entry for entry in logs if entry["event"].startswith("wallet link refused")]
    assert [(entry["event"], entry["error"]) for entry in refusals] == [
        ("wallet link refused: TLS handshake failed", reason)
    ]


def _intruder(cluster: dict[str, ClusterTlsFiles]) -> ssl.SSLContext:
    intruder = cluster["intruder"]
    files = ClusterTlsFiles(
        ca_file=cluster["shard-host"].ca_file,
        cert_file=intruder.cert_file,
        key_file=intruder.key_file,
    )
    return link_client_context(files)


async def test_a_front_refuses_a_shard_whose_certificate_another_ca_signed(
    cluster: dict[str, ClusterTlsFiles],
) -> None:
    shard = TlsShard()
    impostor = cluster["intruder"]
    # The impostor would accept the front (it trusts the cluster's CA), but serves its own.
    serving = ClusterTlsFiles(
        ca_file=cluster["front-host"].ca_file,
        cert_file=impostor.cert_file,
        key_file=impostor.key_file,
    )
    async with tls_shard(shard, serving) as endpoint:
        link = _link(endpoint, link_client_context(cluster["front-host"]))
        with pytest.raises(ConnectionError, match=r"TLS with the wallet shard at .* failed"):
            await asyncio.wait_for(link.call([op(2)]), PATIENCE_S)
        assert shard.seen == []
        await link.close()


async def test_a_front_refuses_a_shard_at_an_address_its_certificate_does_not_name(
    cluster: dict[str, ClusterTlsFiles],
) -> None:
    """The dev CA's certificates name 127.0.0.1 and localhost; 127.0.0.2 is the loopback
    interface too, but not a name the shard's certificate holds."""
    shard = TlsShard()
    async with tls_shard(shard, cluster["shard-host"], bind="127.0.0.2") as endpoint:
        link = _link(endpoint, link_client_context(cluster["front-host"]))
        with pytest.raises(ConnectionError, match=r"TLS with the wallet shard at .* failed"):
            await asyncio.wait_for(link.call([op(2)]), PATIENCE_S)
        assert shard.seen == []
        await link.close()


def test_an_actor_finds_its_hosts_files_in_rays_variables(
    cluster: dict[str, ClusterTlsFiles],
) -> None:
    files = cluster["shard-host"]
    environ = {
        "RAY_USE_TLS": "1",
        "RAY_TLS_CA_CERT": files.ca_file,
        "RAY_TLS_SERVER_CERT": files.cert_file,
        "RAY_TLS_SERVER_KEY": files.key_file,
    }
    assert files_from_ray_environment(environ) == files
    with pytest.raises(LinkTlsError, match="this host's Ray runs without it"):
        files_from_ray_environment({})
    with pytest.raises(LinkTlsError, match="RAY_TLS_SERVER_KEY is not set"):
        files_from_ray_environment({**environ, "RAY_TLS_SERVER_KEY": ""})
