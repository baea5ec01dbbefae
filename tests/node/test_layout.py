"""The data directory's wallet layout is checked before Ray starts."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from coopnode.actors.wallet.store import LAYOUT_VERSION
from coopnode.node.service import Layout, check_layout
from coopnode.settings import NodeSettings, Settings, SettingsError, WalletSettings


def settings_in(data_dir: Path, shard_count: int = 2) -> Settings:
    return Settings(
        node=NodeSettings(data_dir=str(data_dir)),
        wallet=WalletSettings(shard_count=shard_count),
    )


def test_a_new_data_directory_records_its_shard_count_and_layout(tmp_path: Path) -> None:
    check_layout(settings_in(tmp_path))
    found = msgspec.json.decode((tmp_path / "wallet" / "layout.json").read_bytes(), type=Layout)
    assert found == Layout(shard_count=2, wallet_layout=LAYOUT_VERSION)
    check_layout(settings_in(tmp_path))  # The same settings start again.


def test_files_from_before_the_layout_field_are_refused_with_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "wallet").mkdir()
    (tmp_path / "wallet" / "layout.json").write_text('{"shard_count": 2}')
    with pytest.raises(SettingsError, match=r"layout 1, written by an older CoopNode.*aside"):
        check_layout(settings_in(tmp_path))


def test_the_shard_count_cannot_change(tmp_path: Path) -> None:
    check_layout(settings_in(tmp_path))
    with pytest.raises(SettingsError, match=r"shard_count is 1 but .* holds 2 shards"):
        check_layout(settings_in(tmp_path, shard_count=1))
