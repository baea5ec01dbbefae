"""The `[backup]` section's bounds and its relations to the data directory."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from coopnode.settings import Settings, SettingsError, load_settings

NOWHERE = Path("/nonexistent/node.toml")


def settings_with(environ: dict[str, str]) -> None:
    load_settings(environ=environ, base_file=NOWHERE)


def test_backups_are_off_by_default() -> None:
    settings = load_settings(environ={}, base_file=NOWHERE)
    assert (settings.backup.dir, settings.backup.interval_s) == ("", 0.0)


@pytest.mark.parametrize(
    ("environ", "complaint"),
    [
        ({"COOPNODE_BACKUP__DIR": '"relative/dir"'}, "absolute path"),
        ({"COOPNODE_BACKUP__INTERVAL_S": "60"}, "name backup.dir"),
        ({"COOPNODE_BACKUP__DIR": '"/srv/b"', "COOPNODE_BACKUP__INTERVAL_S": "0.5"}, "1 second"),
        ({"COOPNODE_BACKUP__DIR": '"/srv/b"', "COOPNODE_BACKUP__KEEP": "0"}, "keep"),
        (
            {
                "COOPNODE_BACKUP__DIR": '"/srv/node/backups"',
                "COOPNODE_NODE__DATA_DIR": '"/srv/node"',
            },
            "must be apart",
        ),
        (
            {"COOPNODE_BACKUP__DIR": '"/srv"', "COOPNODE_NODE__DATA_DIR": '"/srv/node"'},
            "must be apart",
        ),
    ],
)
def test_bad_backup_settings_stop_the_node_naming_the_key(
    environ: dict[str, str], complaint: str
) -> None:
    with pytest.raises(SettingsError, match=complaint):
        settings_with(environ)


def test_a_schedule_with_its_directory_loads() -> None:
    settings = load_settings(
        environ={
            "COOPNODE_BACKUP__DIR": '"/srv/backups"',
            "COOPNODE_BACKUP__INTERVAL_S": "3600",
            "COOPNODE_NODE__DATA_DIR": '"/srv/node"',
        },
        base_file=NOWHERE,
    )
    assert settings.backup.keep == 7


def test_backups_stay_apart_from_every_cluster_disk() -> None:
    cluster = {
        "node": {"data_dir": "/srv/front", "staff_token_file": "/etc/c/staff"},
        "wallet": {"shard_count": 1},
        "cluster": {
            "disks": [{"name": "a", "data_dir": "/srv/disk-a"}],
            "wallet_shard_disks": ["a"],
            "stores_disk": "a",
            "link_token_file": "/etc/c/link",
        },
        "payments": {"konbini_webhook_key_file": "/etc/c/konbini"},
        "verification": {"passcode_key_file": "/etc/c/passcode"},
        "identity": {"identity_key_file": "/etc/c/identity"},
    }
    apart = msgspec.convert({**cluster, "backup": {"dir": "/srv/backups"}}, Settings)
    assert apart.backup.dir == "/srv/backups"
    with pytest.raises(msgspec.ValidationError, match=r"cluster\.disks a"):
        msgspec.convert({**cluster, "backup": {"dir": "/srv/disk-a/backups"}}, Settings)
