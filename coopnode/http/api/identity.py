"""The identity JSON API: enrolment, the member flows of FLOWS §1–§5, sessions, TOTP and
staff, described by one route table that also feeds the OpenAPI document.

Each flow step is a POST with the flow id in its body (never in the URL, which would put
a bearer handle in access logs). Steps that finish a sign-in set the session cookie and
answer with the CSRF token.

Long, and mostly the route table: one declaration per identity route.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
import segno
from aiohttp import web

from coopnode.actors.identity.messages import (
    AuditList,
    AuditPage,
    CreateStaff,
    Done,
    Enrol,
    Enrolled,
    Enrolment,
    FlowAnswer,
    FlowId,
    FlowStep,
    GetProfile,
    Grants,
    ListGrants,
    MailChangeStart,
    PasswordStart,
    Profile,
    RevokeGrant,
    SessionIssued,
    SignIn,
    SignOut,
    StaffChangeMail,
    StaffCreated,
    StaffResume,
    TotpBegin,
    TotpConfirm,
    TotpEnrolment,
    WalletLoginStart,
)
from coopnode.domain.identity import FlowKind, SessionKind
from coopnode.domain.staff import Permission, Role
from coopnode.http.api.wallet import member_status_changed
from coopnode.http.edge import (
    PUBLIC,
    Body,
    Route,
    calling_member,
    member_no_of,
    read_body,
    read_query,
    sessions,
    staff_actor,
    staff_may,
)
from coopnode.http.identity_front import (
    MEMBER_KINDS,
    SessionAnswer,
    ask,
    json_response,
    session_id_of,
    session_response,
)

Code = Annotated[str, msgspec.Meta(max_length=16)]
Password = Annotated[str, msgspec.Meta(max_length=1024)]
Short = Annotated[str, msgspec.Meta(max_length=254)]


class FlowIdBody(Body, frozen=True):
    flow_id: FlowId


class CodeBody(Body, frozen=True):
    flow_id: FlowId
    code: Code


class NewAddressBody(Body, frozen=True):
    flow_id: FlowId
    mail: Short


class PasswordSetBody(Body, frozen=True):
    flow_id: FlowId
    password: Password
    password_confirm: Password


class SendCodeBody(Body, frozen=True):
    flow_id: FlowId
    method: Literal["sms", "voice"]
    phone: Annotated[str, msgspec.Meta(max_length=32)]
    country_code: Annotated[str, msgspec.Meta(max_length=8)] = "+81"


class MailChangeStartBody(Body, frozen=True):
    member_no: Annotated[str, msgspec.Meta(max_length=32)]
    birth_date: Annotated[str, msgspec.Meta(max_length=32, description="YYYY-MM-DD")]


class MailBody(Body, frozen=True):
    mail: Short


class SignInBody(Body, frozen=True):
    mail: Short
    password: Password


class StaffSignInBody(Body, frozen=True):
    staff_id: Short
    password: Password


class WalletStartBody(Body, frozen=True):
    identifier: Annotated[str, msgspec.Meta(max_length=254, description="mail or mobile number")]


class TotpCodeBody(Body, frozen=True):
    code: Code


class GrantBody(Body, frozen=True):
    grant_id: Annotated[str, msgspec.Meta(max_length=64)]


class StaffCreateBody(Body, frozen=True):
    staff_id: Short
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    password: Password
    # What the new staff member may do (`domain.staff`); the least by default.
    role: Role = Role.COUNTER_CLERK


class TotpAnswer(Body, frozen=True):
    otpauth_uri: str
    secret: str
    # The same URI as a QR code for the authenticator app to scan.
    qr_svg: str


class StaffCreatedAnswer(Body, frozen=True):
    staff_id: str
    otpauth_uri: str
    secret: str
    qr_svg: str


def qr_svg(uri: str) -> str:
    return str(segno.make_qr(uri, error="m").svg_inline(scale=4))


# Enrolment ------------------------------------------------------------------------------


async def enrol_member(request: web.Request) -> web.Response:
    actor = staff_actor(request)
    body = await read_body(request, Enrolment)
    reply = await ask(request, Enrol(actor=actor, enrolment=body))
    if not isinstance(reply, Enrolled):
        raise TypeError("enrolment answered with something else")
    return json_response(reply, 201 if reply.created else 200)


# Flow starts ----------------------------------------------------------------------------


async def mail_change_start(request: web.Request) -> web.Response:
    body = await read_body(request, MailChangeStartBody)
    reply = await ask(
        request, MailChangeStart(member_no=body.member_no, birth_date=body.birth_date)
    )
    return json_response(reply)


async def password_start(request: web.Request) -> web.Response:
    body = await read_body(request, MailBody)
    return json_response(await ask(request, PasswordStart(mail=body.mail)))


async def wallet_login_start(request: web.Request) -> web.Response:
    body = await read_body(request, WalletStartBody)
    return json_response(await ask(request, WalletLoginStart(identifier=body.identifier)))


def _sign_in(kind: SessionKind) -> Any:
    async def handler(request: web.Request) -> web.Response:
        if kind is SessionKind.STAFF:
            staff = await read_body(request, StaffSignInBody)
            identifier, password = staff.staff_id, staff.password
        else:
            member = await read_body(request, SignInBody)
            identifier, password = member.mail, member.password
        reply = await ask(request, SignIn(kind=kind, identifier=identifier, password=password))
        return json_response(reply)

    handler.__name__ = f"{kind.value}_sign_in"
    return handler


# Flow steps -----------------------------------------------------------------------------


def _step(kind: FlowKind, step: str, body_type: Any, session: SessionKind | None) -> Any:
    """A handler for one step: the body's fields go to the step as they are named."""

    async def handler(request: web.Request) -> web.Response:
        body = await read_body(request, body_type)
        old = session_id_of(request, session) if session is not None else ""
        message = FlowStep(kind=kind, step=step, old_session_id=old, **msgspec.structs.asdict(body))
        reply = await ask(request, message)
        if isinstance(reply, SessionIssued):
            return session_response(request, reply)
        return json_response(reply)

    handler.__name__ = f"{kind.value}_{step}"
    return handler


_STEPS: tuple[tuple[str, FlowKind, str, Any, SessionKind | None, str], ...] = (
    (
        "/api/v1/flows/mail-change/send-current",
        FlowKind.MAIL_CHANGE,
        "send_current",
        FlowIdBody,
        None,
        "§1: send a passcode to the current address",
    ),
    (
        "/api/v1/flows/mail-change/verify-current",
        FlowKind.MAIL_CHANGE,
        "verify_current",
        CodeBody,
        None,
        "§1: check the passcode sent to the current address",
    ),
    (
        "/api/v1/flows/mail-change/new-address",
        FlowKind.MAIL_CHANGE,
        "new_address",
        NewAddressBody,
        None,
        "§1: the new address; a passcode is sent to it",
    ),
    (
        "/api/v1/flows/mail-change/resend",
        FlowKind.MAIL_CHANGE,
        "resend",
        FlowIdBody,
        None,
        "§1: send a new passcode to the new address",
    ),
    (
        "/api/v1/flows/mail-change/verify-new",
        FlowKind.MAIL_CHANGE,
        "verify_new",
        CodeBody,
        None,
        "§1: check the passcode sent to the new address; the address changes",
    ),
    (
        "/api/v1/flows/mail-change/cancel",
        FlowKind.MAIL_CHANGE,
        "cancel",
        FlowIdBody,
        None,
        "§1: cancel (中止する)",
    ),
    (
        "/api/v1/flows/password/verify",
        FlowKind.PASSWORD,
        "verify",
        CodeBody,
        None,
        "§2: check the verification code",
    ),
    (
        "/api/v1/flows/password/resend",
        FlowKind.PASSWORD,
        "resend",
        FlowIdBody,
        None,
        "§2: send a new code (新しいコードを送信)",
    ),
    (
        "/api/v1/flows/password/set",
        FlowKind.PASSWORD,
        "set",
        PasswordSetBody,
        None,
        "§2: the new password and its confirmation",
    ),
    (
        "/api/v1/portal/sign-in/send-code",
        FlowKind.PORTAL_SIGN_IN,
        "send_code",
        SendCodeBody,
        None,
        "§3: send the second-factor code by SMS or a voice call",
    ),
    (
        "/api/v1/portal/sign-in/verify",
        FlowKind.PORTAL_SIGN_IN,
        "verify",
        CodeBody,
        SessionKind.PORTAL,
        "§3: check the SMS or voice code; opens a portal session",
    ),
    (
        "/api/v1/portal/sign-in/verify-totp",
        FlowKind.PORTAL_SIGN_IN,
        "verify_totp",
        CodeBody,
        SessionKind.PORTAL,
        "§3: check an authenticator app's code; opens a portal session",
    ),
    (
        "/api/v1/mypage/login/send-code",
        FlowKind.MYPAGE_LOGIN,
        "send_code",
        FlowIdBody,
        None,
        "§4: send the confirmation code (確認コードを送信)",
    ),
    (
        "/api/v1/mypage/login/verify",
        FlowKind.MYPAGE_LOGIN,
        "verify",
        CodeBody,
        SessionKind.MYPAGE,
        "§4: check the code; opens a my-page session (a double submit is one login)",
    ),
    (
        "/api/v1/wallet-auth/resend",
        FlowKind.WALLET_LOGIN,
        "resend",
        FlowIdBody,
        None,
        "§5: send a new one-time code",
    ),
    (
        "/api/v1/wallet-auth/verify",
        FlowKind.WALLET_LOGIN,
        "verify",
        CodeBody,
        SessionKind.WALLET,
        "§5: check the code; signs in (or up) to the e-money wallet",
    ),
    (
        "/api/v1/staff/sign-in/verify",
        FlowKind.STAFF_SIGN_IN,
        "verify_totp",
        CodeBody,
        SessionKind.STAFF,
        "staff: check the authenticator code; opens a staff session",
    ),
)


# Signed-in members ----------------------------------------------------------------------


async def me(request: web.Request) -> web.Response:
    return json_response(await ask(request, GetProfile(member_no=calling_member(request))))


async def totp_begin(request: web.Request) -> web.Response:
    reply = await ask(request, TotpBegin(member_no=calling_member(request)))
    if not isinstance(reply, TotpEnrolment):
        raise TypeError("TOTP enrolment answered with something else")
    qr = qr_svg(reply.otpauth_uri)
    return json_response(TotpAnswer(otpauth_uri=reply.otpauth_uri, secret=reply.secret, qr_svg=qr))


async def totp_confirm(request: web.Request) -> web.Response:
    body = await read_body(request, TotpCodeBody)
    confirm = TotpConfirm(member_no=calling_member(request), code=body.code)
    return json_response(await ask(request, confirm))


async def sign_out(request: web.Request) -> web.Response:
    """End every session this browser holds; answers the same whether or not it held one."""
    response = json_response(Done(message="signed out"))
    for kind in SessionKind:
        session_id = session_id_of(request, kind)
        if session_id:
            await ask(request, SignOut(session_id=session_id))
            response.del_cookie(f"cn_{kind.value}", path="/")
    return response


async def list_grants(request: web.Request) -> web.Response:
    return json_response(await ask(request, ListGrants(member_no=calling_member(request))))


async def revoke_grant(request: web.Request) -> web.Response:
    body = await read_body(request, GrantBody)
    revoke = RevokeGrant(member_no=calling_member(request), grant_id=body.grant_id)
    return json_response(await ask(request, revoke))


# Staff ----------------------------------------------------------------------------------


async def create_staff(request: web.Request) -> web.Response:
    actor = staff_actor(request)
    body = await read_body(request, StaffCreateBody)
    reply = await ask(
        request,
        CreateStaff(
            actor=actor,
            staff_id=body.staff_id,
            name=body.name,
            password=body.password,
            role=body.role,
        ),
    )
    if not isinstance(reply, StaffCreated):
        raise TypeError("staff creation answered with something else")
    created = StaffCreatedAnswer(
        staff_id=reply.staff_id,
        otpauth_uri=reply.otpauth_uri,
        secret=reply.secret,
        qr_svg=qr_svg(reply.otpauth_uri),
    )
    return json_response(created, 201)


async def staff_resume(request: web.Request) -> web.Response:
    actor = staff_actor(request)
    member_no = member_no_of(request)
    reply = await ask(request, StaffResume(actor=actor, member_no=member_no))
    # The identity actor resumed the wallet; the member's card leaves the deny list here.
    await member_status_changed(request.app, member_no)
    return json_response(reply)


async def staff_change_mail(request: web.Request) -> web.Response:
    actor = staff_actor(request)
    body = await read_body(request, MailBody)
    message = StaffChangeMail(actor=actor, member_no=member_no_of(request), mail=body.mail)
    return json_response(await ask(request, message))


async def audit_log(request: web.Request) -> web.Response:
    return json_response(await ask(request, read_query(request, AuditList)))


_MEMBER_OR_WALLET = sessions(*MEMBER_KINDS, SessionKind.WALLET)
_WALLET_OR_MEMBER = sessions(SessionKind.WALLET, *MEMBER_KINDS)


def _routes() -> tuple[Route, ...]:
    fixed = [
        Route(method="POST", path="/api/v1/members", handler=enrol_member, request=Enrolment,
              response=Enrolled, status=201, access=staff_may(Permission.MEMBERS_CHANGE),
              summary="Enrol a member: open the wallet with the deposits, mail the §0 notice"),
        Route(method="POST", path="/api/v1/flows/mail-change", handler=mail_change_start,
              request=MailChangeStartBody, response=FlowAnswer, access=PUBLIC,
              summary="§1: member number and birth date → the masked registered address"),
        Route(method="POST", path="/api/v1/flows/password", handler=password_start,
              request=MailBody, response=FlowAnswer, access=PUBLIC,
              summary="§2: set or reset a password: a code goes to the address"),
        Route(method="POST", path="/api/v1/portal/sign-in", handler=_sign_in(SessionKind.PORTAL),
              request=SignInBody, response=FlowAnswer, access=PUBLIC,
              summary="§3: mail address and password; a second factor follows"),
        Route(method="POST", path="/api/v1/mypage/login", handler=_sign_in(SessionKind.MYPAGE),
              request=SignInBody, response=FlowAnswer, access=PUBLIC,
              summary="§4: mail address and password; a mailed code follows"),
        Route(method="POST", path="/api/v1/wallet-auth/start", handler=wallet_login_start,
              request=WalletStartBody, response=FlowAnswer, access=PUBLIC,
              summary="§5: sign in or up to the e-money wallet with a mobile number or address"),
        Route(method="POST", path="/api/v1/staff/sign-in", handler=_sign_in(SessionKind.STAFF),
              request=StaffSignInBody, response=FlowAnswer, access=PUBLIC,
              summary="Staff: staff id and password; an authenticator code follows"),
        Route(method="GET", path="/api/v1/me", handler=me, response=Profile,
              access=_MEMBER_OR_WALLET, summary="The signed-in member's profile"),
        Route(method="POST", path="/api/v1/me/totp", handler=totp_begin, response=TotpAnswer,
              access=sessions(*MEMBER_KINDS),
              summary="Start enrolling an authenticator app: otpauth URI and QR"),
        Route(method="POST", path="/api/v1/me/totp/confirm", handler=totp_confirm,
              request=TotpCodeBody, response=Done, access=sessions(*MEMBER_KINDS),
              summary="Finish enrolling the authenticator app with one of its codes"),
        # Anybody: it ends whatever sessions the browser holds, and answers the same if none.
        Route(method="POST", path="/api/v1/sign-out", handler=sign_out, response=Done,
              access=PUBLIC, summary="Sign out: every session this browser holds is revoked"),
        Route(method="GET", path="/api/v1/wallet-auth/grants", handler=list_grants,
              response=Grants, access=_WALLET_OR_MEMBER,
              summary="§5: the apps the member let into the wallet"),
        Route(method="POST", path="/api/v1/wallet-auth/grants/revoke", handler=revoke_grant,
              request=GrantBody, response=Done, access=_WALLET_OR_MEMBER,
              summary="§5: revoke an app's access to the wallet"),
        Route(method="POST", path="/api/v1/staff/accounts", handler=create_staff,
              request=StaffCreateBody, response=StaffCreatedAnswer, status=201,
              access=staff_may(Permission.STAFF_MANAGE),
              summary="Create a staff account with its role and authenticator (shown once)"),
        Route(method="POST", path="/api/v1/staff/members/{member_no}/resume",
              handler=staff_resume, response=Done, access=staff_may(Permission.MEMBERS_CHANGE),
              summary="Staff: resume a suspended account and lift its lock-outs (audited)"),
        Route(method="POST", path="/api/v1/staff/members/{member_no}/mail",
              handler=staff_change_mail, request=MailBody, response=Done,
              access=staff_may(Permission.MEMBERS_CHANGE),
              summary="Staff: change a member's address after first use (audited)"),
        Route(method="GET", path="/api/v1/staff/audit", handler=audit_log, response=AuditPage,
              query_type=AuditList, access=staff_may(Permission.AUDIT_READ),
              summary="The audit log of staff actions, newest first"),
    ]  # fmt: skip
    steps = [
        Route(method="POST", path=path, handler=_step(kind, step, body, session), request=body,
              response=SessionAnswer if session is not None else FlowAnswer, access=PUBLIC,
              summary=summary)
        for path, kind, step, body, session, summary in _STEPS
    ]  # fmt: skip
    return (*fixed, *steps)


IDENTITY_ROUTES: tuple[Route, ...] = _routes()
