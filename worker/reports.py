"""What a vendor's report word means for a delivery.

The carriers' words (CMPP/SGIP gateway states) reach us through Chuangrui's pushes and 5C's
report pull; Veesing pushes a 1/0 status beside its code. One table for all of them:

    DELIVRD                                       → delivered
    UNDELIV, EXPIRED, REJECTD, DTBLACK, REJECT    → undelivered (the word kept as vendor_status)
    UNKNOWN, and any other word                   → unknown (kept verbatim; a later report may
                                                    still settle it)
"""

from __future__ import annotations

from worker.enums import DeliveryStatus

DELIVERED_WORDS = frozenset({"DELIVRD"})
UNDELIVERED_WORDS = frozenset({"UNDELIV", "EXPIRED", "REJECTD", "DTBLACK", "REJECT"})


def status_from_word(word: str) -> DeliveryStatus:
    normalised = word.strip().upper()
    if normalised in DELIVERED_WORDS:
        return DeliveryStatus.DELIVERED
    if normalised in UNDELIVERED_WORDS:
        return DeliveryStatus.UNDELIVERED
    return DeliveryStatus.UNKNOWN


def status_from_flag(delivered: bool) -> DeliveryStatus:
    """Veesing's receipts: status 1 is delivered, 0 is not; the code rides along verbatim."""
    return DeliveryStatus.DELIVERED if delivered else DeliveryStatus.UNDELIVERED
