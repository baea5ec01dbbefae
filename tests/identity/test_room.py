"""The identity room imports what its package docstring says it may, and nothing else."""

from __future__ import annotations

import ast
from pathlib import Path

import coopnode.actors.identity

ROOM = Path(coopnode.actors.identity.__file__).parent
# What every module of the room may import from the node.
ALLOWED = (
    "coopnode.domain",
    "coopnode.actors.identity",
    "coopnode.actors.notify.mails",
    "coopnode.actors.notify.messages",
    "coopnode.catalogues",
    "coopnode.actors.kernel",
    "coopnode.settings",
)
# The two shells, and what each reaches for its own job.
SHELLS: dict[str, tuple[str, ...]] = {
    "actor.py": (
        "ray",
        "coopnode.actors.wallet.client",
        "coopnode.actors.wallet.shard",
        "coopnode.logs",
        "coopnode.metrics",
    ),
    "store.py": ("lmdb",),
}
WATCHED = ("coopnode", "ray", "lmdb", "aiohttp")


def imported(path: Path) -> set[str]:
    """Every module `path` imports, `from package import module` read as the module."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(f"{prefix}.") for prefix in prefixes)


def test_every_module_of_the_room_imports_only_what_it_may() -> None:
    strays: dict[str, list[str]] = {}
    for path in sorted(ROOM.rglob("*.py")):
        module = path.relative_to(ROOM).as_posix()
        allowed = ALLOWED + SHELLS.get(module, ())
        found = sorted(
            name for name in imported(path) if _within(name, WATCHED) and not _within(name, allowed)
        )
        if found:
            strays[module] = found
    assert strays == {}


def test_the_room_is_read_whole() -> None:
    modules = {path.relative_to(ROOM).as_posix() for path in ROOM.rglob("*.py")}
    assert {"service.py", "context.py", "signin.py", "actor.py", "store.py"} <= modules
    assert {"messages/__init__.py", "messages/refusals.py", "messages/desk.py"} <= modules
