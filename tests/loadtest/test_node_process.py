"""What a benchmark says about the node it starts is what the node resolves, not the defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from coopnode.loadtest.node_process import NodeProcess, durability
from coopnode.settings import Settings, WalletSettings

REPO = Path(__file__).resolve().parents[2]


def test_fsync_turned_off_in_the_shell_is_what_the_node_runs_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The benchmark's own environment reaches the node; the summary must say so.
    monkeypatch.setenv("COOPNODE_WALLET__FSYNC", "false")
    settings = NodeProcess(tmp_path / "node", cwd=REPO).effective_settings()
    assert settings.wallet.fsync is False
    assert durability(settings) == "fsync off (commits not flushed)"


def test_the_node_s_own_settings_win_over_the_shell_s_and_its_flags_are_applied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COOPNODE_WALLET__FSYNC", "false")
    node = NodeProcess(tmp_path / "node", cwd=REPO, env={"COOPNODE_WALLET__FSYNC": "true"})
    settings = node.effective_settings()
    assert settings.wallet.fsync is True
    assert settings.node.data_dir == str(tmp_path / "node")
    assert settings.node.port == 0


def test_a_bad_setting_is_reported_with_the_node_s_message(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "node", cwd=REPO, env={"COOPNODE_WALLET__FSYNC": "7"})
    with pytest.raises(RuntimeError, match="fsync"):
        node.effective_settings()


def test_durability_names_fsync_on_only_when_it_is_on() -> None:
    assert durability(Settings()) == "fsync on"
    off = Settings(wallet=WalletSettings(fsync=False))
    assert durability(off) == "fsync off (commits not flushed)"
