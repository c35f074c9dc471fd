"""How one claimed batch of a job's recipients is split into vendor calls.

An SMS vendor call carries one text to many numbers. Recipients of a personalised job each have
their own text (`Delivery.text`), so each distinct text goes in a call of its own, while the
recipients that share a text still go together. 5C's personalised MMS also keeps a text per
recipient, but its batch call carries a text per number, so MMS is never split by text. A
recipient marked `send_alone` (its batch was refused for one unnamed bad number) always goes
alone.
"""

from __future__ import annotations

from collections.abc import Sequence

from worker.enums import Channel
from worker.store import Delivery


def batches_by_text(claimed: Sequence[Delivery]) -> list[list[Delivery]]:
    """The vendor calls for `claimed`: one per distinct text (in the order each text first
    appears), then one per recipient that must go alone."""
    by_text: dict[str | None, list[Delivery]] = {}
    for delivery in claimed:
        if not delivery.send_alone:
            text = delivery.text if delivery.channel == Channel.SMS else None
            by_text.setdefault(text, []).append(delivery)
    return [*by_text.values(), *([d] for d in claimed if d.send_alone)]
