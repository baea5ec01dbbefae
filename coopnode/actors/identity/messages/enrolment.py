"""Enrolment (FLOWS §0): what staff type or import to enrol a member, and its answer."""

from __future__ import annotations

from typing import Annotated

import msgspec

from coopnode.actors.identity.messages.base import BirthDate, IdentityMessage, Name
from coopnode.domain.messages import Booked, DepositYen, Label, MemberNo


class InsuranceItem(IdentityMessage, frozen=True):
    """One mutual-aid or insurance product paid at enrolment, e.g. 学生総合共済 14,400 yen."""

    label: Annotated[str, msgspec.Meta(min_length=1, max_length=60)]
    amount_yen: DepositYen


class Enrolment(IdentityMessage, frozen=True):
    """What staff type (or import) to enrol a member (FLOWS §0)."""

    member_no: MemberNo
    name: Name
    kana: Name
    birth_date: BirthDate
    mail: Annotated[str, msgspec.Meta(min_length=3, max_length=254)]
    phone: Annotated[str, msgspec.Meta(min_length=4, max_length=32)]
    coop: Label
    share_units: Annotated[int, msgspec.Meta(ge=1, le=1000, description="shares (口)")]
    insurance: Annotated[list[InsuranceItem], msgspec.Meta(max_length=10)] = msgspec.field(
        default_factory=list
    )
    emoney_yen: DepositYen = 0
    meal_plan: Label = "none"
    meal_yen: DepositYen = 0


class Enrol(IdentityMessage, frozen=True, tag="enrol"):
    actor: str
    enrolment: Enrolment


class Enrolled(IdentityMessage, frozen=True, tag="enrolled"):
    member_no: str
    created: bool
    total_yen: int
    wallet: Booked | None = None
