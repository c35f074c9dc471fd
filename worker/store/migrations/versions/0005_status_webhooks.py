"""Status webhooks: a job's callback address, the addresses and their retry state, the outbox of
status changes still to POST, and how far the dispatcher has read the delivery events.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 23:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("job") as batch_op:
        batch_op.add_column(sa.Column("callback_url", sa.String(length=2048), nullable=True))
    op.create_table(
        "webhookendpoint",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("leased_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("url"),
    )
    op.create_table(
        "webhookoutboxentry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("endpoint_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["endpoint_id"], ["webhookendpoint.id"]),
        sa.ForeignKeyConstraint(["event_id"], ["deliveryevent.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    with op.batch_alter_table("webhookoutboxentry") as batch_op:
        batch_op.create_index(
            "ix_webhookoutboxentry_endpoint_event", ["endpoint_id", "event_id"], unique=False
        )
    tail = op.create_table(
        "webhooktail",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("last_event_id", sa.Integer(), nullable=False),
        sa.Column("gaps", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    # No job had a callback address before this revision: the dispatcher starts after the
    # events already stored instead of reading them all once.
    last = op.get_bind().execute(sa.text("SELECT COALESCE(MAX(id), 0) FROM deliveryevent"))
    op.bulk_insert(tail, [{"id": 1, "last_event_id": int(last.scalar_one()), "gaps": []}])


def downgrade() -> None:
    op.drop_table("webhooktail")
    with op.batch_alter_table("webhookoutboxentry") as batch_op:
        batch_op.drop_index("ix_webhookoutboxentry_endpoint_event")
    op.drop_table("webhookoutboxentry")
    op.drop_table("webhookendpoint")
    with op.batch_alter_table("job") as batch_op:
        batch_op.drop_column("callback_url")
