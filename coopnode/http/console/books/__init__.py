"""The accounts office's part of the console (issue 13 §4–§6): the daily settlement (日計)
and its closing (締め), its CSV and charts, the reconciliation of card and convenience-store
payments against the journal, and the unused-balance report (未使用残高).

    api         the routes, each declaring its permission (`staff_may`)
    csv_files   CSV that Excel opens (UTF-8 with a BOM, or Shift_JIS)
    charts      SVG charts drawn on the server

The figures come from the wallet shards' journals (`actors.wallet.books_client`); a
closed day is kept by each shard beside its journal (`actors.wallet.books`).
"""

from coopnode.http.console.books.api import BOOKS_ROUTES, books_reader_key

__all__ = ["BOOKS_ROUTES", "books_reader_key"]
