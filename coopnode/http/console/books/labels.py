"""The message ids of the books' codes: a settlement's lines and sources, a mismatch's
problem. The pages and the CSV name codes through these maps, never by joining strings."""

from __future__ import annotations

from coopnode.catalogues import N_
from coopnode.domain.books import OVERDRAFT, Line
from coopnode.domain.reconciliation import Problem

LINE_LABELS: dict[Line, str] = {
    Line.SALE: N_("books.line.sale"),
    Line.VOID: N_("books.line.void"),
    Line.REFUND: N_("books.line.refund"),
    Line.SETTLE: N_("books.line.settle"),
    Line.CHARGE: N_("books.line.charge"),
    Line.ENROLMENT: N_("books.line.enrolment"),
    Line.MOVE: N_("books.line.move"),
    Line.POINTS_ISSUED: N_("books.line.points_issued"),
    Line.POINTS_CLAWED_BACK: N_("books.line.points_clawed_back"),
}

SOURCE_LABELS: dict[str, str] = {
    "card": N_("books.source.card"),
    "konbini": N_("books.source.konbini"),
    "counter": N_("books.source.counter"),
    OVERDRAFT: N_("books.source.overdraft"),
}

PROBLEM_LABELS: dict[Problem, str] = {
    Problem.NOT_CREDITED: N_("books.problem.not_credited"),
    Problem.NO_PAYMENT: N_("books.problem.no_payment"),
    Problem.AMOUNT_DIFFERS: N_("books.problem.amount_differs"),
    Problem.REFUNDED_BUT_CREDITED: N_("books.problem.refunded_but_credited"),
}

METHOD_LABELS: dict[str, str] = {
    "card": N_("books.source.card"),
    "konbini": N_("books.source.konbini"),
}
