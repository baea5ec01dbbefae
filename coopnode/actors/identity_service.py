"""The identity service: enrolment, sign-ins with a second factor, sessions, staff, TOTP,
and the wallet's OAuth server, on top of the flows of `identity_flows`.

    sign-in (§3 portal, §4 my-page, staff, and a guardian's)
        password → second_factor ─ send_code → code_sent ─ verify → done (a session)
                                 └ verify_totp (portal and staff) ──────→ done

A guardian who is not a member signs in with the address a member granted family access
to and a mailed code (as §4), into a session of its own kind that only the family view
accepts.

A wrong password and an unknown address get the same answer after the same work: the
unknown address is checked against a dummy argon2id hash. Failures lock the identifier
typed (known or not) after `signin_failures_max`, for `lockout_s`.

A double submit of the my-page login is one login: the same password again within
`double_submit_window_s` returns the same flow, and the same code again returns the same
session (its id is kept sealed with the node's key for that window only).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable

import msgspec

from coopnode.actors import mail_templates
from coopnode.actors.identity_core import SESSION_TOUCH_INTERVAL_S, WalletPort, answer, refused
from coopnode.actors.identity_desk import MemberDesk
from coopnode.actors.identity_flows import IdentityFlows, busy, invalid
from coopnode.actors.identity_messages import (
    Answer,
    AuditEntryView,
    AuditList,
    AuditPage,
    AuditRecord,
    CardAttempt,
    CheckSession,
    CreateStaff,
    DeskView,
    DocumentMarkSent,
    DocumentNew,
    Done,
    Enrol,
    Enrolled,
    ErrorCode,
    EventApply,
    EventAttendanceSet,
    EventCancel,
    EventCreate,
    EventRosterGet,
    Family,
    FamilyGrant,
    FamilyList,
    FamilyPerson,
    FamilyRevoke,
    FlowAnswer,
    FlowStep,
    GetProfile,
    Grants,
    GrantView,
    GuardianStart,
    GuardianWards,
    IdentityRequest,
    InquiryAnswerNew,
    InquiryNew,
    ListGrants,
    MailChangeStart,
    OAuthConsent,
    OAuthDecide,
    OAuthIntrospect,
    OAuthRevoke,
    OAuthToken,
    PasswordStart,
    Principal,
    Profile,
    Refused,
    RevokeGrant,
    SessionIssued,
    SignIn,
    SignOut,
    StaffChangeMail,
    StaffCreated,
    StaffDocuments,
    StaffInquiries,
    StaffResume,
    TotpBegin,
    TotpConfirm,
    TotpEnrolment,
    WalletLoginStart,
)
from coopnode.actors.identity_store import IdentityStore, Tx
from coopnode.actors.mailer import MailMessage, Notification, SmsMessage, VoiceMessage
from coopnode.actors.oauth_server import OAuthServer
from coopnode.actors.passwords import HasherBusy, PasswordHasher
from coopnode.domain import passcodes
from coopnode.domain.errors import InvalidInput
from coopnode.domain.identity import (
    PASSWORD_MESSAGES,
    Account,
    FlowKind,
    FlowRecord,
    FlowState,
    PendingLogin,
    SessionKind,
    StaffAccount,
    Throttle,
    admit_send,
    check_password,
    check_staff_id,
    digest,
    mask_mail,
    mask_phone,
    normalise_mail,
    normalise_phone,
    password_bytes,
    session_alive,
    throttle_wait_s,
)
from coopnode.domain.messages import Booked, Declined, OpenWallet, Resume, StatusChanged
from coopnode.domain.money import Purse, Reason
from coopnode.domain.passcodes import PasscodePurpose, PasscodeReason, TotpState
from coopnode.settings import Settings

# The most guardians one member may name (parents and perhaps a grandparent); a constant
# rather than a setting, since it bounds a page's list and not any co-op's policy.
FAMILY_GUARDIANS_MAX = 4
# The window of the family invitations' daily bounds (identity.family_invitations_*).
_DAY_S = 86_400

_FLOW_OF: dict[SessionKind, FlowKind] = {
    SessionKind.PORTAL: FlowKind.PORTAL_SIGN_IN,
    SessionKind.MYPAGE: FlowKind.MYPAGE_LOGIN,
    SessionKind.STAFF: FlowKind.STAFF_SIGN_IN,
    SessionKind.GUARDIAN: FlowKind.GUARDIAN_SIGN_IN,
}
_SESSION_OF: dict[FlowKind, SessionKind] = {flow: session for session, flow in _FLOW_OF.items()}
_totp_decoder = msgspec.msgpack.Decoder(TotpState)
_SECOND_FACTOR_STEPS = frozenset({"send_code", "verify", "verify_totp", "cancel"})
_SECOND_FACTOR_PURPOSE: dict[FlowKind, PasscodePurpose] = {
    FlowKind.PORTAL_SIGN_IN: PasscodePurpose.SIGN_IN,
    FlowKind.MYPAGE_LOGIN: PasscodePurpose.MYPAGE_LOGIN,
    FlowKind.GUARDIAN_SIGN_IN: PasscodePurpose.GUARDIAN_SIGN_IN,
    FlowKind.STAFF_SIGN_IN: PasscodePurpose.SIGN_IN,
}


def _bad_credentials() -> Refused:
    return refused(401, ErrorCode.INVALID_CREDENTIALS, "the sign-in id or the password is wrong")


class IdentityService(IdentityFlows):
    def __init__(
        self,
        settings: Settings,
        store: IdentityStore,
        *,
        hasher: PasswordHasher,
        wallet: WalletPort,
        passcode_key: bytes,
        identity_key: bytes,
        clock: Callable[[], float],
        client_secrets: dict[str, str] | None = None,
    ) -> None:
        super().__init__(
            settings,
            store,
            hasher=hasher,
            wallet=wallet,
            passcode_key=passcode_key,
            identity_key=identity_key,
            clock=clock,
        )
        self.oauth = OAuthServer(settings.identity, store, clock, client_secrets or {})
        self.desk = MemberDesk(store, settings.portal, clock)

    async def handle(self, request: IdentityRequest) -> Answer:
        """Answer one request from the front."""
        try:
            return await self._dispatch(request)
        except InvalidInput as error:
            return invalid(error)

    async def _dispatch(self, request: IdentityRequest) -> Answer:
        match request:
            case Enrol():
                return await self.enrol(request)
            case MailChangeStart():
                return await self.mail_change_start(request)
            case PasswordStart():
                return await self.password_start(request)
            case GuardianStart():
                return await self.guardian_start(request)
            case WalletLoginStart():
                return await self.wallet_login_start(request)
            case SignIn():
                return await self.sign_in(request)
            case FlowStep():
                return await self._step(request)
            case CheckSession() | SignOut() | GetProfile() | TotpBegin() | TotpConfirm():
                return self._member_request(request)
            case CreateStaff():
                return await self.create_staff(request)
            case (
                DeskView()
                | InquiryNew()
                | DocumentNew()
                | EventApply()
                | EventCancel()
                | CardAttempt()
                | StaffInquiries()
                | InquiryAnswerNew()
                | StaffDocuments()
                | DocumentMarkSent()
                | EventCreate()
                | EventRosterGet()
                | EventAttendanceSet()
            ):
                return self._desk_request(request)
            case StaffResume() | StaffChangeMail() | AuditList() | AuditRecord():
                return await self._staff_request(request)
        return self._oauth_request(request)

    async def _step(self, step: FlowStep) -> Answer:
        match step.kind:
            case FlowKind.MAIL_CHANGE:
                return await self.mail_change_step(step)
            case FlowKind.PASSWORD | FlowKind.GUARDIAN_SETUP:
                return await self.password_step(step)
            case FlowKind.WALLET_LOGIN:
                return await self.wallet_login_step(step)
        return self.second_factor_step(step)

    def _member_request(self, request: IdentityRequest) -> Answer:
        match request:
            case CheckSession():
                return answer(self.check_session(request))
            case SignOut():
                with self.store.write() as tx:
                    tx.delete_session(digest(request.session_id))
                return answer(Done(message="signed out"))
            case GetProfile():
                return answer(self.profile(request.member_no))
            case TotpBegin():
                return answer(self.totp_begin(request.member_no))
            case TotpConfirm():
                return answer(self.totp_confirm(request))
        raise TypeError(f"not a member request: {type(request).__name__}")

    def _desk_request(self, request: IdentityRequest) -> Answer:
        desk = self.desk
        match request:
            case DeskView():
                return answer(desk.view(request.member_no))
            case InquiryNew():
                return answer(desk.inquiry_new(request))
            case DocumentNew():
                return answer(desk.document_new(request))
            case EventApply():
                return answer(desk.event_apply(request))
            case EventCancel():
                return answer(desk.event_cancel(request))
            case CardAttempt():
                return answer(desk.card_attempt(request))
            case StaffInquiries():
                return answer(desk.staff_inquiries(request))
            case InquiryAnswerNew():
                return desk.inquiry_answer(request, self.bounds.portal_base_url)
            case StaffDocuments():
                return answer(desk.staff_documents(request))
            case DocumentMarkSent():
                return answer(desk.document_sent(request))
            case EventCreate():
                return answer(desk.event_create(request))
            case EventRosterGet():
                return answer(desk.event_roster(request))
            case EventAttendanceSet():
                return answer(desk.event_attendance(request))
        raise TypeError(f"not a desk request: {type(request).__name__}")

    async def _staff_request(self, request: IdentityRequest) -> Answer:
        match request:
            case StaffResume():
                return await self.staff_resume(request)
            case StaffChangeMail():
                return self.staff_change_mail(request)
            case AuditList():
                return answer(self.audit_list(request))
            case AuditRecord():
                with self.store.write() as tx:
                    tx.append_audit(
                        at_s=self.clock(),
                        actor=request.actor,
                        action=request.action,
                        target=request.target,
                        detail=request.detail,
                    )
                return answer(Done(message="recorded"))
        raise TypeError(f"not a staff request: {type(request).__name__}")

    def _oauth_request(self, request: IdentityRequest) -> Answer:
        match request:
            case OAuthConsent():
                return answer(self.oauth.consent(request.member_no, request.http))
            case OAuthDecide():
                return answer(self.oauth.decide(request.member_no, request.http, request.allow))
            case OAuthToken():
                return answer(self.oauth.token(request.http))
            case OAuthRevoke():
                return answer(self.oauth.revoke(request.http))
            case OAuthIntrospect():
                return answer(self.oauth.introspect(request.authorization, request.scope))
            case ListGrants():
                return answer(self.list_grants(request.member_no))
            case RevokeGrant():
                return answer(self.revoke_grant(request))
            case FamilyGrant():
                return self.family_grant(request)
            case FamilyRevoke():
                return answer(self.family_revoke(request))
            case FamilyList():
                return answer(self.family_list(request.member_no))
            case GuardianWards():
                return answer(self.guardian_wards(request.guardian_mail))
        raise TypeError(f"unknown identity request: {type(request).__name__}")

    # Enrolment (FLOWS §0) ------------------------------------------------------------------

    def _paid_items(self, request: Enrol) -> list[mail_templates.PaidItem]:
        enrolment = request.enrolment
        units = enrolment.share_units
        items = [mail_templates.PaidItem(f"生協加入 {units}口", units * self.bounds.share_unit_yen)]
        items += [
            mail_templates.PaidItem(item.label, item.amount_yen) for item in enrolment.insurance
        ]
        if enrolment.emoney_yen:
            items.append(mail_templates.PaidItem("電子マネー", enrolment.emoney_yen))
        if enrolment.meal_yen:
            items.append(mail_templates.PaidItem("ミール", enrolment.meal_yen))
        return items

    def _enrolment_conflict(
        self, tx: Tx, member_no: str, mail: str, phone: str, fingerprint: bytes
    ) -> Refused | None:
        existing = tx.account(member_no)
        if existing is not None and existing.enrolment_fingerprint != fingerprint:
            return refused(
                409, ErrorCode.CONFLICT, f"member {member_no} is enrolled with other details"
            )
        for db, value, reason in (
            ("mail_index", mail, "mail_in_use"),
            ("phone_index", phone, "phone_in_use"),
        ):
            owner = tx.index_owner(db, value)
            if owner is not None and owner != member_no:
                return refused(409, reason, f"this {db.split('_')[0]} belongs to another member")
        return None

    async def enrol(self, request: Enrol) -> Answer:
        """Create the member, open the wallet with the deposits, send the §0 mail."""
        enrolment = request.enrolment
        mail, phone = normalise_mail(enrolment.mail), normalise_phone(enrolment.phone)
        coop = self.settings.coops.get(enrolment.coop)
        if coop is None:
            return answer(refused(422, Reason.UNKNOWN_COOP, f"unknown co-op {enrolment.coop!r}"))
        fingerprint = hashlib.sha256(msgspec.msgpack.encode(enrolment)).digest()[:16]
        with self.store.read() as tx:
            conflict = self._enrolment_conflict(tx, enrolment.member_no, mail, phone, fingerprint)
        if conflict is not None:
            return answer(conflict)
        items = self._paid_items(request)
        total_yen = mail_templates.enrolment_total_yen(items)
        deposits = {Purse.BASE: enrolment.emoney_yen, Purse.MEAL: enrolment.meal_yen}
        opened = await self.wallet.submit(
            OpenWallet(
                key=f"enrol-{enrolment.member_no}",
                member_no=enrolment.member_no,
                coop=enrolment.coop,
                meal_plan=enrolment.meal_plan,
                deposits={purse: yen for purse, yen in deposits.items() if yen},
            )
        )
        # A wallet opened before (the demo's, or one opened through the wallet API) is kept.
        if isinstance(opened, Declined) and opened.reason is not Reason.DUPLICATE:
            status = 503 if opened.reason in (Reason.OVERLOADED, Reason.UNAVAILABLE) else 422
            return answer(refused(status, opened.reason.value, opened.message))
        with self.store.write() as tx:
            conflict = self._enrolment_conflict(tx, enrolment.member_no, mail, phone, fingerprint)
            if conflict is not None:
                return answer(conflict)
            if tx.account(enrolment.member_no) is not None:
                return answer(
                    Enrolled(member_no=enrolment.member_no, created=False, total_yen=total_yen)
                )
            tx.put_account(
                Account(
                    member_no=enrolment.member_no,
                    coop=enrolment.coop,
                    name=enrolment.name,
                    kana=enrolment.kana,
                    birth_date=enrolment.birth_date,
                    mail=mail,
                    phone=phone,
                    enrolled_at_s=self.clock(),
                    enrolment_fingerprint=fingerprint,
                )
            )
            tx.append_audit(
                at_s=self.clock(),
                actor=request.actor,
                action="member.enrol",
                target=enrolment.member_no,
                detail=f"total {total_yen} yen",
            )
        text = mail_templates.enrolment_completed_mail(
            coop_name=coop.name,
            member_name=enrolment.name,
            member_no=enrolment.member_no,
            items=items,
            password_guide_url=f"{self.bounds.portal_base_url}/portal/password",
        )
        notice = MailMessage(to=mail, subject=text.subject, body=text.body, kind="enrolment")
        wallet = opened if isinstance(opened, Booked) else None
        reply = Enrolled(
            member_no=enrolment.member_no, created=True, total_yen=total_yen, wallet=wallet
        )
        return answer(reply, [notice])

    # Password sign-in ----------------------------------------------------------------------

    def _credentials_of(
        self, tx: Tx, kind: SessionKind, identifier: str
    ) -> tuple[str, bytes | None]:
        """The subject and the stored hash for an identifier; ("", None) when unknown."""
        if kind is SessionKind.STAFF:
            staff = tx.staff(identifier)
            return (staff.staff_id, staff.password_hash) if staff is not None else ("", None)
        if kind is SessionKind.GUARDIAN:
            guardian = tx.guardian(identifier)
            return (guardian.mail, guardian.password_hash) if guardian is not None else ("", None)
        account = tx.account_by_mail(identifier)
        if account is None or not account.password_hash:
            return "", None
        return account.member_no, account.password_hash

    async def sign_in(self, request: SignIn) -> Answer:
        if request.kind is SessionKind.WALLET:
            return answer(refused(400, ErrorCode.INVALID_INPUT, "the wallet signs in with a code"))
        try:
            if request.kind is SessionKind.STAFF:
                identifier = check_staff_id(request.identifier.strip())
            else:
                identifier = normalise_mail(request.identifier)
        except InvalidInput:
            return answer(_bad_credentials())
        throttle_key = f"signin:{identifier}"
        with self.store.read() as tx:
            wait_s = throttle_wait_s(tx.throttle(throttle_key), self.clock())
            subject, hashed = self._credentials_of(tx, request.kind, identifier)
        if wait_s:
            return answer(
                refused(
                    429,
                    ErrorCode.LOCKED,
                    "too many wrong passwords; try again later",
                    retry_after_s=wait_s,
                )
            )
        try:
            ok = await self.hasher.verify(hashed, password_bytes(request.password))
        except HasherBusy:
            return busy()
        with self.store.write() as tx:
            if not ok or not subject:
                tx.put_throttle(throttle_key, self._failed(tx.throttle(throttle_key)))
                return answer(_bad_credentials())
            tx.put_throttle(throttle_key, Throttle())
            return answer(self._second_factor_flow(tx, request.kind, subject))

    def _second_factor_flow(self, tx: Tx, kind: SessionKind, subject: str) -> FlowAnswer | Refused:
        flow_kind = _FLOW_OF[kind]
        pending_key = f"{flow_kind.value}:{subject}"
        pending = tx.pending(pending_key)
        now_s = self.clock()
        if pending is not None and now_s < pending.until_s:
            flow_id = self.unseal(pending.flow_sealed).decode()
            flow = tx.flow(digest(flow_id))
            if flow is not None and flow.state in (FlowState.SECOND_FACTOR, FlowState.CODE_SENT):
                return self._second_factor_answer(tx, flow_id, flow)
        flow_id, flow = self.new_flow(
            tx,
            flow_kind,
            FlowState.SECOND_FACTOR,
            subject=subject,
            passcode_key=f"{flow_kind.value}:{subject}",
        )
        until_s = now_s + self.bounds.double_submit_window_s
        tx.put_pending(
            pending_key, PendingLogin(flow_sealed=self.seal(flow_id.encode()), until_s=until_s)
        )
        return self._second_factor_answer(tx, flow_id, flow)

    def _second_factor_answer(self, tx: Tx, flow_id: str, flow: FlowRecord) -> FlowAnswer | Refused:
        if flow.kind is FlowKind.STAFF_SIGN_IN:
            return self.flow_answer(flow_id, flow, methods=["totp"])
        if flow.kind is FlowKind.GUARDIAN_SIGN_IN:
            return self.flow_answer(
                flow_id, flow, methods=["mail"], masked_mail=mask_mail(flow.subject)
            )
        account = tx.account(flow.subject)
        if account is None:
            return _bad_credentials()
        if flow.kind is FlowKind.MYPAGE_LOGIN:
            return self.flow_answer(
                flow_id, flow, methods=["mail"], masked_mail=mask_mail(account.mail)
            )
        methods = ["sms", "voice", *(["totp"] if account.totp_sealed else [])]
        return self.flow_answer(
            flow_id, flow, methods=methods, masked_phone=mask_phone(account.phone)
        )

    # Second factors ------------------------------------------------------------------------

    def second_factor_step(self, step: FlowStep) -> Answer:
        if step.step not in _SECOND_FACTOR_STEPS:
            return answer(refused(400, ErrorCode.INVALID_INPUT, f"unknown step {step.step!r}"))
        with self.store.write() as tx:
            flow = self.load_flow(tx, step)
            if isinstance(flow, Refused):
                replayed = self._replay(tx, step)
                return answer(replayed if replayed is not None else flow)
            match step.step:
                case "send_code":
                    return self._send_second_factor(tx, step, flow)
                case "verify":
                    purpose = self._purpose(flow.kind)
                    problem = self.check_code(tx, flow, purpose, flow.destination, step.code)
                    return answer(problem if problem is not None else self._finish(tx, step, flow))
                case "verify_totp":
                    problem = self._check_totp(tx, flow, step.code)
                    return answer(problem if problem is not None else self._finish(tx, step, flow))
            flow = self.save_flow(tx, step.flow_id, flow, state=FlowState.CANCELLED)
            return answer(self.flow_answer(step.flow_id, flow))

    @staticmethod
    def _purpose(kind: FlowKind) -> PasscodePurpose:
        return _SECOND_FACTOR_PURPOSE[kind]

    def _mail_destination(self, tx: Tx, flow: FlowRecord) -> str:
        """Where a mailed second factor goes: the member's or the guardian's address."""
        if flow.kind is FlowKind.GUARDIAN_SIGN_IN:
            guardian = tx.guardian(flow.subject)
            return guardian.mail if guardian is not None else ""
        account = tx.account(flow.subject)
        return account.mail if account is not None else ""

    def _send_second_factor(self, tx: Tx, step: FlowStep, flow: FlowRecord) -> Answer:
        if flow.kind in (FlowKind.MYPAGE_LOGIN, FlowKind.GUARDIAN_SIGN_IN):
            channel, destination = "mail", self._mail_destination(tx, flow)
            if not destination:
                return answer(refused(404, ErrorCode.NOT_FOUND, "the account no longer exists"))
        else:
            account = tx.account(flow.subject)
            if account is None:
                return answer(refused(404, ErrorCode.NOT_FOUND, "the member no longer exists"))
            if step.method not in ("sms", "voice"):
                return answer(refused(400, ErrorCode.INVALID_INPUT, "method must be sms or voice"))
            channel, destination = step.method, normalise_phone(step.phone, step.country_code)
            if not hmac.compare_digest(destination.encode(), account.phone.encode()):
                return answer(
                    refused(
                        400, ErrorCode.PHONE_MISMATCH, "this is not the phone number registered"
                    )
                )
        # The code page says where the code went, masked as the sign-in step showed it.
        shown = (
            {"masked_mail": mask_mail(destination)}
            if channel == "mail"
            else {"masked_phone": mask_phone(destination)}
        )
        double = self.clock() - flow.last_sent_at_s < self.bounds.double_submit_window_s
        if double and flow.state is FlowState.CODE_SENT and flow.channel == channel:
            # The send button pressed twice: one code is on its way.
            resend_after_s = self.resend_after_s(tx, flow.passcode_key)
            return answer(
                self.flow_answer(step.flow_id, flow, resend_after_s=resend_after_s, **shown)
            )
        issued = self.issue_code(tx, flow.passcode_key, self._purpose(flow.kind), destination)
        if issued.reason is not PasscodeReason.OK:
            return answer(
                refused(
                    429,
                    f"passcode_{issued.reason.value}",
                    "wait before asking for another code",
                    retry_after_s=issued.retry_after_s,
                )
            )
        flow = self.save_flow(
            tx,
            step.flow_id,
            flow,
            state=FlowState.CODE_SENT,
            destination=destination,
            channel=channel,
            last_sent_at_s=self.clock(),
        )
        reply = self.flow_answer(
            step.flow_id, flow, resend_after_s=self.policy.passcode_resend_cooldown_s, **shown
        )
        message = self._second_factor_message(channel, destination, issued.code, flow.kind)
        return answer(reply, [message])

    def _second_factor_message(
        self, channel: str, to: str, code: str, kind: FlowKind
    ) -> Notification:
        minutes = self.valid_minutes()
        if channel == "sms":
            return SmsMessage(
                to=to,
                body=mail_templates.sms_passcode_text(code=code, valid_minutes=minutes),
                kind="sign_in",
            )
        if channel == "voice":
            return VoiceMessage(
                to=to, speech=mail_templates.voice_passcode_text(code=code), kind="sign_in"
            )
        return self._verification_mail(to, code, kind.value)

    def _check_totp(self, tx: Tx, flow: FlowRecord, code: str) -> Refused | None:
        if flow.kind is FlowKind.STAFF_SIGN_IN:
            staff = tx.staff(flow.subject)
            sealed = staff.totp_sealed if staff is not None else b""
        else:
            account = tx.account(flow.subject)
            sealed = account.totp_sealed if account is not None else b""
        if not sealed:
            return refused(409, ErrorCode.OUT_OF_ORDER, "no authenticator app is enrolled")
        state = _totp_decoder.decode(self.unseal(sealed))
        state, result = passcodes.totp_verify(
            state, code=code, now_s=self.clock(), policy=self.policy
        )
        resealed = self.seal(msgspec.msgpack.encode(state))
        if flow.kind is FlowKind.STAFF_SIGN_IN and staff is not None:
            tx.put_staff(msgspec.structs.replace(staff, totp_sealed=resealed))
        elif account is not None:
            tx.put_account(msgspec.structs.replace(account, totp_sealed=resealed))
        if result.reason is PasscodeReason.OK:
            return None
        return refused(
            429 if result.reason is PasscodeReason.LOCKED else 400,
            f"passcode_{result.reason.value}",
            "the code from the authenticator app is not correct",
            retry_after_s=result.retry_after_s,
        )

    def _finish(self, tx: Tx, step: FlowStep, flow: FlowRecord) -> SessionIssued:
        issued, session_id = self.issue_session(
            tx, _SESSION_OF[flow.kind], flow.subject, step.old_session_id
        )
        self.save_flow(
            tx,
            step.flow_id,
            flow,
            state=FlowState.DONE,
            result_sealed=self.seal(session_id.encode()),
            result_until_s=self.clock() + self.bounds.double_submit_window_s,
            finished_by=self.keyed("finish", step.code),
        )
        tx.put_pending(
            f"{flow.kind.value}:{flow.subject}", PendingLogin(flow_sealed=b"", until_s=0.0)
        )
        return issued

    def _replay(self, tx: Tx, step: FlowStep) -> SessionIssued | None:
        """The finishing step sent twice answers with the session the first one opened."""
        flow = tx.flow(digest(step.flow_id))
        if flow is None or flow.state is not FlowState.DONE or not flow.result_sealed:
            return None
        if self.clock() >= flow.result_until_s or step.step not in ("verify", "verify_totp"):
            return None
        if not hmac.compare_digest(flow.finished_by, self.keyed("finish", step.code)):
            return None
        session_id = self.unseal(flow.result_sealed).decode()
        kind = _SESSION_OF[flow.kind]
        if tx.session(digest(session_id)) is None:
            return None
        return SessionIssued(
            kind=kind,
            session_id=session_id,
            csrf_token=self.csrf_token(session_id),
            subject=flow.subject,
            idle_timeout_s=self.timeouts(kind)[0],
        )

    # Sessions ------------------------------------------------------------------------------

    def check_session(self, request: CheckSession) -> Principal | Refused:
        key = digest(request.session_id)
        now_s = self.clock()
        with self.store.write() as tx:
            session = tx.session(key)
            if session is None or session.kind not in request.kinds:
                return refused(401, ErrorCode.UNAUTHORIZED, "sign in first")
            idle_s, absolute_s = self.timeouts(session.kind)
            if not session_alive(
                session, now_s, idle_timeout_s=idle_s, absolute_timeout_s=absolute_s
            ):
                tx.delete_session(key)
                return refused(401, "session_expired", "the session has ended; sign in again")
            if request.csrf_token is not None and not hmac.compare_digest(
                request.csrf_token.encode(), self.csrf_token(request.session_id).encode()
            ):
                return refused(403, ErrorCode.CSRF, "the CSRF token is missing or wrong")
            if now_s - session.last_seen_s >= SESSION_TOUCH_INTERVAL_S:
                tx.put_session(key, msgspec.structs.replace(session, last_seen_s=now_s))
        return Principal(kind=session.kind, subject=session.subject)

    def profile(self, member_no: str) -> Profile | Refused:
        with self.store.read() as tx:
            account = tx.account(member_no)
        if account is None:
            return refused(404, ErrorCode.NOT_FOUND, "no such member")
        return Profile(
            member_no=account.member_no,
            coop=account.coop,
            name=account.name,
            kana=account.kana,
            masked_mail=mask_mail(account.mail),
            masked_phone=mask_phone(account.phone),
            password_set=bool(account.password_hash),
            totp_enrolled=bool(account.totp_sealed),
            wallet_registered=bool(account.wallet_registered_at_s),
        )

    # TOTP enrolment ------------------------------------------------------------------------

    def totp_begin(self, member_no: str) -> TotpEnrolment | Refused:
        secret = passcodes.totp_secret_new()
        with self.store.write() as tx:
            account = tx.account(member_no)
            if account is None:
                return refused(404, ErrorCode.NOT_FOUND, "no such member")
            tx.put_account(
                msgspec.structs.replace(account, totp_pending_sealed=self.seal(secret.encode()))
            )
        uri = passcodes.totp_uri(secret, account.mail, self.settings.verification.totp_issuer)
        return TotpEnrolment(otpauth_uri=uri, secret=secret)

    def totp_confirm(self, request: TotpConfirm) -> Done | Refused:
        with self.store.write() as tx:
            account = tx.account(request.member_no)
            if account is None or not account.totp_pending_sealed:
                return refused(
                    409, ErrorCode.OUT_OF_ORDER, "start the authenticator enrolment first"
                )
            secret = self.unseal(account.totp_pending_sealed).decode()
            state, result = passcodes.totp_verify(
                TotpState(secret=secret), code=request.code, now_s=self.clock(), policy=self.policy
            )
            if result.reason is not PasscodeReason.OK:
                return refused(
                    400, "passcode_wrong", "the code from the authenticator app is not correct"
                )
            tx.put_account(
                msgspec.structs.replace(
                    account,
                    totp_sealed=self.seal(msgspec.msgpack.encode(state)),
                    totp_pending_sealed=b"",
                )
            )
        return Done(message="the authenticator app is enrolled")

    # Staff ---------------------------------------------------------------------------------

    async def create_staff(self, request: CreateStaff) -> Answer:
        staff_id = check_staff_id(request.staff_id.strip())
        problem = check_password(
            request.password,
            min_chars=max(12, self.bounds.password_min_chars),
            max_chars=self.bounds.password_max_chars,
            context=(staff_id,),
        )
        if problem is not None:
            return answer(refused(400, f"password_{problem.value}", PASSWORD_MESSAGES[problem]))
        with self.store.read() as tx:
            if tx.staff(staff_id) is not None:
                return answer(refused(409, ErrorCode.CONFLICT, f"staff {staff_id} exists already"))
        try:
            hashed = await self.hasher.hash(password_bytes(request.password))
        except HasherBusy:
            return busy()
        secret = passcodes.totp_secret_new()
        with self.store.write() as tx:
            if tx.staff(staff_id) is not None:
                return answer(refused(409, ErrorCode.CONFLICT, f"staff {staff_id} exists already"))
            tx.put_staff(
                StaffAccount(
                    staff_id=staff_id,
                    name=request.name,
                    password_hash=hashed,
                    totp_sealed=self.seal(msgspec.msgpack.encode(TotpState(secret=secret))),
                    created_at_s=self.clock(),
                )
            )
            tx.append_audit(
                at_s=self.clock(), actor=request.actor, action="staff.create", target=staff_id
            )
        uri = passcodes.totp_uri(secret, staff_id, self.settings.verification.totp_issuer)
        return answer(StaffCreated(staff_id=staff_id, otpauth_uri=uri, secret=secret))

    async def staff_resume(self, request: StaffResume) -> Answer:
        """Resume a suspended account: the wallet, and every lock-out of the member. The
        front that asked then takes the member's card off the tills' deny list (this actor
        does not hold the front's copy of the registry)."""
        with self.store.read() as tx:
            account = tx.account(request.member_no)
        if account is None:
            return answer(refused(404, ErrorCode.NOT_FOUND, "no such member"))
        result = await self.wallet.submit(Resume(member_no=request.member_no))
        if not isinstance(result, StatusChanged):
            message = (
                result.message if isinstance(result, Declined) else "the wallet did not answer"
            )
            return answer(refused(503, ErrorCode.WALLET, message))
        with self.store.write() as tx:
            lifted = tx.clear_throttles(f":{account.mail}") + tx.clear_throttles(
                f":{account.member_no}"
            )
            tx.append_audit(
                at_s=self.clock(),
                actor=request.actor,
                action="member.resume",
                target=request.member_no,
                detail=f"wallet {result.status.value}; {lifted} lock-outs lifted",
            )
        return answer(Done(message="the account is active again"))

    def staff_change_mail(self, request: StaffChangeMail) -> Answer:
        """The counter's address change, for members who have used e-money (FLOWS §1)."""
        mail = normalise_mail(request.mail)
        with self.store.write() as tx:
            account = tx.account(request.member_no)
            if account is None:
                return answer(refused(404, ErrorCode.NOT_FOUND, "no such member"))
            owner = tx.index_owner("mail_index", mail)
            if owner is not None and owner != account.member_no:
                return answer(
                    refused(409, ErrorCode.MAIL_IN_USE, "this address belongs to another member")
                )
            tx.put_account(msgspec.structs.replace(account, mail=mail))
            tx.delete_sessions_of(account.member_no)
            tx.append_audit(
                at_s=self.clock(),
                actor=request.actor,
                action="member.change_mail",
                target=account.member_no,
                detail=f"{mask_mail(account.mail)} → {mask_mail(mail)}",
            )
        return answer(Done(message="the mail address is changed"))

    def audit_list(self, request: AuditList) -> AuditPage:
        limit = max(1, min(request.limit, self.bounds.audit_page_max))
        with self.store.read() as tx:
            entries = tx.audit_page(max(0, request.before_seq), limit)
        views = [AuditEntryView(**msgspec.structs.asdict(entry)) for entry in entries]
        next_before = entries[-1].seq if len(entries) == limit and entries[-1].seq > 1 else 0
        return AuditPage(entries=views, next_before_seq=next_before)

    # Grants (FLOWS §5: the member revokes the my-page's access) ---------------------------

    def list_grants(self, member_no: str) -> Grants:
        now_s = self.clock()
        with self.store.read() as tx:
            found = tx.grants_of(member_no)
        views = [
            GrantView(
                grant_id=token.grant_id,
                client_id=token.client_id,
                client_name=self.oauth.clients[token.client_id].name
                if token.client_id in self.oauth.clients
                else token.client_id,
                scope=token.scope,
                issued_at_s=token.issued_at_s,
                expires_at_s=token.expires_at_s,
                active=not token.revoked and now_s < token.expires_at_s,
            )
            for _, token in found
        ]
        return Grants(grants=views)

    def revoke_grant(self, request: RevokeGrant) -> Done | Refused:
        with self.store.write() as tx:
            for key, token in tx.grants_of(request.member_no):
                if secrets.compare_digest(token.grant_id, request.grant_id):
                    tx.put_oauth_token(key, msgspec.structs.replace(token, revoked=True))
                    return Done(message="access revoked")
        return refused(404, ErrorCode.NOT_FOUND, "no such grant")

    # Family access (FLOWS §3 step 5) --------------------------------------------------------

    def family_grant(self, request: FamilyGrant) -> Answer:
        """Let the holder of a mail address read the member's history, and invite them.

        The grant is kept under the address, whether or not an account has it yet, and the
        answer is the same either way, so the form cannot tell a member who else has an
        account. A new grant mails the address an invitation: a member holding it signs in
        to the portal as usual; anyone else confirms the address with a code and sets a
        password at `/portal/guardian` (`guardian_start`), then signs in as a guardian.
        """
        mail = normalise_mail(request.guardian_mail)
        with self.store.write() as tx:
            member = tx.account(request.member_no)
            if member is None:
                return answer(refused(404, ErrorCode.NOT_FOUND, "no such member"))
            if member.mail == mail:
                return answer(refused(409, "family_self", "a member is not their own guardian"))
            guardians = tx.guardians_of(request.member_no)
            if mail in guardians:
                return answer(Done(message="family access granted"))
            if len(guardians) >= FAMILY_GUARDIANS_MAX:
                return answer(refused(409, "family_too_many", "too many guardians"))
            wait_s = self._admit_family_invitation(tx, request.member_no, mail)
            if wait_s:
                return answer(
                    refused(
                        429,
                        "family_invitations_exhausted",
                        "too many family invitations today; try again later",
                        retry_after_s=wait_s,
                    )
                )
            tx.put_family(request.member_no, mail)
            tx.append_audit(
                at_s=self.clock(),
                actor=request.member_no,
                action="family.grant",
                target=mask_mail(mail),
            )
            member_account = tx.account_by_mail(mail) is not None
        path = "/portal/sign-in" if member_account else "/portal/guardian"
        text = mail_templates.family_invitation_mail(
            member_name=member.name,
            url=f"{self.bounds.portal_base_url}{path}",
            member_account=member_account,
        )
        invitation = MailMessage(to=mail, subject=text.subject, body=text.body, kind="family")
        return answer(Done(message="family access granted"), [invitation])

    def _admit_family_invitation(self, tx: Tx, member_no: str, mail: str) -> int:
        """Count an invitation from `member_no` to `mail` against both daily bounds; the
        seconds until one may be sent when either is spent (nothing counted then)."""
        now_s = self.clock()
        by_member, by_address = f"family:{member_no}", f"family-to:{mail}"
        member_window, member_wait_s = admit_send(
            tx.send_window(by_member),
            now_s,
            window_s=_DAY_S,
            sends_max=self.bounds.family_invitations_per_member_per_day_max,
        )
        address_window, address_wait_s = admit_send(
            tx.send_window(by_address),
            now_s,
            window_s=_DAY_S,
            sends_max=self.bounds.family_invitations_per_address_per_day_max,
        )
        if member_wait_s or address_wait_s:
            return max(member_wait_s, address_wait_s)
        tx.put_send_window(by_member, member_window)
        tx.put_send_window(by_address, address_window)
        return 0

    def family_revoke(self, request: FamilyRevoke) -> Done | Refused:
        mail = normalise_mail(request.guardian_mail)
        with self.store.write() as tx:
            if not tx.delete_family(request.member_no, mail):
                return refused(404, ErrorCode.NOT_FOUND, "no such family access")
            tx.append_audit(
                at_s=self.clock(),
                actor=request.member_no,
                action="family.revoke",
                target=mask_mail(mail),
            )
        return Done(message="family access revoked")

    def guardian_wards(self, guardian_mail: str) -> Family:
        """The members who granted family access to a guardian's address."""
        mail = normalise_mail(guardian_mail)
        with self.store.read() as tx:
            accounts = [tx.account(number) for number in tx.wards_of(mail)]
        wards = [
            FamilyPerson(member_no=a.member_no, name=a.name, masked_mail=mask_mail(a.mail))
            for a in accounts
            if a is not None
        ]
        return Family(guardians=[], wards=wards)

    def family_list(self, member_no: str) -> Family:
        with self.store.read() as tx:
            account = tx.account(member_no)
            mails = tx.guardians_of(member_no)
            numbers = tx.wards_of(account.mail) if account is not None else []
            wards = [tx.account(number) for number in numbers]
        return Family(
            guardians=[
                FamilyPerson(member_no="", name="", masked_mail=mask_mail(mail), mail=mail)
                for mail in mails
            ],
            wards=[
                FamilyPerson(member_no=a.member_no, name=a.name, masked_mail=mask_mail(a.mail))
                for a in wards
                if a is not None
            ],
        )
