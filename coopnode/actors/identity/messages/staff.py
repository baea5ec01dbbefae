"""Staff: their accounts, their changes to a member's account, and the audit log."""

from __future__ import annotations

from typing import Annotated

import msgspec

from coopnode.actors.identity.messages.base import IdentityMessage, Name, Secret, Text
from coopnode.domain.bounds import Cursor, PageLines
from coopnode.domain.messages import MemberNo
from coopnode.domain.staff import Permission, Role


class CreateStaff(IdentityMessage, frozen=True, tag="create_staff"):
    actor: str
    staff_id: Text
    name: Name
    password: Secret
    role: Role = Role.COUNTER_CLERK


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


# Staff access (issue 13 §1): roles, the bootstrap, machines' API tokens -----------------

# A staff id or a token's name, as typed; the actor checks the form.
StaffText = Annotated[str, msgspec.Meta(max_length=64)]
TokenId = Annotated[str, msgspec.Meta(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")]


class BootstrapAdministrator(IdentityMessage, frozen=True, tag="bootstrap_administrator"):
    """The staff token's one use: the first administrator, refused once one exists. A
    machine token may be made with it (the load harness's, a test node's), shown once."""

    actor: str
    staff_id: Text
    name: Name
    password: Secret
    token_name: StaffText = ""
    token_scopes: list[Permission] = msgspec.field(default_factory=list)


class Bootstrapped(IdentityMessage, frozen=True, tag="bootstrapped"):
    staff: StaffCreated
    token: TokenCreated | None = None


class AuthorizeStaff(IdentityMessage, frozen=True, tag="authorize_staff"):
    """Who calls, if they may: a staff session (with its CSRF token for a change), or an
    `Authorization: Bearer` API token; `permission` None asks only for a live staff
    session (the console's home and sign-out)."""

    session_id: Secret = ""
    csrf_token: Secret | None = None
    authorization: Secret = ""
    permission: Permission | None = None


class StaffAuthorized(IdentityMessage, frozen=True, tag="staff_authorized"):
    """The caller admitted: a staff member (`role` set) or a machine's token."""

    actor: str  # the audit log's name: `staff:<id>` or `token:<name>`
    staff_id: str = ""
    name: str = ""
    role: Role | None = None
    token_id: str = ""
    permissions: list[Permission] = msgspec.field(default_factory=list)


class StaffView(IdentityMessage, frozen=True):
    staff_id: str
    name: str
    role: Role
    created_at_s: float
    disabled_at_s: float


class StaffList(IdentityMessage, frozen=True, tag="staff_list"):
    pass


class StaffRoster(IdentityMessage, frozen=True, tag="staff_roster"):
    staff: list[StaffView]


class StaffSetRole(IdentityMessage, frozen=True, tag="staff_set_role"):
    actor: str
    staff_id: StaffText
    role: Role


class StaffDisable(IdentityMessage, frozen=True, tag="staff_disable"):
    """Disable an account: it signs in no more and every session it holds ends now."""

    actor: str
    staff_id: StaffText


class TokenCreate(IdentityMessage, frozen=True, tag="token_create"):
    actor: str
    name: StaffText
    scopes: list[Permission]


class TokenCreated(IdentityMessage, frozen=True, tag="token_created"):
    """The token itself, shown this once: only its digest is kept."""

    token_id: str
    name: str
    scopes: list[Permission]
    token: str


class TokenView(IdentityMessage, frozen=True):
    token_id: str
    name: str
    scopes: list[Permission]
    created_at_s: float
    created_by: str
    last_used_s: float
    revoked_at_s: float


class TokenList(IdentityMessage, frozen=True, tag="token_list"):
    pass


class TokenRoster(IdentityMessage, frozen=True, tag="token_roster"):
    tokens: list[TokenView]


class TokenRevoke(IdentityMessage, frozen=True, tag="token_revoke"):
    actor: str
    token_id: TokenId
