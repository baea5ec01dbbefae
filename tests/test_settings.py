"""Settings: layers, and refusals that name the key."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
import pytest

from coopnode.settings import Environment, Settings, SettingsError, load_settings

REPO = Path(__file__).resolve().parent.parent
NOWHERE = Path("/nonexistent/node.toml")


def test_config_node_toml_states_the_embedded_defaults() -> None:
    path = REPO / "config" / "node.toml"
    assert path.exists()
    from_file = load_settings(environ={}, base_file=path)
    assert msgspec.to_builtins(from_file) == msgspec.to_builtins(Settings())


def test_layers_apply_in_order_file_then_config_then_environment(tmp_path: Path) -> None:
    base = tmp_path / "base.toml"
    base.write_text("[wallet]\nshard_count = 3\n[node]\nport = 9000\n")
    over = tmp_path / "over.toml"
    over.write_text("[wallet]\nshard_count = 5\n")
    settings = load_settings(over, {"COOPNODE_NODE__PORT": "9100"}, base_file=base)
    assert settings.wallet.shard_count == 5
    assert settings.node.port == 9100


def test_environment_values_are_toml_so_types_are_checked() -> None:
    env = {"COOPNODE_NODE__ENVIRONMENT": "production", "COOPNODE_WALLET__FSYNC": "true"}
    settings = load_settings(environ=env, base_file=NOWHERE)
    assert settings.node.environment is Environment.PRODUCTION
    assert settings.wallet.fsync is True


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"COOPNODE_WALLET__SHARDS": "4"}, "shards"),
        ({"COOPNODE_WALLET__SHARD_COUNT": "0"}, "$.wallet.shard_count"),
        ({"COOPNODE_WALLET__SHARD_COUNT": "two"}, "$.wallet.shard_count"),
        ({"COOPNODE_NODE__PORT": "70000"}, "$.node.port"),
        ({"COOPNODE_LOG__LEVEL": "loud"}, "$.log.level"),
        ({"COOPNODE_COOPS__DEMO__CHARGE_MIN_YEN": "-1"}, "charge_min_yen"),
        ({"COOPNODE_COOPS__DEMO__TIMEZONE": "Mars/Olympus"}, "timezone"),
        ({"COOPNODE_PORT": "1"}, "COOPNODE_PORT"),
    ],
)
def test_a_bad_key_or_value_is_refused_with_its_name(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings(environ=env, base_file=NOWHERE)
    assert named in str(raised.value)


def test_a_spend_order_missing_a_till_kind_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "coop.toml"
    config.write_text('[coops.demo.spend_orders]\ncafeteria = ["meal", "base"]\n')
    with pytest.raises(SettingsError, match="no order for till kind 'shop'"):
        load_settings(config, {}, base_file=NOWHERE)


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    config = tmp_path / "broken.toml"
    config.write_text("[wallet\n")
    with pytest.raises(SettingsError, match=r"broken\.toml"):
        load_settings(config, {}, base_file=NOWHERE)


@pytest.mark.parametrize(
    ("kiosks", "message"),
    [
        ('[{name="k1", device_path="usb", key_path="/k", fixed_amount_yen=300}, '
         '{name="k1", device_path="usb", key_path="/k2", fixed_amount_yen=300}]',
         "a name of its own"),
        ('[{name="demo", device_path="usb", key_path="/k", fixed_amount_yen=300}]',
         "the demo till's"),
        ('[{name="Kiosk 1", device_path="usb", key_path="/k", fixed_amount_yen=300}]',
         "name"),
        ('[{name="k1", device_path="usb", key_path="/k", fixed_amount_yen=0}]',
         "fixed_amount_yen"),
    ],
)  # fmt: skip
def test_kiosks_are_named_once_and_sell_a_real_amount(kiosks: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(environ={"COOPNODE_TILL__KIOSKS": kiosks}, base_file=NOWHERE)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        (
            {"COOPNODE_WALLET__CALL_TIMEOUT_S": "20"},
            "wallet.call_timeout_s (20.0 s) must be below http.request_timeout_s",
        ),
        (
            {"COOPNODE_PAYMENTS__CREDIT_CLAIM_S": "60"},
            "payments.credit_claim_s (60.0 s) must be above a wallet call with every retry",
        ),
    ],
)
def test_relations_between_bounds_are_checked_when_settings_load(
    env: dict[str, str], named: str
) -> None:
    with pytest.raises(SettingsError, match=re.escape(named)):
        load_settings(environ=env, base_file=NOWHERE)
