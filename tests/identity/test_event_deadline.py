"""An event's application deadline, on the portal's pages, with the service's clock moved
past it by the test: an application made before it stands, and after it a member can
neither apply nor cancel. The clock is the harness's, so the outcome does not depend on
how long the machine takes to sign a member in."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient

from coopnode.actors.identity.messages import EventCreate, EventRoster
from tests.identity.harness import Harness
from tests.identity.portal_app import as_, portal_client, portal_session
from tests.identity.test_service import MAIL, enrol, set_password

JST = ZoneInfo("Asia/Tokyo")
# Well inside a portal session's idle bound, so the member stays signed in across it.
APPLY_WINDOW_S = 60.0


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    built = Harness(tmp_path)
    try:
        yield built
    finally:
        built.close()


@pytest.fixture
async def client(harness: Harness) -> AsyncIterator[TestClient[Any, Any]]:
    async with portal_client(harness) as test_client:
        yield test_client


async def new_event(harness: Harness, title: str) -> int:
    # The event is held on the day after the deadline's, whatever the harness's time of day.
    until_s = harness.clock() + APPLY_WINDOW_S
    held = datetime.datetime.fromtimestamp(until_s, JST).date() + datetime.timedelta(days=1)
    created = await harness.call(
        EventCreate(
            actor="staff-test",
            coop="demo",
            title=title,
            date=held.isoformat(),
            place="第一食堂2階",
            capacity=10,
            apply_until_s=until_s,
        )
    )
    assert isinstance(created, EventRoster), created
    return created.event.event_id


async def test_the_deadline_closes_apply_and_cancel(
    harness: Harness, client: TestClient[Any, Any]
) -> None:
    await enrol(harness)
    await set_password(harness)
    member = await portal_session(harness, MAIL, "090-1111-2222")
    event_id = await new_event(harness, "新入生歓迎会")
    late_id = await new_event(harness, "追いコン")
    cookies = as_(client, member)

    async def post(path: str) -> int:
        answer = await client.post(
            path, data={"csrf": member.csrf_token}, cookies=cookies, allow_redirects=False
        )
        return answer.status

    assert await post(f"/portal/events/{event_id}/apply") == 303
    harness.clock.advance(APPLY_WINDOW_S)  # The deadline itself is already too late.

    late = await client.post(
        f"/portal/events/{late_id}/apply",
        data={"csrf": member.csrf_token},
        cookies=cookies,
        allow_redirects=False,
    )
    assert late.status == 409 and "申込期間を過ぎた" in await late.text()
    assert await post(f"/portal/events/{event_id}/cancel") == 409
    home = await client.get("/portal/home", cookies=cookies)
    page = await home.text()
    assert f'id="application-{event_id}"' in page and "申込済" in page
    assert f'id="application-{late_id}"' not in page
