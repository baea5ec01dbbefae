"""Sessions: opened at the end of every sign-in, checked on every request, ended on
sign-out.

A session is a `SessionRecord` under the digest of a random id that the browser holds in
a cookie. Its CSRF token is derived from the id with the node's key, so it needs no
storage and dies with the session. A session ends after `session_idle_timeout_s` without
use or `session_absolute_timeout_s` after it opened (staff have timeouts of their own).
"""

from __future__ import annotations

import base64
import hmac
import secrets

import msgspec

from coopnode.actors.identity.answers import refused
from coopnode.actors.identity.context import IdentityContext
from coopnode.actors.identity.messages import (
    CheckSession,
    Done,
    IdentityReason,
    Principal,
    Refused,
    SessionIssued,
    SignOut,
)
from coopnode.actors.identity.store import Tx
from coopnode.domain.identity import SessionKind, SessionRecord, digest, session_alive

# 128 bits, as OWASP's session guidance asks.
SESSION_ID_BYTES = 16
# A session's last-seen time is written at most this often, so reading pages does not
# cost an fsync each; the idle timeout is minutes, so seconds of slack do not matter.
SESSION_TOUCH_INTERVAL_S = 15.0


class Sessions:
    def __init__(self, context: IdentityContext) -> None:
        self.context = context

    def csrf_token(self, session_id: str) -> str:
        """Derived from the session id, so it needs no storage and dies with the session."""
        keyed = self.context.keys.keyed("csrf", session_id)
        return base64.urlsafe_b64encode(keyed).decode().rstrip("=")

    def timeouts(self, kind: SessionKind) -> tuple[int, int]:
        """The idle and the absolute timeout of a session of `kind`, in seconds."""
        bounds = self.context.bounds
        if kind is SessionKind.STAFF:
            return bounds.staff_session_idle_timeout_s, bounds.staff_session_absolute_timeout_s
        return bounds.session_idle_timeout_s, bounds.session_absolute_timeout_s

    def issued(
        self, kind: SessionKind, session_id: str, subject: str, *, registered_now: bool = False
    ) -> SessionIssued:
        """What the browser is told of a session: its id, CSRF token and idle timeout."""
        return SessionIssued(
            kind=kind,
            session_id=session_id,
            csrf_token=self.csrf_token(session_id),
            subject=subject,
            idle_timeout_s=self.timeouts(kind)[0],
            registered_now=registered_now,
        )

    def open(
        self,
        tx: Tx,
        kind: SessionKind,
        subject: str,
        old_session_id: str,
        *,
        registered_now: bool = False,
    ) -> tuple[SessionIssued, str]:
        """A fresh session id at every sign-in; the one the browser held is revoked."""
        if old_session_id:
            tx.delete_session(digest(old_session_id))
        session_id = secrets.token_urlsafe(SESSION_ID_BYTES)
        now_s = self.context.clock()
        tx.put_session(
            digest(session_id),
            SessionRecord(kind=kind, subject=subject, created_at_s=now_s, last_seen_s=now_s),
        )
        return self.issued(kind, session_id, subject, registered_now=registered_now), session_id

    # Handlers ---------------------------------------------------------------------------

    def check(self, request: CheckSession) -> Principal | Refused:
        """Who holds the session, if it is alive, of a kind asked for, and the CSRF token
        (when one is asked for) matches; the session's last-seen time moves on."""
        key = digest(request.session_id)
        now_s = self.context.clock()
        with self.context.store.write() as tx:
            session = tx.session(key)
            if session is None or session.kind not in request.kinds:
                return refused(IdentityReason.UNAUTHORIZED, "sign in first")
            idle_s, absolute_s = self.timeouts(session.kind)
            if not session_alive(
                session, now_s, idle_timeout_s=idle_s, absolute_timeout_s=absolute_s
            ):
                tx.delete_session(key)
                return refused(
                    IdentityReason.SESSION_EXPIRED, "the session has ended; sign in again"
                )
            if request.csrf_token is not None and not hmac.compare_digest(
                request.csrf_token.encode(), self.csrf_token(request.session_id).encode()
            ):
                return refused(IdentityReason.CSRF, "the CSRF token is missing or wrong")
            if now_s - session.last_seen_s >= SESSION_TOUCH_INTERVAL_S:
                tx.put_session(key, msgspec.structs.replace(session, last_seen_s=now_s))
        return Principal(kind=session.kind, subject=session.subject)

    def sign_out(self, request: SignOut) -> Done:
        with self.context.store.write() as tx:
            tx.delete_session(digest(request.session_id))
        return Done(message="signed out")
