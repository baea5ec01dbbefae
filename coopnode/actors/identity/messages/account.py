"""The member's own account: the profile, and enrolling an authenticator app."""

from __future__ import annotations

from coopnode.actors.identity.messages.base import IdentityMessage, Secret
from coopnode.domain.messages import MemberNo


class GetProfile(IdentityMessage, frozen=True, tag="profile"):
    member_no: MemberNo


class TotpBegin(IdentityMessage, frozen=True, tag="totp_begin"):
    member_no: MemberNo


class TotpConfirm(IdentityMessage, frozen=True, tag="totp_confirm"):
    member_no: MemberNo
    code: Secret


class Profile(IdentityMessage, frozen=True, tag="profile"):
    member_no: str
    coop: str
    name: str
    kana: str
    masked_mail: str
    masked_phone: str
    password_set: bool
    totp_enrolled: bool
    wallet_registered: bool


class TotpEnrolment(IdentityMessage, frozen=True, tag="totp_enrolment"):
    otpauth_uri: str
    secret: str
