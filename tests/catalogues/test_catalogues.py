"""The message catalogues' check, in `make test`: every language holds every id with the
same placeholders, every id is used somewhere (Babel's extractors over the Python code and
the templates: `N_`/`_`/`gettext` calls, and `jinja2.ext.babel_extract`) and every id used
is in the catalogues; the label maps cover what they label; and a third language is one
more file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract
from jinja2.ext import babel_extract

from coopnode.actors.identity.messages import IdentityReason
from coopnode.actors.payments.messages import ChargeStatus
from coopnode.catalogues import (
    ENGLISH,
    JAPANESE,
    N_,
    CatalogueError,
    catalogue,
    catalogues,
    languages,
    placeholders,
    problems,
    read_files,
    shipped_files,
)
from coopnode.catalogues.labels import PURSE_LABELS, WALLET_SCOPE_LABELS, WALLET_SCOPE_TEXTS
from coopnode.domain.identity import PasswordProblem, WalletScope
from coopnode.domain.member_desk import (
    AnswerBy,
    ApplicationStatus,
    Attendance,
    InquiryCategory,
    InquiryStatus,
)
from coopnode.domain.money import Purse
from coopnode.domain.passcodes import PasscodeReason
from coopnode.http.portal import labels
from coopnode.payments.konbini import STORES

PACKAGE = Path(__file__).parents[2] / "coopnode"
# The rooms' templates: the portal's and the console's.
TEMPLATE_FILES = sorted(PACKAGE.glob("http/*/templates/**/*.html"))
# The templates are read as the rooms' environments read them (`setup_templates`).
_JINJA_OPTIONS = {
    "extensions": "jinja2.ext.i18n",
    "newstyle_gettext": "true",
    "trim_blocks": "true",
    "lstrip_blocks": "true",
    "silent": "false",
}


def _extracted() -> dict[str, list[str]]:
    """Every message id the code and the templates name, with where."""
    found: dict[str, list[str]] = {}
    sources: list[tuple[Path, Any, dict[str, Any]]] = [
        (path, "python", {}) for path in sorted(PACKAGE.rglob("*.py"))
    ]
    sources += [(path, babel_extract, _JINJA_OPTIONS) for path in TEMPLATE_FILES]
    for path, method, options in sources:
        with path.open("rb") as source:
            for line, message, _comments, _context in extract(
                method,
                source,
                keywords=DEFAULT_KEYWORDS,
                options=options,
            ):
                message_id = message if isinstance(message, str) else message[0]
                found.setdefault(message_id, []).append(f"{path.relative_to(PACKAGE)}:{line}")
    return found


def test_every_language_holds_every_id_with_the_same_placeholders() -> None:
    assert problems(read_files(shipped_files())) == []
    assert languages()[:2] == (JAPANESE, ENGLISH)


def test_every_id_is_used_and_every_id_used_is_in_the_catalogues() -> None:
    used = _extracted()
    known = catalogue(JAPANESE).message_ids
    assert len(used) > 400, "extraction found too little: is it reading the right files?"
    missing = {message_id: where for message_id, where in used.items() if message_id not in known}
    assert missing == {}, "ids used but in no catalogue"
    assert sorted(known - used.keys()) == [], "ids in the catalogues that nothing uses"


def test_no_template_builds_an_id_by_joining_strings() -> None:
    assert any("console" in str(template) for template in TEMPLATE_FILES)
    for template in TEMPLATE_FILES:
        source = template.read_text(encoding="utf-8")
        joined = re.findall(r"""_\(\s*["'][^"']*["']\s*~""", source)
        assert joined == [], template.name
        assert not re.search(r"(?<![\w.])t\(", source), f"{template.name} calls t(): use _()"


def test_the_check_finds_a_missing_id_an_extra_one_and_a_changed_placeholder() -> None:
    files = dict(shipped_files())
    english = files[ENGLISH]
    broken = english.replace('msgid "site.name"', 'msgid "site.nickname"')
    broken = broken.replace("%(amount)s", "%(sum)s", 1)
    broken += '\nmsgid "nav.nowhere"\nmsgstr "Nowhere"\n'
    found = problems(read_files([(JAPANESE, files[JAPANESE]), (ENGLISH, broken)]))
    assert "en.po: 'site.name' is missing" in found
    assert "en.po: 'site.nickname' is in no ja.po" in found
    assert "en.po: 'nav.nowhere' is in no ja.po" in found
    assert any("names ['%(sum)s']" in problem for problem in found), found
    # A text left empty, markup in a text, and a percent sign not written %%.
    emptied = english.replace('msgstr "Home"', 'msgstr ""', 1)
    marked = english.replace('msgstr "Home"', 'msgstr "<b>Home</b>"', 1)
    percent = english.replace('msgstr "Home"', 'msgstr "100% Home"', 1)
    for variant, expected in (
        (emptied, "has no text"),
        (marked, "holds markup"),
        (percent, "lone %"),
    ):
        found = problems(read_files([(JAPANESE, files[JAPANESE]), (ENGLISH, variant)]))
        assert any(expected in problem for problem in found), (expected, found)


def test_a_file_naming_an_id_twice_or_another_language_is_refused() -> None:
    english = dict(shipped_files())[ENGLISH]
    twice = english + '\nmsgid "nav.home"\nmsgstr "Home again"\n'
    with pytest.raises(CatalogueError, match=r"names nav\.home more than once"):
        read_files([(ENGLISH, twice)])
    with pytest.raises(CatalogueError, match='needs the header "Language: vi'):
        read_files([("vi", english)])


def test_a_third_language_is_one_more_file() -> None:
    """A copy of the English file under another code is a complete language (the README's
    recipe), listed after Japanese; a copy missing one text is refused."""
    files = dict(shipped_files())
    vietnamese = files[ENGLISH].replace("Language: en", "Language: vi")
    catalogs = read_files([*files.items(), ("vi", vietnamese)])
    assert list(catalogs) == [JAPANESE, ENGLISH, "vi"]
    assert problems(catalogs) == []
    short = vietnamese.replace('msgid "nav.home"\nmsgstr "Home"\n', "")
    found = problems(read_files([*files.items(), ("vi", short)]))
    assert found == ["vi.po: 'nav.home' is missing"]
    renamed = vietnamese.replace("Language: vi", "Language: vietnamese")
    bad_name = problems(read_files([*files.items(), ("vietnamese", renamed)]))
    assert any("not a language code" in problem for problem in bad_name)


def test_each_language_names_itself() -> None:
    names = {language: catalogue(language).gettext(N_("language.name")) for language in languages()}
    assert names[JAPANESE] == "日本語" and names[ENGLISH] == "English"


def test_placeholders_are_read_with_their_format() -> None:
    assert placeholders("%(year)s年%(month)02d月 100%%") == ["%(month)02d", "%(year)s"]
    assert catalogue(ENGLISH).text(N_("portal.month_title"), year=2026, month=3) == "2026-03"


def test_an_id_in_no_catalogue_is_a_programmer_error() -> None:
    with pytest.raises(KeyError, match=r"no message 'no\.such\.id'"):
        catalogue(JAPANESE).gettext("no.such.id")
    with pytest.raises(KeyError, match=r"no xx\.po"):
        catalogue("xx")


@pytest.mark.parametrize(
    ("labelled", "every"),
    [
        (PURSE_LABELS, set(Purse)),
        (WALLET_SCOPE_LABELS, set(WalletScope)),
        (labels.INQUIRY_CATEGORY_LABELS, set(InquiryCategory)),
        (labels.ANSWER_BY_LABELS, set(AnswerBy)),
        (labels.INQUIRY_STATUS_LABELS, set(InquiryStatus)),
        (labels.APPLICATION_STATUS_LABELS, set(ApplicationStatus)),
        (labels.ATTENDANCE_LABELS, set(Attendance)),
        (labels.KONBINI_LABELS, set(STORES)),
        (labels.KONBINI_STEPS, set(STORES)),
        (labels.PROVIDED_BY_LABELS, {"post", "download"}),
    ],
)
def test_a_label_map_covers_what_it_labels(labelled: dict[object, str], every: set[object]) -> None:
    assert set(labelled) == every
    for message_id in labelled.values():
        assert message_id in catalogue(JAPANESE).message_ids


def test_every_refusal_of_the_identity_actor_has_its_sentence_or_reads_generic() -> None:
    reasons = {reason.value for reason in IdentityReason}
    with_text = reasons & set(labels.REFUSAL_TEXTS)
    assert reasons - with_text == labels.GENERIC_REFUSALS
    assert labels.refusal_text_id("a_reason_nobody_gave") == "error.generic"


def test_every_refusal_of_a_passcode_or_a_password_has_its_sentence() -> None:
    reasons = {f"passcode_{reason.value}" for reason in PasscodeReason if reason.value != "ok"}
    reasons |= {f"password_{problem.value}" for problem in PasswordProblem}
    assert reasons <= set(labels.REFUSAL_TEXTS)


def test_every_charge_status_a_page_shows_has_a_label() -> None:
    shown = set(ChargeStatus) - {
        ChargeStatus.AUTHORIZED,
        ChargeStatus.CAPTURED,
        ChargeStatus.FAILED,
    }
    assert set(labels.CHARGE_STATUS_LABELS) == shown


def test_every_id_the_charging_checks_name_has_its_sentence() -> None:
    """The domain's charging checks and the charging service name ids as plain strings
    (they may not import the catalogues); each must be in the portal's map."""
    named: set[str] = set()
    for module in (PACKAGE / "domain" / "charging.py", PACKAGE / "payments" / "charging.py"):
        named |= set(re.findall(r'"(error\.\w+)"', module.read_text(encoding="utf-8")))
    shown_to_members = named - {"error.unknown", "error.not_refundable", "error.already_credited"}
    assert shown_to_members <= set(labels.CHARGE_TEXTS), shown_to_members - set(labels.CHARGE_TEXTS)


def test_the_scope_texts_come_from_the_catalogues() -> None:
    for scope, text in WALLET_SCOPE_TEXTS.items():
        label = WALLET_SCOPE_LABELS[scope]
        for language in catalogues():
            assert catalogue(language).gettext(label) in text
