"""Staff: their accounts, their changes to a member's account, and the audit log."""

from __future__ import annotations

from coopnode.actors.identity.messages.base import IdentityMessage, Name, Secret, Text
from coopnode.domain.bounds import Cursor, PageLines
from coopnode.domain.messages import MemberNo


class CreateStaff(IdentityMessage, frozen=True, tag="create_staff"):
    actor: str
    staff_id: Text
    name: Name
    password: Secret


class StaffResume(IdentityMessage, frozen=True, tag="staff_resume"):
    actor: str
    member_no: MemberNo


class StaffChangeMail(IdentityMessage, frozen=True, tag="staff_change_mail"):
    actor: str
    member_no: MemberNo
    mail: Text


class AuditList(IdentityMessage, frozen=True, tag="audit_list"):
    before_seq: Cursor = 0
    limit: PageLines = 100


class AuditRecord(IdentityMessage, frozen=True, tag="audit_record"):
    """A staff action carried out by the front (a wallet change) for the audit log."""

    actor: str
    action: str
    target: str
    detail: str = ""


class StaffCreated(IdentityMessage, frozen=True, tag="staff_created"):
    staff_id: str
    otpauth_uri: str
    secret: str


class AuditEntryView(IdentityMessage, frozen=True):
    seq: int
    at_s: float
    actor: str
    action: str
    target: str
    detail: str


class AuditPage(IdentityMessage, frozen=True, tag="audit_page"):
    entries: list[AuditEntryView]
    next_before_seq: int
