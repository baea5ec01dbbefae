"""A backup of a node on a real three-host Ray cluster (on this machine), restored into
a node on one host.

Each host keeps its stores under its own data directory (host a: wallet shard 0 and the
registry, identity and payments stores; host b: wallet shard 1), so each store can only
be copied by its own actor, on its host. Staff ask one front; the other front answers
after the same backup, since there is one backup actor in the cluster. The backup,
restored into one data directory, serves every payment the cluster booked, once, with
balanced books.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from coopnode.actors.backup.manifest import read_manifest
from tests.cluster.harness import PATIENCE_S, Cluster, wait_healthy
from tests.node.test_backup import coopnode
from tests.node.test_faults import history_keys
from tests.nodeproc import NodeProcess, remove_tree, short_tmpdir

pytestmark = pytest.mark.slow

MEMBERS = [f"2026440{index:05d}" for index in range(8)]
OPENING_BASE_YEN = 50_000


def test_a_cluster_backup_is_copied_on_each_stores_host_and_restores_on_one() -> None:
    root = short_tmpdir("cnclbk")
    cluster = Cluster(root)
    backups = root / "backups"
    for front in cluster.fronts.values():
        front.env["COOPNODE_BACKUP__DIR"] = json.dumps(str(backups))
    restored: NodeProcess | None = None
    try:
        cluster.start()
        a, b = cluster.fronts["a"], cluster.fronts["b"]
        wait_healthy(a)
        answers = book_payments(a, b)
        balances = {member: balance(a, member) for member in MEMBERS}
        # Staff ask front B; front A knows the backup: one backup actor for the cluster.
        status, begun = b.request("POST", "/api/v1/admin/backups", {"dir": "cluster"})
        assert status == 202, begun
        found = wait_complete(a, begun["backup_id"])
        manifest = read_manifest(backups / "cluster")
        assert found["manifest"]["backup_id"] == manifest.backup_id
        stores = {copy.store: copy for copy in manifest.stores}
        assert set(stores) == {
            "payments",
            "identity",
            "registry",
            "wallet/shard-000",
            "wallet/shard-001",
        }
        # The cluster's identity keys are files the settings name outside the data
        # directories: named in the manifest, not copied.
        assert len(stores["identity"].outside) == 2
        assert all("/keys/" not in file.path for file in stores["identity"].files)
        target = root / "restored"
        result = coopnode("admin", "restore", str(backups / "cluster"), str(target))
        assert result.returncode == 0, result.stderr
        keys = {
            "COOPNODE_VERIFICATION__PASSCODE_KEY_FILE": json.dumps(
                str(cluster.secrets / "passcode-key")
            ),
            "COOPNODE_IDENTITY__IDENTITY_KEY_FILE": json.dumps(
                str(cluster.secrets / "identity-key")
            ),
        }
        # The restored node has the cluster's staff and machine tokens (their digests are in
        # the restored identity store): the harness keeps using the cluster's token file.
        staff_token = cluster.secrets / "staff-token"
        keys["COOPNODE_NODE__STAFF_TOKEN_FILE"] = json.dumps(str(staff_token))
        restored = NodeProcess(target, env=keys, staff_token_file=staff_token).start()
        for member_no in MEMBERS:
            assert balance(restored, member_no) == balances[member_no]
            keys_booked = history_keys(restored, member_no)[0]
            assert len(keys_booked) == len(set(keys_booked))
        for (member_no, body), answer in answers.items():
            path = f"/api/v1/wallets/{member_no}/payments"
            assert restored.request("POST", path, json.loads(body)) == (200, answer)
        status, audit = restored.request("GET", "/api/v1/audit")
        assert status == 200 and audit["balanced"] is True, audit
    finally:
        if restored is not None:
            restored.stop()
        cluster.stop()
        remove_tree(root)


def book_payments(a: NodeProcess, b: NodeProcess) -> dict[tuple[str, str], object]:
    """Enrol the members, then a few payments each through both fronts."""
    answers: dict[tuple[str, str], object] = {}
    for member_no in MEMBERS:
        body = {
            "key": "enrol",
            "member_no": member_no,
            "coop": "demo",
            "deposits": {"base": OPENING_BASE_YEN},
        }
        status, answer = a.request("POST", "/api/v1/wallets", body)
        assert status == 201, answer
        for number, front in enumerate((a, b, a, b)):
            payment = {
                "key": f"cluster-{number}",
                "amount_yen": 100 + number,
                "till_kind": "shop",
                "store": "shop-1",
            }
            status, answer = front.request("POST", f"/api/v1/wallets/{member_no}/payments", payment)
            assert status == 200, answer
            answers[(member_no, json.dumps(payment))] = answer
    return answers


def balance(front: NodeProcess, member_no: str) -> int:
    status, view = front.request("GET", f"/api/v1/wallets/{member_no}")
    assert status == 200, view
    base: int = view["balances"]["base"]
    return base


def wait_complete(front: NodeProcess, backup_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + PATIENCE_S
    while True:
        status, found = front.request("GET", f"/api/v1/admin/backups/{backup_id}")
        assert status == 200, found
        if found["state"] != "running":
            assert found["state"] == "complete", found
            assert isinstance(found, dict)
            return found
        assert time.monotonic() < deadline, "the backup did not finish"
        time.sleep(0.2)
