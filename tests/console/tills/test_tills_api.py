"""The console's tills API in process: register with a key downloaded once, connected
tills, the last tap, the forwarded offline queue, retiring."""

from __future__ import annotations

import msgspec
from nacl.signing import SigningKey

from coopnode.domain.money import Reason
from coopnode.domain.till_frames import Decision
from coopnode.reader.till_key import TillKeyFile
from tests.console.tills.inprocess import STAFF, Console
from tests.http.test_till_hub import Connection


async def register(console: Console, store: str = "north") -> dict:  # type: ignore[type-arg]
    answer = await console.client.post(
        "/api/v1/console/tills", json={"store": store, "kind": "shop"}, headers=STAFF
    )
    assert answer.status == 201, await answer.text()
    body: dict = await answer.json()  # type: ignore[type-arg]
    return body


async def tills(console: Console) -> dict[str, dict]:  # type: ignore[type-arg]
    answer = await console.client.get("/api/v1/console/tills", headers=STAFF)
    assert answer.status == 200
    return {till["till_id"]: till for till in (await answer.json())["tills"]}


async def test_a_new_tills_key_is_downloaded_once_and_never_again(console: Console) -> None:
    registered = await register(console)
    till_id = registered["till"]["till_id"]
    assert registered["till"]["key_waiting"] is True
    assert registered["key_path"] == f"/api/v1/console/tills/{till_id}/key"

    first = await console.client.post(registered["key_path"], headers=STAFF)
    assert first.status == 200
    assert first.headers["Content-Disposition"] == f'attachment; filename="{till_id}.key"'
    key_file = msgspec.json.decode(await first.read(), type=TillKeyFile)
    assert (key_file.till_id, key_file.store) == (till_id, "north")
    # The node registered the key's public half; the private half was only in the file.
    public = bytes(SigningKey(bytes.fromhex(key_file.signing_key_hex)).verify_key)
    assert console.hub.tills[till_id].public_key == public

    again = await console.client.post(registered["key_path"], headers=STAFF)
    assert again.status == 410
    assert (await again.json())["reason"] == "key_gone"
    assert (await tills(console))[till_id]["key_waiting"] is False


async def test_the_routes_need_staff(console: Console) -> None:
    answer = await console.client.get("/api/v1/console/tills")
    assert answer.status == 401
    unknown = await console.client.post("/api/v1/console/tills/till-9999/key", headers=STAFF)
    assert unknown.status == 404


async def test_connected_tills_and_their_last_tap(console: Console) -> None:
    north = (await register(console))["till"]["till_id"]
    south = (await register(console, "south"))["till"]["till_id"]
    console.hub.attach(Connection(north))
    console.tap(north, Decision(seq=1, kind="tap", approved=True, amount_yen=430))
    console.tap(
        north,
        Decision(seq=2, kind="tap", approved=False, reason=Reason.INSUFFICIENT_FUNDS),
    )
    listed = await tills(console)
    assert listed[north]["connected"] is True and listed[south]["connected"] is False
    assert listed[north]["taps"] == 2
    assert listed[north]["last_tap_approved"] is False
    assert listed[north]["last_tap_reason"] == "insufficient_funds"
    assert listed[north]["last_tap_ms"] > 0
    assert listed[south]["taps"] == 0 and listed[south]["last_tap_ms"] == 0


async def test_the_offline_queue_a_till_forwarded_and_what_became_of_it(
    console: Console,
) -> None:
    till_id = (await register(console))["till"]["till_id"]
    forwarded = [
        Decision(seq=7, kind="tap", approved=True, amount_yen=430, offline=True),
        Decision(seq=8, kind="tap", approved=True, amount_yen=600, overdraft_yen=170, offline=True),
        Decision(seq=9, kind="tap", approved=False, reason=Reason.CARD_BLOCKED, offline=True),
        Decision(seq=10, kind="tap", approved=False, reason=Reason.UNAVAILABLE, offline=True),
    ]
    for at, decision in enumerate(forwarded):
        console.tap(till_id, decision, tapped_at_ms=1_000 + at)
    console.tap(till_id, Decision(seq=11, kind="tap", approved=True, amount_yen=430))
    # A void is not a tap: neither counted nor listed.
    console.tap(till_id, Decision(seq=12, kind="void", approved=True, offline=False))

    answer = await console.client.get(f"/api/v1/console/tills/{till_id}/forwarded", headers=STAFF)
    body = await answer.json()
    assert body["forwarded_total"] == 4
    assert [
        (tap["seq"], tap["tapped_at_ms"], tap["outcome"], tap["reason"], tap["overdraft_yen"])
        for tap in body["forwarded"]
    ] == [
        (10, 1_003, "try_again", "unavailable", 0),
        (9, 1_002, "declined", "card_blocked", 0),
        (8, 1_001, "overdraft", "", 170),
        (7, 1_000, "accepted", "", 0),
    ]
    assert all(tap["forwarded_at_ms"] > 0 for tap in body["forwarded"])
    assert (await tills(console))[till_id]["taps"] == 5


async def test_retiring_a_till_drops_its_waiting_key(console: Console) -> None:
    registered = await register(console)
    till_id = registered["till"]["till_id"]
    connection = Connection(till_id)
    console.hub.attach(connection)
    answer = await console.client.post(f"/api/v1/console/tills/{till_id}/retire", headers=STAFF)
    assert answer.status == 200
    assert (await answer.json())["retired"] is True
    assert connection.closed  # The hub closes a retired till's connection.
    gone = await console.client.post(registered["key_path"], headers=STAFF)
    assert gone.status == 410
