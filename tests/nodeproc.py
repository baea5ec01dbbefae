"""The suite's way to run a real node: the package's NodeProcess with the test settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from coopnode.loadtest.node_process import NodeProcess as _NodeProcess
from coopnode.loadtest.node_process import remove_tree, short_tmpdir

REPO = Path(__file__).resolve().parent.parent
TEST_CONFIG = REPO / "config" / "test.toml"

__all__ = ["REPO", "TEST_CONFIG", "NodeProcess", "remove_tree", "short_tmpdir"]


class NodeProcess(_NodeProcess):
    """A node started from the repository with config/test.toml laid over the defaults."""

    def __init__(self, data_dir: Path, **options: Any) -> None:
        options.setdefault("config", TEST_CONFIG)
        options.setdefault("cwd", REPO)
        super().__init__(data_dir, **options)
