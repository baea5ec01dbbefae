"""The node's two identity keys and what is done with them.

The identity key seals what must be read back but never stored in the clear (TOTP secrets,
a sign-in's session id kept for a double submit's replay) and keys the digests that must
not be computable without the node (CSRF tokens, a finishing code's fingerprint). The
passcode key is handed to `domain.passcodes`, which keys the codes' hashes with it.
"""

from __future__ import annotations

import hashlib
import hmac

import nacl.exceptions
import nacl.secret

from coopnode.domain.errors import InvariantViolation


class IdentityKeys:
    def __init__(self, *, passcode_key: bytes, identity_key: bytes) -> None:
        if len(identity_key) != nacl.secret.SecretBox.KEY_SIZE:
            raise InvariantViolation("the identity key must be 32 bytes")
        self.passcode_key = passcode_key
        self._identity_key = identity_key
        self._box = nacl.secret.SecretBox(identity_key)

    def seal(self, plain: bytes) -> bytes:
        return bytes(self._box.encrypt(plain))

    def unseal(self, sealed: bytes) -> bytes:
        try:
            return bytes(self._box.decrypt(sealed))
        except nacl.exceptions.CryptoError as error:
            raise InvariantViolation("a sealed record does not open with the node's key") from error

    def keyed(self, label: str, value: str) -> bytes:
        return hmac.new(self._identity_key, f"{label}\0{value}".encode(), hashlib.sha256).digest()
