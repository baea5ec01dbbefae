"""Who among staff and machines may do what (issue 13 §1): the check every staff route
asks for, staff accounts' roles and their disabling, machines' API tokens, and the staff
token's one use, the first administrator.

    AuthorizeStaff   a staff session whose account's role grants the permission, or a
                     live API token whose scopes include it; else 401 (no such session
                     or token) or 403 `forbidden` with the permission it lacks
    Bootstrap…       the first administrator, refused once an active one exists
    StaffSetRole     a new role; the last active administrator keeps theirs
    StaffDisable     signs in no more, its sessions end now; not the last administrator
    Token…           made with a name and scopes, shown once, kept as a digest, listed,
                     revoked (refused from the next call on)

Every change is written to the audit log in the transaction that makes it.
"""

from __future__ import annotations

import re
import secrets

import msgspec

from coopnode.actors.identity.answers import answer, refused
from coopnode.actors.identity.context import IdentityContext
from coopnode.actors.identity.messages import (
    Answer,
    AuthorizeStaff,
    BootstrapAdministrator,
    Bootstrapped,
    CheckSession,
    CreateStaff,
    Done,
    IdentityReason,
    Principal,
    Refused,
    StaffAuthorized,
    StaffCreated,
    StaffDisable,
    StaffList,
    StaffRoster,
    StaffSetRole,
    StaffView,
    TokenCreate,
    TokenCreated,
    TokenList,
    TokenRevoke,
    TokenRoster,
    TokenView,
)
from coopnode.actors.identity.sessions import Sessions
from coopnode.actors.identity.staff import Staff
from coopnode.actors.identity.store import Tx
from coopnode.domain.identity import ApiTokenRecord, SessionKind, StaffAccount, digest
from coopnode.domain.staff import ROLE_PERMISSIONS, Permission, Role

# A token is 256 random bits after a prefix that says what it is (so a secret scanner,
# or a person, can tell one in a log or a paste); the id that names it is 48 bits.
TOKEN_PREFIX = "cn_"  # noqa: S105  # The prefix of every token, not a token.
TOKEN_BYTES = 32
TOKEN_ID_BYTES = 6
# A token's name: what the audit log calls it (`token:<name>`), so short and plain.
_TOKEN_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def _active_administrators(tx: Tx, limit: int) -> list[str]:
    return [
        staff.staff_id
        for staff in tx.staff_all(limit)
        if staff.role is Role.ADMINISTRATOR and not staff.disabled_at_s
    ]


def _view(token: ApiTokenRecord) -> TokenView:
    return TokenView(
        token_id=token.token_id,
        name=token.name,
        scopes=list(token.scopes),
        created_at_s=token.created_at_s,
        created_by=token.created_by,
        last_used_s=token.last_used_s,
        revoked_at_s=token.revoked_at_s,
    )


class StaffAccess:
    def __init__(self, context: IdentityContext, sessions: Sessions, staff: Staff) -> None:
        self.context = context
        self.sessions = sessions
        self.staff = staff

    # The check ----------------------------------------------------------------------------

    def authorize(self, request: AuthorizeStaff) -> Answer:
        if request.session_id:
            return answer(self._by_session(request))
        if request.authorization:
            return answer(self._by_token(request.authorization, request.permission))
        return answer(refused(IdentityReason.UNAUTHORIZED, "sign in, or send an API token"))

    def _by_session(self, request: AuthorizeStaff) -> StaffAuthorized | Refused:
        check = CheckSession(
            kinds=(SessionKind.STAFF,),
            session_id=request.session_id,
            csrf_token=request.csrf_token,
        )
        principal = self.sessions.check(check)
        if not isinstance(principal, Principal):
            return principal
        with self.context.store.read() as tx:
            staff = tx.staff(principal.subject)
        if staff is None or staff.disabled_at_s:
            return refused(IdentityReason.UNAUTHORIZED, "this staff account is disabled")
        permission = request.permission
        if permission is not None and permission not in ROLE_PERMISSIONS[staff.role]:
            return refused(
                IdentityReason.FORBIDDEN,
                f"the role {staff.role.value} does not grant {permission.value}",
            )
        return StaffAuthorized(
            actor=f"staff:{staff.staff_id}",
            staff_id=staff.staff_id,
            name=staff.name,
            role=staff.role,
            permissions=sorted(ROLE_PERMISSIONS[staff.role]),
        )

    def _by_token(
        self, authorization: str, permission: Permission | None
    ) -> StaffAuthorized | Refused:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.startswith(TOKEN_PREFIX):
            return refused(IdentityReason.UNAUTHORIZED, "a valid API token is required")
        key = digest(token.strip())
        now_s = self.context.clock()
        with self.context.store.read() as tx:
            record = tx.api_token(key)
        if record is None or record.revoked_at_s:
            return refused(IdentityReason.UNAUTHORIZED, "the API token is unknown or revoked")
        if permission is None or permission not in record.scopes:
            wanted = permission.value if permission is not None else "a staff session"
            return refused(
                IdentityReason.FORBIDDEN,
                f"the API token {record.name} is not granted {wanted}",
            )
        if now_s - record.last_used_s >= self.context.bounds.api_token_touch_interval_s:
            with self.context.store.write() as tx:
                current = tx.api_token(key)
                if current is not None:
                    tx.put_api_token(key, msgspec.structs.replace(current, last_used_s=now_s))
        return StaffAuthorized(
            actor=f"token:{record.name}",
            name=record.name,
            token_id=record.token_id,
            permissions=list(record.scopes),
        )

    # The first administrator ------------------------------------------------------------

    async def bootstrap(self, request: BootstrapAdministrator) -> Answer:
        limit = self.context.bounds.staff_accounts_max
        with self.context.store.read() as tx:
            if _active_administrators(tx, limit):
                return answer(self._bootstrap_done())
        if request.token_name:
            problem = self._token_problem(request.token_name, request.token_scopes)
            if problem is not None:
                return answer(problem)
        created = await self.staff.create(
            CreateStaff(
                actor=request.actor,
                staff_id=request.staff_id,
                name=request.name,
                password=request.password,
                role=Role.ADMINISTRATOR,
            )
        )
        if not isinstance(created.reply, StaffCreated):
            return created
        token = None
        if request.token_name:
            made = self._make_token(request.actor, request.token_name, request.token_scopes)
            if isinstance(made, Refused):
                return answer(made)
            token = made
        return answer(Bootstrapped(staff=created.reply, token=token))

    @staticmethod
    def _bootstrap_done() -> Refused:
        return refused(
            IdentityReason.BOOTSTRAP_DONE,
            "an administrator exists: the staff token no longer creates staff; "
            "an administrator does, in the console",
        )

    # Staff accounts ---------------------------------------------------------------------

    def list_staff(self, request: StaffList) -> StaffRoster:
        del request
        with self.context.store.read() as tx:
            accounts = tx.staff_all(self.context.bounds.staff_accounts_max)
        return StaffRoster(
            staff=[
                StaffView(
                    staff_id=staff.staff_id,
                    name=staff.name,
                    role=staff.role,
                    created_at_s=staff.created_at_s,
                    disabled_at_s=staff.disabled_at_s,
                )
                for staff in accounts
            ]
        )

    def _keeps_an_administrator(self, tx: Tx, staff: StaffAccount) -> Refused | None:
        """Refuse a change that would leave no active administrator: nobody could then
        manage staff or tokens (and the staff token would be needed again)."""
        others = [
            staff_id
            for staff_id in _active_administrators(tx, self.context.bounds.staff_accounts_max)
            if staff_id != staff.staff_id
        ]
        if staff.role is Role.ADMINISTRATOR and not staff.disabled_at_s and not others:
            return refused(IdentityReason.CONFLICT, "the last active administrator stays one")
        return None

    def set_role(self, request: StaffSetRole) -> Answer:
        with self.context.store.write() as tx:
            staff = tx.staff(request.staff_id)
            if staff is None:
                return answer(refused(IdentityReason.NOT_FOUND, "no such staff account"))
            if request.role is not Role.ADMINISTRATOR:
                problem = self._keeps_an_administrator(tx, staff)
                if problem is not None:
                    return answer(problem)
            tx.put_staff(msgspec.structs.replace(staff, role=request.role))
            tx.append_audit(
                at_s=self.context.clock(),
                actor=request.actor,
                action="staff.role",
                target=staff.staff_id,
                detail=f"{staff.role.value} → {request.role.value}",
            )
        return answer(Done(message="the role is changed"))

    def disable(self, request: StaffDisable) -> Answer:
        with self.context.store.write() as tx:
            staff = tx.staff(request.staff_id)
            if staff is None:
                return answer(refused(IdentityReason.NOT_FOUND, "no such staff account"))
            if staff.disabled_at_s:
                return answer(Done(message="the account was disabled already"))
            problem = self._keeps_an_administrator(tx, staff)
            if problem is not None:
                return answer(problem)
            now_s = self.context.clock()
            tx.put_staff(msgspec.structs.replace(staff, disabled_at_s=now_s))
            ended = tx.delete_sessions_of(staff.staff_id)
            tx.append_audit(
                at_s=now_s,
                actor=request.actor,
                action="staff.disable",
                target=staff.staff_id,
                detail=f"{ended} sessions ended",
            )
        return answer(Done(message="the account is disabled; its sessions have ended"))

    # API tokens -------------------------------------------------------------------------

    def _token_problem(self, name: str, scopes: list[Permission]) -> Refused | None:
        if not _TOKEN_NAME.match(name):
            return refused(
                IdentityReason.INVALID_INPUT,
                "a token's name is 1–64 lower-case letters, digits, dots, dashes or underscores",
            )
        if not scopes:
            return refused(IdentityReason.INVALID_INPUT, "a token needs at least one scope")
        return None

    def _make_token(
        self, actor: str, name: str, scopes: list[Permission]
    ) -> TokenCreated | Refused:
        problem = self._token_problem(name, scopes)
        if problem is not None:
            return problem
        bound = self.context.bounds.api_tokens_max
        token = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
        token_id = secrets.token_hex(TOKEN_ID_BYTES)
        chosen = sorted(set(scopes))
        with self.context.store.write() as tx:
            existing = tx.api_tokens(bound)
            if len(existing) >= bound:
                return refused(IdentityReason.CONFLICT, f"the node keeps at most {bound} tokens")
            if any(record.name == name for _, record in existing):
                return refused(IdentityReason.CONFLICT, f"a token named {name} exists already")
            now_s = self.context.clock()
            record = ApiTokenRecord(
                token_id=token_id, name=name, scopes=chosen, created_at_s=now_s, created_by=actor
            )
            tx.put_api_token(digest(token), record)
            tx.append_audit(
                at_s=now_s,
                actor=actor,
                action="token.create",
                target=f"token:{name}",
                detail=" ".join(scope.value for scope in chosen),
            )
        return TokenCreated(token_id=token_id, name=name, scopes=chosen, token=token)

    def create_token(self, request: TokenCreate) -> Answer:
        return answer(self._make_token(request.actor, request.name, request.scopes))

    def list_tokens(self, request: TokenList) -> TokenRoster:
        del request
        with self.context.store.read() as tx:
            tokens = [record for _, record in tx.api_tokens(self.context.bounds.api_tokens_max)]
        tokens.sort(key=lambda record: (bool(record.revoked_at_s), record.name))
        return TokenRoster(tokens=[_view(record) for record in tokens])

    def revoke_token(self, request: TokenRevoke) -> Answer:
        with self.context.store.write() as tx:
            found = next(
                (
                    (key, record)
                    for key, record in tx.api_tokens(self.context.bounds.api_tokens_max)
                    if record.token_id == request.token_id
                ),
                None,
            )
            if found is None:
                return answer(refused(IdentityReason.NOT_FOUND, "no such token"))
            key, record = found
            if record.revoked_at_s:
                return answer(Done(message="the token was revoked already"))
            now_s = self.context.clock()
            tx.put_api_token(key, msgspec.structs.replace(record, revoked_at_s=now_s))
            tx.append_audit(
                at_s=now_s,
                actor=request.actor,
                action="token.revoke",
                target=f"token:{record.name}",
            )
        return answer(Done(message="the token is revoked"))
