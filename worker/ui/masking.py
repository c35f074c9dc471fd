"""Phone numbers on the operator page: masked as the logs mask them (`138****8000`) unless the
operator asks to see them whole."""

from __future__ import annotations

from worker.log_redaction import mask_mobiles

MASK = "****"
KEPT_HEAD, KEPT_TAIL = 3, 4


def mask_phone(phone: str) -> str:
    """`13800138000` → `138****8000`; a stored number is normalised, so the first three and last
    four digits are kept whatever its length, and a number too short for that is hidden whole."""
    if len(phone) <= KEPT_HEAD + KEPT_TAIL:
        return MASK
    return f"{phone[:KEPT_HEAD]}{MASK}{phone[-KEPT_TAIL:]}"


def mask_text(text: str) -> str:
    """Free text (a reply, a vendor's error) with every mainland mobile in it masked."""
    return mask_mobiles(text)
