"""The store network's signatures: the right key, the same body, and not too old."""

from __future__ import annotations

from coopnode.payments.konbini import sign, verify

KEY = "store-network-signing-key-0123456789"
BODY = b'{"event":"payment.succeeded","payment_number":"12345678901","amount":3000}'


def test_a_fresh_signature_by_the_key_over_the_body_passes() -> None:
    header = sign(KEY, BODY, 1_800_000_000)
    assert verify(KEY, header, BODY, 1_800_000_100, tolerance_s=300)


def test_forged_tampered_stale_and_malformed_signatures_fail() -> None:
    header = sign(KEY, BODY, 1_800_000_000)
    assert not verify("another-key-0123456789abcdef", header, BODY, 1_800_000_000, 300)
    assert not verify(KEY, header, BODY.replace(b"3000", b"9000"), 1_800_000_000, 300)
    assert not verify(KEY, header, BODY, 1_800_000_301, tolerance_s=300)
    assert not verify(KEY, "v1=abc", BODY, 1_800_000_000, 300)
    assert not verify(KEY, "", BODY, 1_800_000_000, 300)
