"""Cluster TLS from the settings: the development CA, the checks at start (a sentence
naming the setting and the file), Ray's variables, and `coopnode cluster env`."""

from __future__ import annotations

import datetime
import ipaddress
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from coopnode.node.cli import main
from coopnode.node.cluster_tls import cluster_tls_files, set_ray_tls_environment
from coopnode.node.dev_ca import DevCaError, HostFiles, make_dev_ca, parse_hosts
from coopnode.settings import (
    ClusterSettings,
    ClusterTlsSettings,
    Settings,
    SettingsError,
    WalletSettings,
    load_settings,
)
from tests.tls_certs import new_ca, new_key, server_certificate, write_certificate, write_key


@pytest.fixture
def hosts(tmp_path: Path) -> dict[str, HostFiles]:
    made = make_dev_ca(tmp_path / "ca", parse_hosts("a,b=10.0.0.6"))
    return {host.name: host for host in made}


def _settings(ca: Path, cert: Path, key: Path) -> Settings:
    tls = ClusterTlsSettings(ca_file=str(ca), cert_file=str(cert), key_file=str(key))
    return Settings(cluster=ClusterSettings(tls=tls))


def _of(host: HostFiles) -> Settings:
    return _settings(host.ca_file, host.cert_file, host.key_file)


def test_the_dev_ca_writes_a_certificate_per_host_that_serves_and_connects(
    hosts: dict[str, HostFiles],
) -> None:
    certificate = x509.load_pem_x509_certificate(hosts["b"].cert_file.read_bytes())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["b", "localhost"]
    assert names.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("10.0.0.6"),
        ipaddress.ip_address("127.0.0.1"),
    ]
    usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(usage) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    ca_dir = hosts["a"].ca_file.parent.parent
    for key in [hosts["a"].key_file, hosts["b"].key_file, ca_dir / "ca-key.pem"]:
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert cluster_tls_files(_of(hosts["a"])) is not None  # The node's own checks pass.


def test_the_dev_ca_adds_hosts_under_the_same_ca_and_never_overwrites_one(
    hosts: dict[str, HostFiles],
) -> None:
    directory = hosts["a"].ca_file.parent.parent
    ca_before = (directory / "ca.pem").read_bytes()
    (added,) = make_dev_ca(directory, parse_hosts("c"))
    assert added.ca_file.read_bytes() == ca_before
    assert cluster_tls_files(_settings(hosts["a"].ca_file, added.cert_file, added.key_file))
    with pytest.raises(DevCaError, match=r"already holds files for a"):
        make_dev_ca(directory, parse_hosts("a"))


@pytest.mark.parametrize(
    ("hosts_text", "complaint"),
    [("../up", "is not a host name"), ("a,a", "named twice"), ("a=not an address", "not a host")],
)
def test_the_dev_ca_refuses_host_lists_it_cannot_use(hosts_text: str, complaint: str) -> None:
    with pytest.raises(DevCaError, match=complaint):
        parse_hosts(hosts_text)


def test_a_missing_file_is_named_with_its_setting(
    hosts: dict[str, HostFiles], tmp_path: Path
) -> None:
    host = hosts["a"]
    missing = tmp_path / "missing.pem"
    with pytest.raises(SettingsError, match=r"cluster.tls.ca_file: cannot read .*missing.pem"):
        cluster_tls_files(_settings(missing, host.cert_file, host.key_file))
    with pytest.raises(SettingsError, match=r"cluster.tls.key_file: cannot read .*missing.pem"):
        cluster_tls_files(_settings(host.ca_file, host.cert_file, missing))


def test_a_certificate_of_another_ca_a_foreign_key_or_one_way_usage_is_refused(
    hosts: dict[str, HostFiles], tmp_path: Path
) -> None:
    host = hosts["a"]
    (stranger,) = make_dev_ca(tmp_path / "other", parse_hosts("x"))
    with pytest.raises(SettingsError, match=r"cluster.tls.cert_file: .* not signed by the CA"):
        cluster_tls_files(_settings(host.ca_file, stranger.cert_file, stranger.key_file))
    with pytest.raises(SettingsError, match=r"cluster.tls.key_file: .* is not the key"):
        cluster_tls_files(_settings(host.ca_file, host.cert_file, hosts["b"].key_file))
    # A web server's certificate (serverAuth only) cannot connect to the other hosts.
    ca, ca_key = new_ca("a co-op CA")
    key = new_key()
    ca_file = write_certificate(tmp_path / "web-ca.pem", ca)
    web = write_certificate(tmp_path / "web.pem", server_certificate(ca, ca_key, key))
    web_key = write_key(tmp_path / "web-key.pem", key)
    with pytest.raises(SettingsError, match=r"must allow both TLS server and client use"):
        cluster_tls_files(_settings(ca_file, web, web_key))
    expired = write_certificate(
        tmp_path / "old.pem", server_certificate(ca, ca_key, key, expired=True)
    )
    with pytest.raises(SettingsError, match=r"cluster.tls.cert_file: .* expired on"):
        cluster_tls_files(_settings(ca_file, expired, web_key))


def test_the_three_files_go_together_and_a_link_off_loopback_needs_them(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"name all three"):
        load_settings(environ={"COOPNODE_CLUSTER__TLS__CA_FILE": '"/etc/ca.pem"'})
    for host in ("0.0.0.0", "10.0.0.5", "node"):
        with pytest.raises(SettingsError, match=r"a wallet link between hosts needs cluster.tls"):
            load_settings(environ={"COOPNODE_WALLET__LINK_HOST": f'"{host}"'})
    tls = ClusterTlsSettings(ca_file="ca.pem", cert_file="c.pem", key_file="k.pem")
    Settings(wallet=WalletSettings(link_host="node"), cluster=ClusterSettings(tls=tls))
    Settings(wallet=WalletSettings(link_host="::1"))  # Loopback needs no TLS.


def test_rays_variables_are_set_from_the_settings_and_must_agree(
    hosts: dict[str, HostFiles],
) -> None:
    host = hosts["a"]
    environ: dict[str, str] = {}
    set_ray_tls_environment(_of(host), environ)
    assert environ == {
        "RAY_USE_TLS": "1",
        "RAY_TLS_CA_CERT": str(host.ca_file.resolve()),
        "RAY_TLS_SERVER_CERT": str(host.cert_file.resolve()),
        "RAY_TLS_SERVER_KEY": str(host.key_file.resolve()),
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    other = {"RAY_TLS_SERVER_CERT": str(hosts["b"].cert_file)}
    with pytest.raises(SettingsError, match=r"RAY_TLS_SERVER_CERT is .* but cluster.tls gives"):
        set_ray_tls_environment(_of(host), other)
    with pytest.raises(SettingsError, match=r"RAY_USE_TLS is set but cluster.tls names no files"):
        set_ray_tls_environment(Settings(), {"RAY_USE_TLS": "1"})
    untouched: dict[str, str] = {}
    assert set_ray_tls_environment(Settings(), untouched) is None and untouched == {}


def _config(tmp_path: Path, host: HostFiles | None) -> Path:
    config = tmp_path / "host.toml"
    text = ""
    if host is not None:
        text += (
            f'[cluster.tls]\nca_file = "{host.ca_file}"\ncert_file = "{host.cert_file}"\n'
            f'key_file = "{host.key_file}"\n'
        )
    config.write_text(text)
    return config


def test_cluster_env_prints_the_ray_start_environment(
    hosts: dict[str, HostFiles], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(_config(tmp_path, hosts["a"])), "cluster", "env"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "export RAY_USE_TLS=1"
    assert f"export RAY_TLS_SERVER_KEY={hosts['a'].key_file.resolve()}" in lines
    assert main(["--config", str(_config(tmp_path, None)), "cluster", "env"]) == 2
    assert "cluster.tls names no files" in capsys.readouterr().err


def test_serve_stops_before_ray_on_a_bad_cluster_file(
    hosts: dict[str, HostFiles],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # `serve` sets Ray's loopback switch in this process's environment: undone afterwards.
    monkeypatch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    host = hosts["a"]
    broken = HostFiles(
        name="a", ca_file=host.ca_file, cert_file=tmp_path / "gone.pem", key_file=host.key_file
    )
    config = _config(tmp_path, broken)
    data_dir = tmp_path / "data"
    assert main(["--config", str(config), "serve", "--data-dir", str(data_dir)]) == 2
    assert "cluster.tls.cert_file: cannot read" in capsys.readouterr().err
    assert not (data_dir / "ray").exists()


def _signed(
    subject: str, issuer: x509.Certificate | None, issuer_key: Any, key: Any, *, ca: bool
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name if issuer is None else issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=1 if ca else None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def test_a_host_certificate_signed_by_an_intermediate_chains_to_the_ca(tmp_path: Path) -> None:
    """The certificate file holds the host's certificate, then the intermediate."""
    root_key, middle_key, host_key = new_key(), new_key(), new_key()
    root = _signed("cluster root", None, root_key, root_key, ca=True)
    middle = _signed("cluster intermediate", root, root_key, middle_key, ca=True)
    host = _signed("host a", middle, middle_key, host_key, ca=False)
    ca_file = write_certificate(tmp_path / "root.pem", root)
    chain = tmp_path / "chain.pem"
    chain.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (host, middle)))
    key_file = write_key(tmp_path / "host-key.pem", host_key)
    assert cluster_tls_files(_settings(ca_file, chain, key_file)) is not None
    alone = write_certificate(tmp_path / "alone.pem", host)  # Without its intermediate.
    with pytest.raises(SettingsError, match=r"not signed by the CA"):
        cluster_tls_files(_settings(ca_file, alone, key_file))
