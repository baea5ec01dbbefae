"""A third language is one more catalogue file: with a `vi.po` beside the shipped two, the
portal lists it, links to it under its own name and renders its pages in it.

The pages run on an aiohttp test server over the in-process identity service
(`tests.identity.portal_app`); the catalogues are read again from the shipped files and
the extra one, and read afresh after the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import coopnode.catalogues
from coopnode.catalogues import ENGLISH, catalogues, languages, shipped_files
from tests.identity.harness import Harness
from tests.identity.portal_app import portal_client


@pytest.fixture
def with_vietnamese(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The shipped catalogues and a Vietnamese one made as the README says: a copy of
    en.po under the language's code, with its header and (here, two of) its texts."""
    shipped = shipped_files()
    vietnamese = dict(shipped)[ENGLISH].replace("Language: en", "Language: vi")
    vietnamese = vietnamese.replace(
        'msgid "language.name"\nmsgstr "English"', 'msgid "language.name"\nmsgstr "Tiếng Việt"'
    )
    vietnamese = vietnamese.replace(
        'msgid "site.name"\nmsgstr "University Co-op"',
        'msgid "site.name"\nmsgstr "Hợp tác xã Đại học"',
    )
    monkeypatch.setattr(
        coopnode.catalogues, "shipped_files", lambda: [*shipped, ("vi", vietnamese)]
    )
    catalogues.cache_clear()
    try:
        yield
    finally:
        monkeypatch.undo()
        catalogues.cache_clear()


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    built = Harness(tmp_path)
    try:
        yield built
    finally:
        built.close()


async def test_a_third_language_is_listed_linked_and_rendered(
    with_vietnamese: None, harness: Harness
) -> None:
    assert languages() == ("ja", "en", "vi")
    async with portal_client(harness) as client:
        answer = await client.get("/portal?lang=vi")
        page = await answer.text()
        assert answer.status == 200 and '<html lang="vi">' in page
        assert "Hợp tác xã Đại học" in page
        assert 'id="lang-switch" class="bar-link" hreflang="ja" lang="ja">日本語</a>' in page
        assert 'id="lang-switch-en" class="bar-link" hreflang="en" lang="en">English</a>' in page
        # The choice is remembered, and the Japanese page links to both others.
        assert answer.cookies["cn_lang"].value == "vi"
        japanese = await (await client.get("/portal?lang=ja")).text()
        assert 'id="lang-switch" class="bar-link" hreflang="en" lang="en">English</a>' in japanese
        assert 'hreflang="vi" lang="vi">Tiếng Việt</a>' in japanese
        switched = await client.get("/lang/vi?next=/portal", allow_redirects=False)
        assert switched.status == 303 and switched.cookies["cn_lang"].value == "vi"


async def test_a_language_without_a_catalogue_is_not_offered(harness: Harness) -> None:
    async with portal_client(harness) as client:
        page = await (await client.get("/portal?lang=vi")).text()
        assert '<html lang="ja">' in page and 'hreflang="vi"' not in page
        refused = await client.get("/lang/vi?next=/portal", allow_redirects=False)
        assert refused.status == 404
