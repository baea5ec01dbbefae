"""The counter (窓口): a clerk finds a member, reads their file, changes their address
after the identity check, and records a withdrawal (脱退)."""

from __future__ import annotations

from coopnode.actors.identity.messages.base import BirthDate, IdentityMessage, Text
from coopnode.domain.counter import CounterQuery, FindBy, IdDocument
from coopnode.domain.messages import MemberNo


class CounterFind(IdentityMessage, frozen=True, tag="counter_find"):
    """Find members by number, kana or address (a card's member is the front's to find:
    the registry's copy is there)."""

    by: FindBy
    query: CounterQuery


class CounterMember(IdentityMessage, frozen=True, tag="counter_member"):
    member_no: MemberNo


class CounterChangeMail(IdentityMessage, frozen=True, tag="counter_change_mail"):
    """The counter's address change (FLOWS §1, after first use), with the check the
    online flow makes (the birth date the member states, against the account) and the
    photo identification the clerk saw, both written to the audit log."""

    actor: str
    member_no: MemberNo
    mail: Text
    birth_date: BirthDate
    identification: IdDocument


class CounterWithdrawn(IdentityMessage, frozen=True, tag="counter_withdrawn"):
    """The member withdrew: their wallet is closed (the front did it first); the account
    is marked withdrawn and its sessions end."""

    actor: str
    member_no: MemberNo
    detail: Text


class MemberCard(IdentityMessage, frozen=True):
    """A member as a search lists them."""

    member_no: str
    coop: str
    name: str
    kana: str
    mail: str
    withdrawn: bool


class CounterFound(IdentityMessage, frozen=True, tag="counter_found"):
    members: list[MemberCard]
    # More matched than were listed (`COUNTER_RESULTS_MAX`), or the scan stopped at its
    # bound: the clerk narrows the search.
    more: bool


class MemberFile(IdentityMessage, frozen=True, tag="member_file"):
    """What the counter shows of a member's account (the wallet's part is the wallet's)."""

    member_no: str
    coop: str
    name: str
    kana: str
    birth_date: str
    mail: str
    phone: str
    enrolled_at_s: float
    share_units: int
    withdrawn_at_s: float
    password_set: bool
    wallet_registered: bool
