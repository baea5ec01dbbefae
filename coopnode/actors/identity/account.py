"""The member's own account page: the profile, and enrolling an authenticator app as a
second factor for the portal (§3).

The app's secret is sealed with the node's key: pending until the member types a code
from the app, then kept for `signin` to check codes against.
"""

from __future__ import annotations

import msgspec

from coopnode.actors.identity.answers import refused, totp_refusal
from coopnode.actors.identity.context import IdentityContext
from coopnode.actors.identity.messages import (
    Done,
    GetProfile,
    IdentityReason,
    Profile,
    Refused,
    TotpBegin,
    TotpConfirm,
    TotpEnrolment,
)
from coopnode.domain import passcodes
from coopnode.domain.identity import mask_mail, mask_phone
from coopnode.domain.passcodes import PasscodeReason, TotpState


class MemberAccount:
    def __init__(self, context: IdentityContext) -> None:
        self.context = context

    def profile(self, request: GetProfile) -> Profile | Refused:
        with self.context.store.read() as tx:
            account = tx.account(request.member_no)
        if account is None:
            return refused(IdentityReason.NOT_FOUND, "no such member")
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

    def totp_begin(self, request: TotpBegin) -> TotpEnrolment | Refused:
        context = self.context
        secret = passcodes.totp_secret_new()
        with context.store.write() as tx:
            account = tx.account(request.member_no)
            if account is None:
                return refused(IdentityReason.NOT_FOUND, "no such member")
            tx.put_account(
                msgspec.structs.replace(
                    account, totp_pending_sealed=context.keys.seal(secret.encode())
                )
            )
        uri = passcodes.totp_uri(secret, account.mail, context.settings.verification.totp_issuer)
        return TotpEnrolment(otpauth_uri=uri, secret=secret)

    def totp_confirm(self, request: TotpConfirm) -> Done | Refused:
        context = self.context
        with context.store.write() as tx:
            account = tx.account(request.member_no)
            if account is None or not account.totp_pending_sealed:
                return refused(
                    IdentityReason.OUT_OF_ORDER, "start the authenticator enrolment first"
                )
            secret = context.keys.unseal(account.totp_pending_sealed).decode()
            state, result = passcodes.totp_verify(
                TotpState(secret=secret),
                code=request.code,
                now_s=context.clock(),
                policy=context.policy,
            )
            if result.reason is not PasscodeReason.OK:
                return totp_refusal(PasscodeReason.WRONG)
            tx.put_account(
                msgspec.structs.replace(
                    account,
                    totp_sealed=context.keys.seal(msgspec.msgpack.encode(state)),
                    totp_pending_sealed=b"",
                )
            )
        return Done(message="the authenticator app is enrolled")
