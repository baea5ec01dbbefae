"""The message catalogues: every text a member reads, one gettext `.po` file per language.

    ja.po        Japanese, the co-op's language and the first: the seed is its manual
    en.po        English, the second
    <code>.po    any further language: one more file holds all of it (README, "Languages")
    labels.py    explicit maps from what the domain names (a purse, an OAuth scope) to the
                 message id of its label, shared by the pages and the mails

The pages (`coopnode.http.portal`, through Jinja2's i18n extension), the mails, SMS and
calls (`coopnode.actors.notify.mails`) and the OAuth consent's scope texts all read these
files, so this room sits below both layers: it imports the standard library, Babel and the
domain's enums, and nothing else of the node.

Message ids are names (`error.csrf`, `mail.verification.body`), never built by joining
strings: every id is written out where it is used, inside `_(…)` or `gettext(…)` in a
template and inside `N_(…)` in Python, so that Babel's extractors find them all;
`tests/catalogues/test_catalogues.py` (in `make test`) fails on an id that a language
lacks, one that nothing uses, one used but in no catalogue, and a placeholder
(`%(amount)s`) that differs between languages.

The `.po` files are read and compiled in memory on first use (no build step; the portal
and the identity actor's OAuth texts use them as they start), and checked then: a file
that does not parse, names an id twice or another language in its header, lacks an id of
the Japanese one or has one more, leaves a text empty, holds markup or names other
placeholders stops the node at start with a sentence naming the file and the ids
(`CatalogueError`).
"""

from __future__ import annotations

import functools
import io
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from importlib import resources

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

JAPANESE = "ja"
ENGLISH = "en"

# A language's file name: an ISO 639 code, with a region when one is needed (pt_BR).
_LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}(_[A-Z]{2})?$")
# A message id's line, and the header that names the file's language.
_MESSAGE_ID = re.compile(r'^msgid "(.+)"$', re.MULTILINE)
_LANGUAGE_HEADER = re.compile(r'^"Language: ([^\\"]*)\\n"$', re.MULTILINE)
# A placeholder in a text: `%(amount)s`, `%(month)02d`; `%%` is a literal percent sign.
_PLACEHOLDER = re.compile(r"%\((\w+)\)[-#0 +]*\d*(?:\.\d+)?[sdif]|%%")
# Texts are placed in pages as markup (Jinja2's newstyle gettext marks them safe), so a
# text may not hold what markup or an attribute value would read: it is text, not HTML.
_MARKUP = re.compile(r"[<>&\"]")
# Bounds of what a catalogue may hold, so that a wrong file fails at start rather than
# fill the memory: today ~420 ids and texts under 600 characters.
CATALOGUE_IDS_MAX = 2000
TEXT_CHARS_MAX = 2000


def N_(message_id: str) -> str:
    """Mark a message id for extraction where it is named, not yet translated (gettext's
    `gettext_noop`): a page error, a field's error, a label map's value."""
    return message_id


class CatalogueError(Exception):
    """A catalogue file that cannot be used: the file and what is wrong with it."""


class Catalogue:
    """One language's texts, compiled from its `.po` file."""

    def __init__(self, language: str, catalog: Catalog) -> None:
        self.language = language
        self._texts: dict[str, str] = {
            str(message.id): str(message.string) for message in catalog if message.id
        }
        compiled = io.BytesIO()
        write_mo(compiled, catalog)
        compiled.seek(0)
        self._translations = Translations(fp=compiled, domain="messages")

    @property
    def message_ids(self) -> frozenset[str]:
        return frozenset(self._texts)

    def raw(self, message_id: str) -> str:
        """The text of `message_id` as the file holds it, placeholders unfilled."""
        return self._texts[message_id]

    def gettext(self, message_id: str) -> str:
        """The text of `message_id`; an id in no catalogue is a programmer error."""
        if message_id not in self._texts:
            raise KeyError(f"no message {message_id!r} in the {self.language} catalogue")
        return self._translations.gettext(message_id)

    def ngettext(self, singular: str, plural: str, count: int) -> str:
        if singular not in self._texts:
            raise KeyError(f"no message {singular!r} in the {self.language} catalogue")
        return self._translations.ngettext(singular, plural, count)

    def text(self, message_id: str, **values: object) -> str:
        """The text of `message_id` with its `%(name)s` placeholders filled from `values`."""
        return self.gettext(message_id) % values


def placeholders(text: str) -> list[str]:
    """The placeholders of a text as written, sorted: ["%(amount)s", "%(to)s"]."""
    return sorted(match.group(0) for match in _PLACEHOLDER.finditer(text) if match.group(1))


def _read(language: str, source: str) -> Catalog:
    """A `.po` file's catalog; one that does not parse, names an id twice (Babel would keep
    one quietly) or whose header names another language is refused."""
    try:
        catalog = read_po(io.StringIO(source), locale=language, abort_invalid=True)
    except Exception as error:
        raise CatalogueError(f"{language}.po cannot be read: {error}") from None
    if len(catalog) > CATALOGUE_IDS_MAX:
        raise CatalogueError(f"{language}.po holds more than {CATALOGUE_IDS_MAX} messages")
    named = Counter(_MESSAGE_ID.findall(source))
    twice = sorted(message_id for message_id, count in named.items() if count > 1)
    if twice:
        raise CatalogueError(f"{language}.po names {', '.join(twice)} more than once")
    header = _LANGUAGE_HEADER.search(source)
    if header is None or header.group(1) != language:
        raise CatalogueError(f'{language}.po needs the header "Language: {language}\\n"')
    return catalog


def problems(catalogs: Mapping[str, Catalog]) -> list[str]:
    """What makes a set of catalogues unusable, one sentence each (empty when none): each
    language must hold every id of the Japanese one and no other, each text filled, not
    fuzzy, without markup, and with the placeholders of its Japanese text."""
    found: list[str] = []
    japanese = catalogs.get(JAPANESE)
    if japanese is None:
        return [f"there is no {JAPANESE}.po: Japanese is the portal's first language"]
    reference = {str(m.id): str(m.string) for m in japanese if m.id}
    for language, catalog in catalogs.items():
        if not _LANGUAGE_CODE.match(language):
            found.append(f"{language}.po: the file name is not a language code (ja, en, pt_BR)")
        texts = {str(m.id): m for m in catalog if m.id}
        for message_id in sorted(reference.keys() - texts.keys()):
            found.append(f"{language}.po: {message_id!r} is missing")
        for message_id in sorted(texts.keys() - reference.keys()):
            found.append(f"{language}.po: {message_id!r} is in no {JAPANESE}.po")
        for message_id, message in sorted(texts.items()):
            text = message.string
            if not isinstance(text, str) or not text.strip():
                found.append(f"{language}.po: {message_id!r} has no text")
                continue
            if message.fuzzy:
                found.append(f"{language}.po: {message_id!r} is marked fuzzy")
            if len(text) > TEXT_CHARS_MAX:
                found.append(f"{language}.po: {message_id!r} is over {TEXT_CHARS_MAX} chars")
            if _MARKUP.search(text):
                found.append(f'{language}.po: {message_id!r} holds markup (<, >, & or ")')
            if "%" in _PLACEHOLDER.sub("", text):
                found.append(f"{language}.po: {message_id!r} has a lone % (write %% for one)")
            if message_id in reference and placeholders(text) != placeholders(
                reference[message_id]
            ):
                found.append(
                    f"{language}.po: {message_id!r} names {placeholders(text)}, "
                    f"the Japanese {placeholders(reference[message_id])}"
                )
    return found


def read_files(files: Iterable[tuple[str, str]]) -> dict[str, Catalog]:
    """Read `(language, .po source)` pairs, Japanese first then by code."""
    catalogs = {language: _read(language, source) for language, source in files}
    order = sorted(catalogs, key=lambda language: (language != JAPANESE, language))
    return {language: catalogs[language] for language in order}


def shipped_files() -> list[tuple[str, str]]:
    """The `.po` files of this package, as `(language, source)`."""
    package = resources.files(__package__)
    return [
        (entry.name.removesuffix(".po"), entry.read_text(encoding="utf-8"))
        for entry in package.iterdir()
        if entry.name.endswith(".po")
    ]


@functools.cache
def catalogues() -> Mapping[str, Catalogue]:
    """Every shipped language's catalogue, Japanese first, checked; read once."""
    catalogs = read_files(shipped_files())
    found = problems(catalogs)
    if found:
        raise CatalogueError("the message catalogues are not usable:\n  " + "\n  ".join(found))
    return {language: Catalogue(language, catalog) for language, catalog in catalogs.items()}


def languages() -> tuple[str, ...]:
    """The languages a member may choose: one per catalogue file, Japanese first."""
    return tuple(catalogues())


def catalogue(language: str) -> Catalogue:
    """The catalogue of `language`; a language without one is a programmer error."""
    found = catalogues().get(language)
    if found is None:
        raise KeyError(f"there is no {language}.po catalogue")
    return found
