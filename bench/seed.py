"""Deliveries written straight into the store as `submitted`, for the figures that measure how
fast reports are applied (5, 6) without the sending in front of them. They look as the send task
leaves them: one job, a batch id per `batch` numbers, `submitted_at` set."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from worker.enums import Channel, DeliveryStatus
from worker.store import Delivery, Job, utcnow

INSERT_ROWS = 5_000


@dataclass(frozen=True)
class Submitted:
    """A seeded delivery: its phone and the vendor's batch id."""

    phone: str
    ref: str


def seed_submitted(
    engine: Engine, *, vendor: str, channel: Channel, phones: list[str], batch: int, ref_digits: int
) -> list[Submitted]:
    now = utcnow()
    refs = itertools.count(random.randrange(10 ** (ref_digits - 1), 9 * 10 ** (ref_digits - 1)))
    seeded = []
    ref = ""
    for index, phone in enumerate(phones):
        if index % batch == 0:
            ref = str(next(refs))
        seeded.append(Submitted(phone, ref))
    with Session(engine) as session:
        job = Job(channel=channel, vendor=vendor, content="【Herald】bench", api_key_name="bench")
        session.add(job)
        session.flush()
        for start in range(0, len(seeded), INSERT_ROWS):
            session.execute(
                sa.insert(Delivery),
                [
                    {
                        "job_id": job.id,
                        "phone": one.phone,
                        "vendor": vendor,
                        "channel": channel,
                        "status": DeliveryStatus.SUBMITTED,
                        "vendor_ref": one.ref,
                        "submitted_at": now,
                        "updated_at": now,
                    }
                    for one in seeded[start : start + INSERT_ROWS]
                ],
            )
        session.commit()
    return seeded
