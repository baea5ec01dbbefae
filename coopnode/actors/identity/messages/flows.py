"""The flows a member starts without a session (mail change §1, password §2, sign-in §3
and §4, the wallet's §5), their steps, and the sessions they end with."""

from __future__ import annotations

import msgspec

from coopnode.actors.identity.messages.base import FlowId, IdentityMessage, Secret, Text
from coopnode.domain.identity import FlowKind, FlowState, SessionKind


class MailChangeStart(IdentityMessage, frozen=True, tag="mail_change_start"):
    member_no: Text
    birth_date: Text


class PasswordStart(IdentityMessage, frozen=True, tag="password_start"):
    mail: Text


class SignIn(IdentityMessage, frozen=True, tag="sign_in"):
    """A password sign-in: the portal (§3), the my-page (§4) or staff."""

    kind: SessionKind
    identifier: Text
    password: Secret


class WalletLoginStart(IdentityMessage, frozen=True, tag="wallet_login_start"):
    identifier: Text


class FlowStep(IdentityMessage, frozen=True, tag="flow_step"):
    """One step of a flow; which fields matter depends on the step (see the flow's part)."""

    kind: FlowKind
    step: str
    flow_id: FlowId
    code: Secret = ""
    mail: Text = ""
    password: Secret = ""
    password_confirm: Secret = ""
    method: str = ""
    phone: Text = ""
    country_code: Text = "+81"
    # The session the browser held before signing in; it is revoked (rotation).
    old_session_id: Secret = ""


class FlowAnswer(IdentityMessage, frozen=True, tag="flow"):
    flow_id: str
    kind: FlowKind
    state: FlowState
    masked_mail: str = ""
    masked_phone: str = ""
    # Second factors this account can use (§3): "sms", "voice", and "totp" once enrolled.
    methods: list[str] = msgspec.field(default_factory=list)
    # Seconds before "send a new code" is accepted again.
    resend_after_s: int = 0


class SessionIssued(IdentityMessage, frozen=True, tag="session"):
    kind: SessionKind
    session_id: str
    csrf_token: str
    subject: str
    # Seconds of inactivity before the session ends.
    idle_timeout_s: int
    # FLOWS §5: true when this sign-in registered the e-money account (sign-up).
    registered_now: bool = False


# Sessions -------------------------------------------------------------------------------


class CheckSession(IdentityMessage, frozen=True, tag="check_session"):
    kinds: tuple[SessionKind, ...]
    session_id: Secret
    # Required for requests that change something; None for reads.
    csrf_token: Secret | None = None


class SignOut(IdentityMessage, frozen=True, tag="sign_out"):
    session_id: Secret


class Principal(IdentityMessage, frozen=True, tag="principal"):
    kind: SessionKind
    subject: str
