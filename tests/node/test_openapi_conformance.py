"""Schemathesis over the node's own OpenAPI document: every operation, as nobody, as the
harness's API token (every scope) and as a member's OAuth bearer token, against a real
node.

Each run generates a bounded number of requests per operation from a fixed seed (the
coverage, fuzzing and stateful phases) and checks every answer: no 5xx, and no status,
content type or body that the document does not describe. The node is the test's own,
since the fuzzer enrols, suspends and rate-limits whatever it finds.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from coopnode.domain.staff import Permission
from tests.identity.nodeclient import (
    Member,
    authorize,
    enrol,
    redeem_code,
    session,
    wallet_session,
)
from tests.nodeproc import NodeProcess, remove_tree, short_tmpdir

pytestmark = pytest.mark.slow

SCHEMATHESIS = Path(sys.executable).with_name("st")
# The checks that say "the document describes the answer"; schemathesis's others judge
# what the API accepts, which the document's bounds already state.
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)
# Requests per operation and phase: enough to reach every bound and every refusal of the
# 76 operations, few enough that the three runs take a minute or two.
EXAMPLES_PER_OPERATION = 10
SEED = 20261207
# Patience for one answer on a loaded machine (the node bounds its own time at 10 s).
REQUEST_PATIENCE_S = 60


@pytest.fixture(scope="module")
def fuzzed_node() -> Iterator[NodeProcess]:
    data_dir = short_tmpdir("cnfuzz")
    process = NodeProcess(data_dir).start()
    try:
        yield process
    finally:
        process.stop()
        remove_tree(data_dir)


def run_schemathesis(node: NodeProcess, report: Path, headers: list[str]) -> dict[str, Any]:
    command = [
        str(SCHEMATHESIS),
        "run",
        f"{node.url}/api/openapi.json",
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        str(EXAMPLES_PER_OPERATION),
        "--seed",
        str(SEED),
        # One worker: with two, hypothesis describes filters by parsing their source
        # (`ast`) in two threads at once, which CPython 3.11 can fail ("AST constructor
        # recursion depth mismatch"), a runtime error of the tool, not of the node.
        "--workers",
        "1",
        "--request-timeout",
        str(REQUEST_PATIENCE_S),
        "--report",
        "json",
        "--report-json-path",
        str(report),
    ]
    for header in headers:
        command += ["-H", header]
    finished = subprocess.run(command, capture_output=True, text=True, check=False)
    assert report.exists(), finished.stdout[-4000:] + finished.stderr[-4000:]
    result: dict[str, Any] = json.loads(report.read_text())
    print(
        f"schemathesis ({', '.join(h.split(':')[0] for h in headers) or 'no credentials'}):",
        result["operations"],
        result["test_cases"],
    )
    assert finished.returncode == 0, finished.stdout[-8000:]
    return result


def assert_conforms(result: dict[str, Any]) -> None:
    operations, cases = result["operations"], result["test_cases"]
    assert result["complete"] and result["failures"] == [] and result["errors"] == []
    assert operations["tested"] == operations["total"] >= 70, operations
    assert cases["with_failures"] == 0 and cases["errored"] == 0, cases
    # Every operation was asked at least once per phase that ran.
    assert cases["generated"] >= operations["total"], cases


@pytest.fixture(scope="module")
def fuzzing_token(fuzzed_node: NodeProcess) -> str:
    """A token with every scope but the tokens': the fuzzer lists tokens and follows the
    list to their revocation, and would revoke the harness's own (the later tests' key)."""
    scopes = [permission.value for permission in Permission]
    scopes.remove(Permission.TOKENS_MANAGE.value)
    body = {"name": "fuzzer", "scopes": scopes}
    status, made = fuzzed_node.request("POST", "/api/v1/staff/tokens", body)
    assert status == 201, made
    return str(made["token"])


@pytest.mark.parametrize("who", ["nobody", "staff"])
def test_every_operation_answers_as_documented(
    fuzzed_node: NodeProcess, fuzzing_token: str, tmp_path: Path, who: str
) -> None:
    headers = [f"Authorization: Bearer {fuzzing_token}"] if who == "staff" else []
    assert_conforms(run_schemathesis(fuzzed_node, tmp_path / "report.json", headers))


async def test_every_operation_answers_as_documented_to_a_member(
    fuzzed_node: NodeProcess, tmp_path: Path
) -> None:
    """With a member's bearer token (wallet:read and wallet:pay), the member's own wallet
    routes are reached too, not only refused."""
    member = Member("fuzzed")
    async with session() as client:
        await enrol(client, fuzzed_node, member)
        signed_in = await wallet_session(client, fuzzed_node, member)
        code, verifier = await authorize(
            client, fuzzed_node, signed_in["csrf_token"], "wallet:read wallet:pay"
        )
        status, token = await redeem_code(client, fuzzed_node, code, verifier)
        assert status == 200, token
    headers = [f"Authorization: Bearer {token['access_token']}"]
    assert_conforms(run_schemathesis(fuzzed_node, tmp_path / "report.json", headers))
