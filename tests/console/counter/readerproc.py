"""The counter's reader as the clerk's PC runs it: `coopnode counter-reader` in its own
process, next to a FeliCa card emulated over nfcpy's UDP transport."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.nodeproc import NodeProcess
from tests.reader.test_card_reader import emulated_card, free_udp_port

COOPNODE = str(Path(sys.executable).parent / "coopnode")
READER_STOP_S = 15.0

__all__ = ["counter_reader", "emulated_card", "free_udp_port"]


@contextmanager
def counter_reader(node: NodeProcess, name: str, port: int) -> Iterator[subprocess.Popen[str]]:
    """Run the counter reader against `node` until it says it is polling the reader."""
    command = [
        COOPNODE, "counter-reader", "--name", name, "--reader", f"udp:127.0.0.1:{port}",
        "--node", node.url, "--token-file", str(node.machine_token_file),
    ]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    try:
        assert process.stdout is not None
        seen = []
        for line in process.stdout:
            seen.append(line)
            if "counter reader" in line and "ready" in line:
                break
        else:
            raise AssertionError(f"the counter reader ended: {''.join(seen)}")
        yield process
    finally:
        process.terminate()
        try:
            process.wait(READER_STOP_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
