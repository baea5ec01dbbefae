"""The till channel on a real node (Ray, LMDB, aiohttp): taps, refusals, replays, voids,
pacing, and a blocked card reaching every connected till within a second."""

from __future__ import annotations

import asyncio
import contextlib
import time
import urllib.request
from typing import Any

import aiohttp
import msgspec
import pytest
from nacl.signing import SigningKey

from coopnode.domain.money import Reason
from coopnode.domain.till_frames import CloseCode, Signed, VoidBody, frame_encoder
from tests.nodeproc import NodeProcess
from tests.tillclient import TIMEOUT_S, RawTill, add_till, enrol_with_card

pytestmark = pytest.mark.slow


def wallet(node: NodeProcess, member_no: str) -> dict[str, Any]:
    status, body = node.request("GET", f"/api/v1/wallets/{member_no}")
    assert status == 200, body
    return dict(body)


def history_len(node: NodeProcess, member_no: str) -> int:
    status, page = node.request("GET", f"/api/v1/wallets/{member_no}/history?limit=100")
    assert status == 200, page
    return len(page["lines"])


def metric(node: NodeProcess, sample: str) -> float:
    """One sample of the node's /metrics, e.g. 'coopnode_till_connected' (0 if absent)."""
    with urllib.request.urlopen(node.url + "/metrics") as response:
        for line in response.read().decode().splitlines():
            name, _, value = line.rpartition(" ")
            if name == sample:
                return float(value)
    return 0.0


APPROVED_TAPS = 'coopnode_till_decisions_total{kind="tap",outcome="approved",reason=""}'
CONFLICTS = (
    'coopnode_till_decisions_total{kind="tap",outcome="declined",reason="idempotency_conflict"}'
)
BAD_SIGNATURES = 'coopnode_till_refused_frames_total{reason="bad_signature"}'


def assert_balanced(node: NodeProcess) -> None:
    status, audit = node.request("GET", "/api/v1/audit")
    assert status == 200 and audit["balanced"], audit


async def test_a_tap_is_decided_and_a_replay_changes_nothing(node: NodeProcess) -> None:
    member, card = "202633000011", "3300000000000011"
    enrol_with_card(node, member, card, base=5_000)
    till_id, key = add_till(node, "shop-33")
    approved, conflicts = metric(node, APPROVED_TAPS), metric(node, CONFLICTS)
    timed = metric(node, "coopnode_till_decision_seconds_count")
    till = await RawTill(node.url, till_id, key).open()
    try:
        assert till.welcome is not None and till.welcome.store == "shop-33"
        assert metric(node, "coopnode_till_connected") >= 1
        body = till.tap(card, 1_200)
        frame = till.sealed(body)
        decision = await till.decide(body, frame)
        assert decision.approved and decision.paid.base == 1_200
        assert decision.balances.base == 3_800 and decision.points_earned == 12
        # The same frame again, and the same body signed (as it is forwarded after a
        # link loss): the first decision, and nothing booked twice.
        assert await till.decide(body, frame) == decision
        assert await till.decide(body, till.signed(body)) == decision
        # The same seq with other content: refused as a conflict.
        conflict = await till.decide(msgspec.structs.replace(body, amount_yen=10))
        assert not conflict.approved and conflict.reason is Reason.IDEMPOTENCY_CONFLICT
    finally:
        await till.close()
    # Counted once each: the repeats answered from the window are not new decisions.
    assert metric(node, APPROVED_TAPS) == approved + 1
    assert metric(node, CONFLICTS) == conflicts + 1
    assert metric(node, "coopnode_till_decision_seconds_count") == timed + 2
    assert wallet(node, member)["balances"]["base"] == 3_800
    assert history_len(node, member) == 2  # Enrolment and one payment.
    assert_balanced(node)


async def test_tills_that_cannot_prove_their_key_are_refused_at_open(node: NodeProcess) -> None:
    till_id, key = add_till(node, "shop-33")
    wrong_key = await RawTill(node.url, till_id, key).open(auth_key=SigningKey.generate())
    assert (wrong_key.close_code, wrong_key.close_reason) == (CloseCode.BAD_AUTH, "bad signature")
    unknown = await RawTill(node.url, "till-9999", key).open()
    assert (unknown.close_code, unknown.close_reason) == (CloseCode.UNKNOWN_TILL, "unknown till")
    status, _ = node.request("POST", f"/api/v1/tills/{till_id}/retire")
    assert status == 200
    retired = await RawTill(node.url, till_id, key).open()
    assert retired.close_code == CloseCode.RETIRED
    for till in (wrong_key, unknown, retired):
        await till.close()


async def test_bad_frames_are_refused_with_a_reason_and_change_nothing(node: NodeProcess) -> None:
    member, card = "202633000029", "3300000000000029"
    enrol_with_card(node, member, card, base=5_000)
    till_id, key = add_till(node, "shop-33")
    other_id, other_key = add_till(node, "shop-33")
    # A frame sealed on an earlier connection of the same till is worthless on this one.
    earlier = await RawTill(node.url, till_id, key).open()
    await earlier.close()
    till = await RawTill(node.url, till_id, key).open()
    bad_signatures = metric(node, BAD_SIGNATURES)
    try:
        body = till.tap(card, 100)
        wrong_signature = frame_encoder.encode(
            Signed(body=frame_encoder.encode(body), signature=bytes(64))
        )
        bad: list[tuple[bytes, str]] = [
            (b"\x93not a frame", "malformed_frame"),
            (frame_encoder.encode(body), "malformed_frame"),  # A tap neither sealed nor signed.
            (wrong_signature, "bad_signature"),
            (till.signed(body, key=other_key), "bad_signature"),
            (till.signed(msgspec.structs.replace(body, till_id=other_id)), "wrong_till"),
            (till.sealed(body, session_key=bytes(32)), "bad_signature"),
            (till.sealed(body, session_key=earlier.session_key), "bad_signature"),
        ]
        for frame, reason in bad:
            await till.send(frame)
            refused = await asyncio.wait_for(till.refused.get(), 5)
            assert refused.reason == reason
            # A frame whose body can be read is named, so the till knows which was refused.
            assert refused.seq == (0 if reason == "malformed_frame" else body.seq), refused
        await till.send(b"\x00" * 4096)  # Over frame_max_bytes: the node hangs up.
        assert await till.wait_closed() == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
    finally:
        await till.close()
    assert wallet(node, member)["balances"]["base"] == 5_000
    assert history_len(node, member) == 1
    assert metric(node, BAD_SIGNATURES) == bad_signatures + 4
    assert_balanced(node)


async def test_a_till_voids_its_own_tap_but_not_another_tills(node: NodeProcess) -> None:
    member, card = "202633000037", "3300000000000037"
    enrol_with_card(node, member, card, base=5_000)
    first = await RawTill(node.url, *add_till(node, "shop-33")).open()
    second = await RawTill(node.url, *add_till(node, "shop-33")).open()
    try:
        tap = first.tap(card, 700)
        assert (await first.decide(tap)).approved
        # The second till names the first till's tap: it can only name its own taps.
        second.seq = 5
        foreign = VoidBody(
            till_id=second.till_id, seq=second.next_seq(), idm=card, tap_seq=tap.seq, at_ms=1
        )
        refused = await second.decide(foreign)
        assert not refused.approved and refused.reason is Reason.UNKNOWN_PAYMENT
        assert wallet(node, member)["balances"]["base"] == 4_300
        own = VoidBody(
            till_id=first.till_id, seq=first.next_seq(), idm=card, tap_seq=tap.seq, at_ms=1
        )
        voided = await first.decide(own)
        assert voided.approved and voided.paid.base == 700
    finally:
        await first.close()
        await second.close()
    assert wallet(node, member)["balances"]["base"] == 5_000
    assert_balanced(node)


async def test_a_flooding_till_is_slowed_and_the_others_are_not(node: NodeProcess) -> None:
    member, card = "202633000045", "3300000000000045"
    enrol_with_card(node, member, card, base=50_000)
    flooder = await RawTill(node.url, *add_till(node, "shop-33")).open()
    calm = await RawTill(node.url, *add_till(node, "shop-33")).open()
    throttled = metric(node, "coopnode_till_throttled_frames_total")
    try:
        # Taps of an unknown card: refused in the front, so only the pacing slows them.
        flood = [flooder.tap("33000000000000ff", 10) for _ in range(1_400)]
        frames = [flooder.sealed(body) for body in flood]
        started = time.monotonic()
        sending = asyncio.gather(
            *(flooder.decide(b, f) for b, f in zip(flood, frames, strict=True))
        )
        latencies = []
        for _ in range(10):
            began = time.monotonic()
            assert (await calm.decide(calm.tap(card, 10))).approved
            latencies.append(time.monotonic() - began)
            await asyncio.sleep(0.05)
        decisions = await sending
        flood_s = time.monotonic() - started
    finally:
        await flooder.close()
        await calm.close()
    assert all(not decision.approved for decision in decisions)
    # 1,400 frames at 400/s after a burst of 800 take at least 1.5 s...
    assert flood_s >= 1.3, flood_s
    # ...while the calm till's taps were not paced behind them: a tap queued behind the
    # flood would wait about as long as the paced part of the flood (over a second). The
    # bound is relative, so a slower machine, which stretches both, does not decide it.
    assert max(latencies) < flood_s / 3, (latencies, flood_s)
    assert metric(node, "coopnode_till_throttled_frames_total") - throttled >= 400


async def test_a_blocked_card_is_pushed_to_every_connected_till(
    node: NodeProcess,
) -> None:
    member, card = "202633000053", "3300000000000053"
    enrol_with_card(node, member, card, base=5_000)
    tills = [await RawTill(node.url, *add_till(node, "shop-33")).open() for _ in range(4)]
    try:
        for till in tills:
            assert (await till.decide(till.tap(card, 100))).approved
            till.deny_changed.clear()
        pushes = metric(node, "coopnode_till_deny_pushes_total")
        loop = asyncio.get_running_loop()
        status, lost = await loop.run_in_executor(
            None, node.request, "POST", f"/api/v1/cards/{card}/lost"
        )
        assert status == 200 and lost["status"] == "lost"
        # Pushed by the front as it makes the change (not found by a poll): the bound on
        # the wait is the test's patience, not the push's latency, which benchmarks measure.
        await asyncio.wait_for(asyncio.gather(*(t.deny_changed.wait() for t in tills)), TIMEOUT_S)
        for till in tills:
            _, update = till.deny_updates[-1]
            assert card in update.blocked
            refused = await till.decide(till.tap(card, 100))
            assert not refused.approved and refused.reason is Reason.CARD_BLOCKED
        assert metric(node, "coopnode_till_deny_pushes_total") - pushes >= len(tills)
        # Reissue: a new card reaches the same purses; the old one stays blocked.
        new_card = "3300000000000153"
        status, _ = node.request("POST", f"/api/v1/wallets/{member}/card", {"new_idm": new_card})
        assert status == 201
        reissued = await tills[0].decide(tills[0].tap(new_card, 100))
        assert reissued.approved
        assert msgspec.to_builtins(reissued.balances) == wallet(node, member)["balances"]
        # A suspended account's card joins the deny list too, and leaves it on resume.
        tills[1].deny_changed.clear()
        assert node.request("POST", f"/api/v1/wallets/{member}/suspend")[0] == 200
        await asyncio.wait_for(tills[1].deny_changed.wait(), TIMEOUT_S)
        assert new_card in tills[1].deny_updates[-1][1].blocked
        refused = await tills[1].decide(tills[1].tap(new_card, 100))
        assert refused.reason is Reason.SUSPENDED
        tills[1].deny_changed.clear()
        assert node.request("POST", f"/api/v1/wallets/{member}/resume")[0] == 200
        await asyncio.wait_for(tills[1].deny_changed.wait(), TIMEOUT_S)
        assert new_card in tills[1].deny_updates[-1][1].unblocked
    finally:
        for till in tills:
            await till.close()
    status, deny = node.request("GET", "/api/v1/deny-list")
    assert status == 200 and card in deny["idms"] and new_card not in deny["idms"]


async def test_an_uncovered_offline_tap_is_booked_with_an_overdraft(node: NodeProcess) -> None:
    member, card = "202633000061", "3300000000000061"
    enrol_with_card(node, member, card, base=300)
    till = await RawTill(node.url, *add_till(node, "shop-33")).open()
    try:
        # Offline taps come signed with the till's key, as the till queued them.
        body = till.tap(card, 800, offline=True)
        decision = await till.decide(body, till.signed(body))
        assert decision.approved and decision.offline
        assert decision.paid.base == 300 and decision.overdraft_yen == 500
        too_big_body = till.tap(card, 5_000, offline=True)
        too_big = await till.decide(too_big_body, till.signed(too_big_body))
        assert too_big.reason is Reason.ABOVE_MAXIMUM  # Beyond the limits the node gave.
    finally:
        await till.close()
    status, listing = node.request("GET", "/api/v1/overdrafts")
    assert status == 200
    mine = [record for record in listing["overdrafts"] if record["member_no"] == member]
    payment_key = f"tap:{till.till_id}:{body.seq}"
    assert [(record["overdraft_yen"], record["payment_key"]) for record in mine] == [
        (500, payment_key)
    ]
    assert wallet(node, member)["balances"]["base"] == 0
    assert_balanced(node)
    # Recovering it: refused while the purses cannot cover it, then taken once charged.
    settle = f"/api/v1/wallets/{member}/payments/{payment_key}/settle"
    status, refused = node.request("POST", settle, {"key": "settle-1"})
    assert status == 402 and refused["reason"] == "insufficient_funds"
    charge = {"key": "charge-1", "purse": "base", "amount_yen": 1_000, "source": "counter"}
    assert node.request("POST", f"/api/v1/wallets/{member}/charges", charge)[0] == 200
    before = sum(wallet(node, member)["balances"].values())  # 1,000 yen and 3 points.
    status, settled = node.request("POST", settle, {"key": "settle-2"})
    assert status == 200 and settled["amount_yen"] == 500
    assert sum(settled["balances"].values()) == before - 500  # In the shop's spend order.
    assert node.request("POST", settle, {"key": "settle-2"}) == (status, settled)  # A retry.
    status, again = node.request("POST", settle, {"key": "settle-3"})
    assert status == 409 and again["reason"] == "nothing_owed"
    status, listing = node.request("GET", "/api/v1/overdrafts")
    assert all(record["member_no"] != member for record in listing["overdrafts"])
    assert sum(wallet(node, member)["balances"].values()) == before - 500
    assert_balanced(node)


async def test_offline_taps_are_taken_signed_and_dated_within_bounds_only(
    node: NodeProcess,
) -> None:
    member, card = "202633000079", "3300000000000079"
    lost_member, lost_card = "202633000087", "3300000000000087"
    enrol_with_card(node, member, card, base=5_000)
    enrol_with_card(node, lost_member, lost_card, base=5_000)
    assert node.request("POST", f"/api/v1/cards/{lost_card}/lost")[0] == 200
    # A cafeteria till: no points, so each tap takes its amount from base money.
    till = await RawTill(node.url, *add_till(node, "cafe-33", kind="cafeteria")).open()
    now_ms = time.time_ns() // 1_000_000
    minute_ms, day_ms = 60_000, 86_400_000
    try:
        # Sealed, an offline tap is refused whole: it was not signed when it was sold.
        body = till.tap(card, 400, offline=True)
        await till.send(till.sealed(body))
        refused = await asyncio.wait_for(till.refused.get(), 5)
        assert (refused.seq, refused.reason) == (body.seq, "offline_not_signed")
        # Nothing was kept of it: the same tap signed is decided afresh.
        assert (await till.decide(body, till.signed(body))).approved
        # Dated ahead of the node's clock beyond the skew, or older than a week: declined.
        dated = {
            now_ms + 10 * minute_ms: "ahead",
            now_ms - 8 * day_ms: "older",
        }
        for at_ms, said in dated.items():
            late = till.tap(card, 100, offline=True, at_ms=at_ms)
            declined = await till.decide(late, till.signed(late))
            assert not declined.approved and declined.reason is Reason.INVALID_INPUT
            assert said in declined.message
        # Within the bounds (a minute ahead, six days old): booked.
        for at_ms in (now_ms + minute_ms, now_ms - 6 * day_ms):
            fine = till.tap(card, 100, offline=True, at_ms=at_ms)
            assert (await till.decide(fine, till.signed(fine))).approved
        # A lost card's tap dated back before its block: past the age bound, declined...
        backdated = till.tap(lost_card, 100, offline=True, at_ms=now_ms - 30 * day_ms)
        declined = await till.decide(backdated, till.signed(backdated))
        assert declined.reason is Reason.INVALID_INPUT
        # ...and dated after its block, refused as a blocked card's.
        after_block = till.tap(lost_card, 100, offline=True)
        declined = await till.decide(after_block, till.signed(after_block))
        assert declined.reason is Reason.CARD_BLOCKED
    finally:
        await till.close()
    assert wallet(node, member)["balances"]["base"] == 5_000 - 400 - 100 - 100
    assert history_len(node, member) == 4  # Enrolment and three taps.
    assert history_len(node, lost_member) == 1
    assert_balanced(node)


async def test_a_connected_till_retired_through_the_staff_api_is_cut_off(
    node: NodeProcess,
) -> None:
    member, card = "202633000095", "3300000000000095"
    enrol_with_card(node, member, card, base=5_000)
    till = await RawTill(node.url, *add_till(node, "shop-33")).open()
    try:
        assert (await till.decide(till.tap(card, 100))).approved
        loop = asyncio.get_running_loop()
        status, retired = await loop.run_in_executor(
            None, node.request, "POST", f"/api/v1/tills/{till.till_id}/retire"
        )
        assert status == 200 and retired["retired"], retired
        # A tap sent at once, before or after the close reaches the till: never decided.
        late = till.tap(card, 100)
        with contextlib.suppress(ConnectionError, RuntimeError):
            await till.send(till.sealed(late))
        assert await till.wait_closed() == CloseCode.RETIRED
        assert late.seq not in till.decisions
    finally:
        await till.close()
    assert wallet(node, member)["balances"]["base"] == 4_900
    assert history_len(node, member) == 2  # Enrolment and the tap before the retirement.
