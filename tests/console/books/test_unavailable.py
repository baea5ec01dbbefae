"""A node of replicated shards does not serve the books yet, and says so (409), rather
than asking a replica for what it does not have."""

from __future__ import annotations

import asyncio
from datetime import date
from types import SimpleNamespace
from typing import Any

import pytest

from coopnode.actors.wallet.books_client import BooksReader, BooksUnavailable


def reader_of(*replicas: Any) -> BooksReader:
    wallet = SimpleNamespace(
        batchers=[SimpleNamespace(replicas=each, actor=None) for each in replicas]
    )
    return BooksReader(wallet)  # type: ignore[arg-type]


def test_replicated_shards_do_not_serve_the_books() -> None:
    assert reader_of(None, None).served()
    replicated = reader_of(None, object())
    assert not replicated.served()
    with pytest.raises(BooksUnavailable):
        asyncio.run(replicated.day(date(2026, 6, 1)))
