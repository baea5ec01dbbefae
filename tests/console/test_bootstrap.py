"""The staff token's one use, from the command line: `coopnode admin add-staff
--bootstrap` creates the first administrator, who signs in with the authenticator's code;
the same command again is refused, and the staff token reaches no other staff route."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlparse

import pytest

from coopnode.domain import passcodes
from tests.nodeproc import REPO, TEST_CONFIG, NodeProcess, remove_tree, short_tmpdir

pytestmark = pytest.mark.slow

PASSWORD = "First-Administrator-2026!"


@pytest.fixture(scope="module")
def fresh_node() -> Iterator[NodeProcess]:
    """A node nobody has bootstrapped: no administrator, no machine token."""
    data_dir = short_tmpdir("cnboot")
    process = NodeProcess(data_dir, machine_token=False).start()
    try:
        yield process
    finally:
        process.stop()
        remove_tree(data_dir)


def add_staff(node: NodeProcess, *arguments: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "coopnode.node.cli", "--config", str(TEST_CONFIG)]
    command += ["admin", "add-staff", *arguments, "--node", node.url]
    return subprocess.run(
        command, cwd=REPO, input=PASSWORD + "\n", capture_output=True, text=True, timeout=120
    )


def test_the_first_administrator_is_made_once_with_the_staff_token(
    fresh_node: NodeProcess,
) -> None:
    token_file = str(fresh_node.staff_token_file)
    # The staff token is no key to the staff routes any more.
    status, refused = fresh_node.request("GET", "/api/v1/staff/audit", token=fresh_node.staff_token)
    assert (status, refused["reason"]) == (401, "unauthorized"), refused
    first = add_staff(fresh_node, "--bootstrap", "--staff-id", "root1", "--name", "管理 一郎",
                      "--token-file", token_file)  # fmt: skip
    assert first.returncode == 0, first.stderr
    uri = re.search(r"otpauth://\S+", first.stdout)
    assert uri is not None, first.stdout
    secret = parse_qs(urlparse(uri.group(0)).query)["secret"][0]
    again = add_staff(fresh_node, "--bootstrap", "--staff-id", "root2", "--name", "管理 二郎",
                      "--token-file", token_file)  # fmt: skip
    assert again.returncode == 1 and "409" in again.stderr, again.stderr
    # The administrator signs in with the password and the authenticator's code.
    body = {"staff_id": "root1", "password": PASSWORD}
    status, flow = fresh_node.request("POST", "/api/v1/staff/sign-in", body, token="")
    assert status == 200 and flow["methods"] == ["totp"], flow
    verify = {"flow_id": flow["flow_id"], "code": passcodes.totp_code(secret, time.time())}
    status, signed = fresh_node.request("POST", "/api/v1/staff/sign-in/verify", verify, token="")
    assert status == 200 and signed["subject"] == "root1", signed
