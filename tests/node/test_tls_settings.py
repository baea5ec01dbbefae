"""TLS settings are checked at start with a sentence naming what is wrong, on both sides."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from cryptography.hazmat.primitives import serialization
from nacl.signing import SigningKey

from coopnode.domain.money import TillKind
from coopnode.node.cli import main
from coopnode.node.tls import server_tls
from coopnode.reader.till_key import TillKeyFile, write_key_file
from coopnode.reader.till_tls import TillTlsError, node_ssl
from coopnode.settings import NodeSettings, SettingsError, TillSettings, load_settings
from tests.nodeproc import NodeProcess, remove_tree, short_tmpdir
from tests.tls_certs import (
    Pki,
    make_pki,
    new_ca,
    new_key,
    server_certificate,
    write_certificate,
    write_key,
)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path)


def _node(cert: Path, key: Path) -> NodeSettings:
    return NodeSettings(tls_cert_file=str(cert), tls_key_file=str(key))


def test_a_matching_certificate_and_key_give_a_context_and_the_pin(pki: Pki) -> None:
    tls = server_tls(_node(pki.cert_file, pki.key_file))
    assert tls is not None and tls.cert_sha256 == pki.cert_sha256
    assert server_tls(NodeSettings()) is None


def test_a_missing_file_is_named(pki: Pki, tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"node.tls_cert_file: cannot read .*missing.pem"):
        server_tls(_node(tmp_path / "missing.pem", pki.key_file))
    with pytest.raises(SettingsError, match=r"node.tls_key_file: cannot read .*missing.pem"):
        server_tls(_node(pki.cert_file, tmp_path / "missing.pem"))


def test_a_key_that_is_not_the_certificates_is_refused(pki: Pki, tmp_path: Path) -> None:
    other_key = write_key(tmp_path / "other-key.pem", new_key())
    with pytest.raises(SettingsError, match="is not the key of the certificate"):
        server_tls(_node(pki.cert_file, other_key))


def test_files_that_hold_no_pem_are_refused(pki: Pki, tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(SettingsError, match="holds no PEM certificate"):
        server_tls(_node(junk, pki.key_file))
    with pytest.raises(SettingsError, match="holds no unencrypted PEM private key"):
        server_tls(_node(pki.cert_file, junk))


def test_an_encrypted_key_is_refused(pki: Pki, tmp_path: Path) -> None:
    key = serialization.load_pem_private_key(pki.key_file.read_bytes(), password=None)
    locked = tmp_path / "locked.pem"
    locked.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        )
    )
    with pytest.raises(SettingsError, match="holds no unencrypted PEM private key"):
        server_tls(_node(pki.cert_file, locked))


def test_an_expired_certificate_is_refused(tmp_path: Path) -> None:
    ca, ca_key = new_ca("expired test CA")
    key = new_key()
    cert = write_certificate(
        tmp_path / "old.pem", server_certificate(ca, ca_key, key, expired=True)
    )
    with pytest.raises(SettingsError, match="expired on"):
        server_tls(_node(cert, write_key(tmp_path / "old-key.pem", key)))


def test_a_certificate_without_its_key_is_refused_when_the_settings_load(tmp_path: Path) -> None:
    environ = {"COOPNODE_NODE__TLS_CERT_FILE": '"/etc/coopnode/node.pem"'}
    with pytest.raises(SettingsError, match=r"tls_cert_file and node\.tls_key_file go together"):
        load_settings(environ=environ, base_file=tmp_path / "none.toml")


def test_a_trusted_proxy_must_be_an_address(tmp_path: Path) -> None:
    environ = {"COOPNODE_NODE__TRUSTED_PROXIES": '["nginx.local"]'}
    with pytest.raises(SettingsError, match="is not an address or network"):
        load_settings(environ=environ, base_file=tmp_path / "none.toml")


def test_a_node_with_a_key_that_is_not_its_certificates_does_not_start(
    pki: Pki, tmp_path: Path
) -> None:
    other_key = write_key(tmp_path / "other-key.pem", new_key())
    env = {
        "COOPNODE_NODE__TLS_CERT_FILE": f'"{pki.cert_file}"',
        "COOPNODE_NODE__TLS_KEY_FILE": f'"{other_key}"',
    }
    data_dir = short_tmpdir("cntlsbad")
    node = NodeProcess(data_dir, env=env)
    try:
        with pytest.raises(RuntimeError, match="is not the key of the certificate"):
            node.start()
        assert node.process is not None and node.process.wait(timeout=30) == 2
        # Refused before Ray started.
        assert not (data_dir / "ray").exists()
    finally:
        node.stop()
        remove_tree(data_dir)


# The till's side --------------------------------------------------------------------


def test_a_ca_file_or_a_pin_on_a_plain_http_url_is_refused(pki: Pki) -> None:
    for settings in (
        TillSettings(agent_tls_ca_file=str(pki.ca_file)),
        TillSettings(agent_tls_pin_sha256=pki.cert_sha256),
    ):
        with pytest.raises(TillTlsError, match="not https://"):
            node_ssl("http://192.0.2.1:8080", settings)
    assert node_ssl("http://127.0.0.1:8080", TillSettings()) is True


def test_an_unreadable_ca_file_is_named(tmp_path: Path) -> None:
    settings = TillSettings(agent_tls_ca_file=str(tmp_path / "missing.pem"))
    with pytest.raises(TillTlsError, match=r"till.agent_tls_ca_file: .*missing.pem"):
        node_ssl("https://node.example", settings)


def test_a_ca_file_and_a_pin_together_are_refused(pki: Pki) -> None:
    fields = {"agent_tls_ca_file": str(pki.ca_file), "agent_tls_pin_sha256": pki.cert_sha256}
    with pytest.raises(msgspec.ValidationError, match="not both"):
        msgspec.convert(fields, TillSettings)


@pytest.mark.parametrize("pin", ["ab" * 31, "zz" * 32, "ab:" * 31 + "a"])
def test_a_pin_that_is_no_sha256_is_refused(pin: str) -> None:
    with pytest.raises(msgspec.ValidationError, match="agent_tls_pin_sha256"):
        msgspec.convert({"agent_tls_pin_sha256": pin}, TillSettings)


def test_the_till_command_refuses_a_ca_file_for_a_plain_http_node(
    pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key_path = tmp_path / "till.key"
    write_key_file(
        key_path,
        TillKeyFile(till_id="till-0001", store="s", kind=TillKind.SHOP,
                    signing_key_hex=bytes(SigningKey.generate()).hex()),
    )  # fmt: skip
    common = ["till", "run", "--node", "http://192.0.2.1:8080", "--key", str(key_path)]
    assert main([*common, "--ca-file", str(pki.ca_file)]) == 2
    assert "not https://" in capsys.readouterr().err
    assert main([*common, "--pin-sha256", "00"]) == 2
    assert "agent_tls_pin_sha256" in capsys.readouterr().err
