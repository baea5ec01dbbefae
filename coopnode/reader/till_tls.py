"""How a till checks the node's certificate (`till.agent_tls_ca_file`, `agent_tls_pin_sha256`).

On an `https://` node URL the till channel is WSS, and the till verifies the node:

- with a CA file: the node's certificate must chain to one of its certificates and name
  the URL's host, as a browser would check it;
- with a pin: the node's certificate must be exactly the one whose SHA-256 is pinned
  (its issuer and names are then not looked at; a new certificate needs a new pin);
- with neither: against the system's CA store (`$SSL_CERT_FILE` names another).

A till that cannot verify the node does not connect: it sells offline, within its limits,
and says why in `/status` (`last_refusal`). On an `http://` URL a CA file or a pin is a
mistake (they would protect nothing), and is refused.
"""

from __future__ import annotations

import ssl

import aiohttp

from coopnode.settings import TillSettings


class TillTlsError(ValueError):
    """The till's TLS settings do not fit its node URL."""


def pin_digest(pin_sha256: str) -> bytes:
    """The 32 bytes of a pin written as 64 hex digits, with or without colons."""
    return bytes.fromhex(pin_sha256.replace(":", ""))


def node_ssl(node_url: str, settings: TillSettings) -> ssl.SSLContext | aiohttp.Fingerprint | bool:
    """What aiohttp's `ssl=` takes to reach `node_url` as the settings say."""
    if not node_url.startswith("https://"):
        if settings.agent_tls_ca_file or settings.agent_tls_pin_sha256:
            raise TillTlsError(
                f"the node URL {node_url} is not https://, so a CA file or a pin would "
                "check nothing: use the node's https:// URL"
            )
        return True  # Plain HTTP: aiohttp's default, which `ssl` does not touch.
    if settings.agent_tls_pin_sha256:
        return aiohttp.Fingerprint(pin_digest(settings.agent_tls_pin_sha256))
    try:
        context = ssl.create_default_context(cafile=settings.agent_tls_ca_file or None)
    except (OSError, ssl.SSLError) as error:
        raise TillTlsError(
            f"till.agent_tls_ca_file: cannot read CA certificates from "
            f"{settings.agent_tls_ca_file}: {error}"
        ) from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context
