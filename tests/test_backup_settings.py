"""The `[backup]` section's bounds and its relations to the data directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from coopnode.settings import SettingsError, load_settings

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
