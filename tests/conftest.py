"""Fixtures shared by the whole suite: a real node process, started once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.nodeproc import NodeProcess, remove_tree, short_tmpdir


@pytest.fixture(scope="session")
def node() -> Iterator[NodeProcess]:
    """One node for the tests that only need a running node (demo co-op opened)."""
    data_dir = short_tmpdir("cnode")
    process = NodeProcess(data_dir, demo=True).start()
    try:
        yield process
    finally:
        process.stop()
        remove_tree(data_dir)
