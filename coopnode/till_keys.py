"""The till protocol's public-key side (PyNaCl): Ed25519 signatures over a till's
`Auth` and `Signed` frames, and the session key sealed for one till (X25519 from its
Ed25519 key). The frames themselves, their MACs and the contexts signed over are
`domain.till_frames`; this module is kept apart so that the domain needs no library
beyond msgspec. Both ends use it: the till agent signs and opens, the front verifies
and seals.
"""

from __future__ import annotations

from nacl.bindings import crypto_sign_ed25519_pk_to_curve25519
from nacl.exceptions import BadSignatureError, CryptoError
from nacl.public import PublicKey as CurvePublicKey
from nacl.public import SealedBox
from nacl.signing import SigningKey, VerifyKey

from coopnode.domain.till_frames import (
    FRAME_CONTEXT,
    Auth,
    Signed,
    SignedBody,
    auth_message,
    frame_encoder,
)


def sign_auth(key: SigningKey, nonce: bytes, till_id: str) -> Auth:
    return Auth(till_id=till_id, signature=key.sign(auth_message(nonce, till_id)).signature)


def sign_body(key: SigningKey, body: SignedBody) -> Signed:
    raw = frame_encoder.encode(body)
    return Signed(body=raw, signature=key.sign(FRAME_CONTEXT + raw).signature)


def seal_session_key(public_key: bytes, session_key: bytes) -> bytes:
    """The session key, readable only with the private key of the till `public_key` names."""
    curve_key = CurvePublicKey(crypto_sign_ed25519_pk_to_curve25519(public_key))
    return bytes(SealedBox(curve_key).encrypt(session_key))


def open_session_key(key: SigningKey, box: bytes) -> bytes:
    """The till's side of `seal_session_key`; a box not made for this key is refused."""
    try:
        return bytes(SealedBox(key.to_curve25519_private_key()).decrypt(box))
    except CryptoError as error:
        raise ValueError("the session key was not sealed for this till") from error


def verify_auth(public_key: bytes, nonce: bytes, auth: Auth) -> bool:
    return _verify(public_key, auth_message(nonce, auth.till_id), auth.signature)


def verify_signed(public_key: bytes | VerifyKey, signed: Signed) -> bool:
    return _verify(public_key, FRAME_CONTEXT + signed.body, signed.signature)


def _verify(public_key: bytes | VerifyKey, message: bytes, signature: bytes) -> bool:
    key = public_key if isinstance(public_key, VerifyKey) else VerifyKey(public_key)
    try:
        key.verify(message, signature)
    except BadSignatureError:
        return False
    return True
