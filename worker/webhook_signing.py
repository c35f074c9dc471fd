"""How herald signs a webhook: HMAC-SHA256 over the timestamp and the body, in one header.

`Herald-Signature: t=<POSIX seconds>,v1=<hex HMAC-SHA256 of "<t>." + body>`, keyed with
HERALD_WEBHOOK_SECRET (the scheme Stripe uses, so receivers know it). The timestamp is signed
with the body, so a receiver that refuses old timestamps also refuses a replayed request; the
`v1` names the scheme, so another can be added beside it without breaking receivers. README,
"Webhooks", has a receiver's verification in Python.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "Herald-Signature"
SCHEME = "v1"


def signature(body: bytes, *, secret: str, timestamp: int) -> str:
    """The hex HMAC-SHA256 of `"<timestamp>." + body` under `secret`."""
    signed = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def signature_header(body: bytes, *, secret: str, timestamp: int) -> str:
    """The value of the `Herald-Signature` header of one POST."""
    return f"t={timestamp},{SCHEME}={signature(body, secret=secret, timestamp=timestamp)}"
