"""Indexes for finding messages: jobs newest first, a job's recipients in order and by status,
a number's jobs. `ix_delivery_job_id` goes: both new delivery indexes begin with `job_id`.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 23:40:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_job_created_at_id", "job", ["created_at", "id"])
    op.create_index("ix_delivery_job_id_id", "delivery", ["job_id", "id"])
    op.create_index("ix_delivery_job_id_status_id", "delivery", ["job_id", "status", "id"])
    op.create_index("ix_delivery_phone", "delivery", ["phone"])
    op.drop_index("ix_delivery_job_id", table_name="delivery")


def downgrade() -> None:
    op.create_index("ix_delivery_job_id", "delivery", ["job_id"])
    op.drop_index("ix_delivery_phone", table_name="delivery")
    op.drop_index("ix_delivery_job_id_status_id", table_name="delivery")
    op.drop_index("ix_delivery_job_id_id", table_name="delivery")
    op.drop_index("ix_job_created_at_id", table_name="job")
