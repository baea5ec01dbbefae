"""The embedded local Ray listens on loopback only (issue 11, item 8).

Ray on Linux would listen on the machine's network address, or on every address, so that
other hosts could join; a node started without `--ray-address` must keep its GCS, raylet,
agents and actors to 127.0.0.1 (`coopnode.node.local_ray`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.nodeproc import NodeProcess, remove_tree, short_tmpdir
from tests.proc_sockets import bound_sockets, process_tree


@pytest.fixture
def node() -> Iterator[NodeProcess]:
    data_dir = short_tmpdir()
    node = NodeProcess(data_dir).start()
    try:
        yield node
    finally:
        node.stop()
        remove_tree(data_dir)


def _program(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    except OSError:
        return ""


def test_every_socket_the_local_ray_listens_on_is_loopback(node: NodeProcess) -> None:
    pids = process_tree(node.pid)
    listening = bound_sockets(pids, "tcp")
    programs = {_program(pid) for _, _, pid in listening}
    # The test sees Ray itself, not only the front: its GCS and raylet listen too.
    assert any(program.endswith("gcs_server") for program in programs), programs
    assert any(program.endswith("raylet") for program in programs), programs
    exposed = [
        (address, port, _program(pid)) for address, port, pid in listening if address != "127.0.0.1"
    ]
    assert exposed == []
    assert bound_sockets(pids, "udp") == []
