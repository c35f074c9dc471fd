"""Pushes applied in batches: a partial index of the pushes no applier has tried yet.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 23:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNTRIED = "applied_at IS NULL AND outcome IS NULL"


def upgrade() -> None:
    op.create_index(
        "ix_vendorpush_untried",
        "vendorpush",
        ["id"],
        postgresql_where=sa.text(UNTRIED),
        sqlite_where=sa.text(UNTRIED),
    )


def downgrade() -> None:
    op.drop_index("ix_vendorpush_untried", table_name="vendorpush")
