"""Every page the browser tests reach is checked as a member's phone shows it (issue 14).

`watch(page)` hooks one check onto a page: Playwright runs it before the first action or
assertion on each new document (a locator handler on the root element of a document not
yet checked), so every page the walk reaches goes through `check_page` before the test
touches it. `visit` (a `goto` or `reload` that no action follows) and the contexts'
teardown check what no action reached. The walks run once per language (the `lang`
fixture), so every page is checked in Japanese and in English.

A check, at the phone's 390 × 844 viewport:
- no horizontal overflow: the page is no wider than the screen;
- axe-core (axe-playwright-python, which bundles its script): no violation of serious or
  critical impact; the others are listed in artifacts/axe/<lang>.txt for review;
- a full-page screenshot under artifacts/screenshots/pages/<lang>/;
- for a page with the signed-in menu, the same again with the menu open.

A document is marked (`data-phone-checked`) once checked. A page whose path and kinds of
element were already checked in its language (the same screen showing other numbers, or
more rows of the same list) is not checked again, which keeps the suite's time in bounds;
a screen in another state (an error shown, a list empty) has other elements and is
checked.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from axe_playwright_python.base import AXE_SCRIPT
from playwright.sync_api import BrowserContext, Page

from tests.nodeproc import REPO

ARTIFACTS = REPO / "artifacts"
PAGE_SHOTS = ARTIFACTS / "screenshots" / "pages"
AXE_NOTES = ARTIFACTS / "axe"
MARK = "data-phone-checked"
UNCHECKED = f"html:not([{MARK}])"
BLOCKING_IMPACTS = ("serious", "critical")
# axe's default rule set (WCAG 2.0–2.2 A and AA and best practices), violations only.
AXE_OPTIONS: dict[str, Any] = {"resultTypes": ["violations"]}

# A page's shape: its language, its path and the kinds of element it holds (tag, id and
# classes, numbers left out), so that a list of two records has the shape of a list of one.
_SHAPE_SCRIPT = """() => {
  const kinds = new Set();
  for (const element of document.body.querySelectorAll("*")) {
    const id = element.id ? "#" + element.id.replace(/[0-9]+/g, "N") : "";
    const classes = typeof element.className === "string" ? element.className : "";
    kinds.add(element.tagName + id + (classes ? "." + classes : ""));
  }
  const path = location.pathname.replace(/[0-9a-f]{8,}|[0-9]+/g, "N");
  return [document.documentElement.lang, path, ...[...kinds].sort()].join(" ");
}"""
_MARK_SCRIPT = f"""() => {{
  document.documentElement.setAttribute("{MARK}", "1");
  return {{
    lang: document.documentElement.lang,
    path: location.pathname,
    scrollWidth: document.scrollingElement.scrollWidth,
    viewportWidth: window.innerWidth,
    hasMenu: document.querySelector("details.nav-menu") !== null,
  }};
}}"""
_WIDE_SCRIPT = """() => [...document.body.querySelectorAll("*")]
  .filter((element) => element.getBoundingClientRect().right > window.innerWidth + 0.5)
  .slice(0, 5)
  .map((element) => element.tagName + (element.id ? "#" + element.id : "")
    + " " + Math.round(element.getBoundingClientRect().right) + "px")"""
_MENU_SCRIPT = """(open) => {
  const menu = document.querySelector("details.nav-menu");
  menu.open = open;
}"""


@dataclass
class Checked:
    """What this run of the suite has checked, shared by every page."""

    shapes: set[str] = field(default_factory=set)
    counts: dict[str, int] = field(default_factory=dict)
    pages: int = 0
    documents: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def spent(self, phase: str, since: float) -> None:
        self.seconds[phase] = self.seconds.get(phase, 0.0) + time.monotonic() - since

    def summary(self) -> str:
        spent = ", ".join(f"{phase} {seconds:.1f} s" for phase, seconds in self.seconds.items())
        return (
            f"{self.documents} documents met, {self.pages} distinct pages checked "
            f"(axe, overflow, screenshot); time: {spent}\n"
        )

    def next_name(self, lang: str, path: str, test: str) -> str:
        key = f"{lang}/{test}"
        self.counts[key] = self.counts.get(key, 0) + 1
        slug = re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-") or "root"
        slug = re.sub(r"[0-9a-f]{12,}|[0-9]{6,}", "N", slug)
        return f"{test}-{self.counts[key]:02d}-{slug}"


CHECKED = Checked()


@dataclass
class Watched:
    test: str


_WATCHED: dict[int, Watched] = {}
_CONTEXT_TESTS: dict[int, str] = {}


def watch(page: Page, test: str) -> Page:
    """Check every document of `page` before the test's first action on it."""
    _WATCHED[id(page)] = Watched(test=_short(test))
    page.add_locator_handler(page.locator(UNCHECKED), lambda: check_page(page))
    return page


def watch_context(context: BrowserContext, test: str) -> BrowserContext:
    _CONTEXT_TESTS[id(context)] = test
    return context


def open_page(context: BrowserContext) -> Page:
    """A new tab of `context`, watched like the test's first."""
    return watch(context.new_page(), _CONTEXT_TESTS.get(id(context), "page"))


def close_context(context: BrowserContext) -> None:
    """Check what the context's pages show last, then close it."""
    try:
        check_pages(context.pages)
    finally:
        _CONTEXT_TESTS.pop(id(context), None)
        context.close()


def visit(page: Page, url: str | None = None) -> None:
    """`goto` (or `reload`, without a URL) and check the page reached, for the steps of a
    walk that load a page and act on none of it."""
    if url is None:
        page.reload()
    else:
        page.goto(url)
    check_page(page)


def check_pages(pages: list[Page]) -> None:
    """The last document of each page, which no action may have reached."""
    for page in pages:
        if not page.is_closed():
            check_page(page)
        _WATCHED.pop(id(page), None)


def check_page(page: Page) -> None:
    """Check the page's current document once (see the module's docstring)."""
    page.wait_for_load_state("load")
    if page.evaluate(f"() => document.documentElement.hasAttribute('{MARK}')"):
        return
    started = time.monotonic()
    CHECKED.documents += 1
    shape = hashlib.sha256(page.evaluate(_SHAPE_SCRIPT).encode()).hexdigest()
    facts = page.evaluate(_MARK_SCRIPT)
    CHECKED.spent("shape", started)
    if shape in CHECKED.shapes:
        return
    CHECKED.shapes.add(shape)
    CHECKED.pages += 1
    watched = _WATCHED.get(id(page), Watched(test="page"))
    lang, path = str(facts["lang"]), str(facts["path"])
    name = CHECKED.next_name(lang, path, watched.test)
    where = f"{path} ({lang}, {name})"
    if int(facts["scrollWidth"]) > int(facts["viewportWidth"]):
        wide = page.evaluate(_WIDE_SCRIPT)
        raise AssertionError(
            f"{where} is {facts['scrollWidth']} px wide on a {facts['viewportWidth']} px "
            f"screen; wider than the screen: {wide}"
        )
    _axe(page, where, lang)
    _shot(page, lang, name)
    if facts["hasMenu"] and f"menu-{lang}" not in CHECKED.shapes:
        CHECKED.shapes.add(f"menu-{lang}")
        page.evaluate(_MENU_SCRIPT, True)
        try:
            _axe(page, f"{where} with the menu open", lang)
            _shot(page, lang, f"{name}-menu")
        finally:
            page.evaluate(_MENU_SCRIPT, False)


def _axe(page: Page, where: str, lang: str) -> None:
    started = time.monotonic()
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE_SCRIPT)
    results = page.evaluate("(options) => axe.run(document, options)", AXE_OPTIONS)
    CHECKED.spent("axe", started)
    violations: list[dict[str, Any]] = results["violations"]
    blocking = [v for v in violations if v.get("impact") in BLOCKING_IMPACTS]
    others = [v for v in violations if v.get("impact") not in BLOCKING_IMPACTS]
    if others:
        AXE_NOTES.mkdir(parents=True, exist_ok=True)
        with (AXE_NOTES / f"{lang}.txt").open("a", encoding="utf-8") as notes:
            for violation in others:
                notes.write(f"{where}: {_describe(violation)}\n")
    if blocking:
        report = "\n".join(_describe(violation) for violation in blocking)
        raise AssertionError(f"axe found serious or critical violations on {where}:\n{report}")


def _describe(violation: dict[str, Any]) -> str:
    targets = [" ".join(map(str, node["target"])) for node in violation["nodes"][:5]]
    return f"{violation['id']} ({violation['impact']}): {violation['help']} at {targets}"


def _shot(page: Page, lang: str, name: str) -> Path:
    folder = PAGE_SHOTS / lang
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    started = time.monotonic()
    page.screenshot(path=str(path), full_page=True)
    CHECKED.spent("screenshot", started)
    return path


def _short(test: str) -> str:
    """`tests/portal/test_x.py::test_y[en]` → `x-y`."""
    name = test.split("::")[-1].split("[")[0]
    module = test.split("::")[0].rsplit("/", 1)[-1].removesuffix(".py").removeprefix("test_")
    return re.sub(r"[^a-z0-9]+", "-", f"{module}-{name.removeprefix('test_')}".lower())[:60]


def fresh_notes() -> None:
    """Start the run's lists of minor axe findings afresh."""
    for notes in AXE_NOTES.glob("*.txt"):
        notes.unlink()


def write_summary() -> None:
    """What the run checked, and the time it took, beside the axe notes."""
    AXE_NOTES.mkdir(parents=True, exist_ok=True)
    (AXE_NOTES / "summary.txt").write_text(CHECKED.summary(), encoding="utf-8")
