"""What the portal says to members (issue 14), checked without a browser: the catalogue's
words, the sender's domain in the "passcode did not arrive" note, the page for an address
that is no page, and the masked phone in the answer to "send the code".

The pages run on an aiohttp test server over the in-process identity service and wallet
shard of `Harness` (`tests.identity.portal_app`); the browser tests (tests/portal) check
the same pages at a phone's size.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from coopnode.actors.identity.messages import FlowAnswer, FlowStep, SignIn
from coopnode.catalogues import ENGLISH, JAPANESE, catalogue
from coopnode.domain.identity import FlowKind, SessionKind, mask_phone
from coopnode.http.portal.routes import sender_domain
from tests.identity.harness import Harness
from tests.identity.portal_app import portal_client
from tests.identity.test_service import MAIL, PASSWORD, PHONE, enrol, set_password


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


# Words a member must not meet: a placeholder domain, the original's tenant, an identity
# provider's heading, a second name for textbook money, and "wallet" beside 電子マネー.
_NOT_SHOWN = ("coop.example", "KRM", "ユーザーの詳細", "教科書教材", "ウォレット")


def test_the_catalogue_speaks_as_a_co_op() -> None:
    for key in catalogue(JAPANESE).message_ids:
        japanese, english = catalogue(JAPANESE).raw(key), catalogue(ENGLISH).raw(key)
        for word in _NOT_SHOWN:
            assert word not in japanese and word not in english, (key, word)
        assert "wallet" not in english.lower() or key.startswith("error."), key


TEMPLATES = Path(__file__).parents[2] / "coopnode" / "http" / "portal" / "templates"


def test_every_page_with_a_required_mark_explains_it() -> None:
    """A page that marks a field ※ (required) says what ※ means."""
    pages = sorted(TEMPLATES.rglob("*.html"))
    assert len(pages) > 60, "the templates are not where the test looks"
    for template in pages:
        if template.name == "frame/macros.html":
            continue
        source = template.read_text(encoding="utf-8")
        fields = re.findall(r"\{\{ field\((.*?)\) \}\}", source)
        marked = "mark()" in source or any("required=False" not in call for call in fields)
        if marked:
            assert "required_note()" in source or "common.required" in source, template.name


@pytest.mark.parametrize(
    ("mail_from", "domain"),
    [
        ("大学生協 <krm-noreply@univ.coop>", "univ.coop"),
        ("noreply@mail.coop.ac.jp", "mail.coop.ac.jp"),
        ("大学生協 <noreply@coop.example>", ""),
        ("noreply@example.com", ""),
        ("noreply@node.test", ""),
        ("no address", ""),
    ],
)
def test_the_sender_domain_is_named_only_when_it_can_be_real(mail_from: str, domain: str) -> None:
    assert sender_domain(mail_from) == domain


@pytest.mark.parametrize("lang", ["ja", "en"])
async def test_an_address_that_is_no_page_answers_a_page(
    client: TestClient[Any, Any], lang: str
) -> None:
    answer = await client.get("/portal/no-such-page", cookies={"cn_lang": lang})
    page = await answer.text()
    assert answer.status == 404 and answer.content_type == "text/html"
    assert f'<html lang="{lang}">' in page
    expected = catalogue(lang).gettext("error.page_not_found")
    assert expected in page and 'href="/portal" id="error-home"' in page
    directly = await client.get("/portal/mail-change/search", cookies={"cn_lang": lang})
    assert directly.status == 405 and directly.headers["Allow"] == "POST"
    assert 'id="page-error"' in await directly.text()
    # A guardian is led back to the guardian's page.
    guardian = await client.get("/portal/guardian/nothing-here")
    assert 'href="/portal/guardian" id="error-home"' in await guardian.text()


async def test_the_code_answer_names_the_masked_phone(harness: Harness) -> None:
    await enrol(harness)
    await set_password(harness)
    flow = await harness.call(SignIn(kind=SessionKind.PORTAL, identifier=MAIL, password=PASSWORD))
    assert isinstance(flow, FlowAnswer)
    step = FlowStep(
        kind=FlowKind.PORTAL_SIGN_IN,
        step="send_code",
        flow_id=flow.flow_id,
        method="sms",
        phone="090-1111-2222",
    )
    sent = await harness.call(step)
    assert isinstance(sent, FlowAnswer), sent
    assert sent.masked_phone == flow.masked_phone == mask_phone(PHONE)
    # The button pressed twice answers the same.
    again = await harness.call(step)
    assert isinstance(again, FlowAnswer) and again.masked_phone == sent.masked_phone
