"""Family access (FLOWS §3 step 5): a member lets a guardian read their history, and the
guardian's side of it."""

from __future__ import annotations

from coopnode.actors.identity.messages.base import IdentityMessage, Text
from coopnode.domain.messages import MemberNo


class FamilyGrant(IdentityMessage, frozen=True, tag="family_grant"):
    """The member lets the holder of `guardian_mail`'s portal account read their history."""

    member_no: MemberNo
    guardian_mail: Text


class FamilyRevoke(IdentityMessage, frozen=True, tag="family_revoke"):
    member_no: MemberNo
    guardian_mail: Text


class FamilyList(IdentityMessage, frozen=True, tag="family_list"):
    """Both ends of one account's family access: its guardians and the members it sees."""

    member_no: MemberNo


class GuardianStart(IdentityMessage, frozen=True, tag="guardian_start"):
    """A guardian accepts an invitation: a code goes to the address if it was invited."""

    mail: Text


class GuardianWards(IdentityMessage, frozen=True, tag="guardian_wards"):
    """The members who granted a guardian (signed in as `guardian_mail`) family access."""

    guardian_mail: Text


class FamilyPerson(IdentityMessage, frozen=True):
    # A guardian is known by the mail address the member typed (`mail`); a member who
    # granted access by number and name, never by address.
    member_no: str
    name: str
    masked_mail: str
    mail: str = ""


class Family(IdentityMessage, frozen=True, tag="family"):
    guardians: list[FamilyPerson]  # who may read this account's history
    wards: list[FamilyPerson]  # whose history this account may read
