"""A new till's key waits for one download, a bounded time, in a bounded number."""

from __future__ import annotations

import pytest

from coopnode.domain.money import TillKind
from coopnode.http.console.tills.keys import KeysPendingFull, PendingKeys
from coopnode.reader.till_key import TillKeyFile


class Clock:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


def key_file(till_id: str) -> TillKeyFile:
    return TillKeyFile(till_id=till_id, store="north", kind=TillKind.SHOP, signing_key_hex="0" * 64)


def test_a_key_is_taken_once() -> None:
    keys = PendingKeys(ttl_s=60.0, pending_max=4, clock_s=Clock())
    keys.hold(key_file("till-0001"))
    assert keys.waiting("till-0001")
    assert keys.take("till-0001") == key_file("till-0001")
    assert keys.take("till-0001") is None
    assert not keys.waiting("till-0001")


def test_a_key_not_downloaded_in_time_is_gone() -> None:
    clock = Clock()
    keys = PendingKeys(ttl_s=60.0, pending_max=4, clock_s=clock)
    keys.hold(key_file("till-0001"))
    clock.now_s += 59.9
    keys.hold(key_file("till-0002"))
    clock.now_s += 0.1
    assert keys.take("till-0001") is None
    assert keys.take("till-0002") == key_file("till-0002")


def test_no_more_keys_wait_than_the_bound_until_one_expires() -> None:
    clock = Clock()
    keys = PendingKeys(ttl_s=60.0, pending_max=2, clock_s=clock)
    keys.hold(key_file("till-0001"))
    keys.hold(key_file("till-0002"))
    with pytest.raises(KeysPendingFull):
        keys.check_room()
    clock.now_s += 60.0
    keys.check_room()
