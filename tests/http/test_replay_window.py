"""The till channel's replay window: answered frames are kept as bytes, oldest first out."""

from __future__ import annotations

import asyncio
import gc

from coopnode.http.tills.hub import ReplayWindow, Seen

DIGEST = bytes(range(16))


async def test_an_answered_frame_is_kept_as_bytes_the_collector_never_visits() -> None:
    window = ReplayWindow(4)
    seen = Seen(DIGEST, asyncio.get_running_loop().create_future())
    window.put(7, seen)
    assert window.get(7) is seen
    window.answer(7, seen, b"decision")
    kept = window.get(7)
    assert kept == DIGEST + b"decision"
    assert not gc.is_tracked(kept)


async def test_the_oldest_frames_leave_first_and_answers_keep_their_place() -> None:
    window = ReplayWindow(3)
    loop = asyncio.get_running_loop()
    seens = {seq: Seen(DIGEST, loop.create_future()) for seq in range(1, 5)}
    for seq in (1, 2, 3):
        window.put(seq, seens[seq])
    window.answer(1, seens[1], b"one")  # Answered late: still the oldest.
    window.put(4, seens[4])
    assert window.get(1) is None
    assert [window.get(seq) for seq in (2, 3, 4)] == [seens[2], seens[3], seens[4]]


async def test_a_forgotten_frame_is_not_brought_back_by_its_answer() -> None:
    window = ReplayWindow(4)
    seen = Seen(DIGEST, asyncio.get_running_loop().create_future())
    window.put(5, seen)
    window.forget(5, seen)
    window.answer(5, seen, b"late")
    assert window.get(5) is None
