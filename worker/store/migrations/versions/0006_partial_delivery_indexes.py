"""Two delivery indexes hold only the rows they serve: the report key only rows with a vendor
reference (a report names one), `not_before` only rows that wait for a time. A new job's
recipients have neither, so writing 100,000 of them (COPY) no longer fills two indexes with
entries no query reads.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 00:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HAS_REF = sa.text("vendor_ref IS NOT NULL")
WAITS = sa.text("not_before IS NOT NULL")


def upgrade() -> None:
    op.drop_index("ix_delivery_report_key", table_name="delivery")
    op.create_index(
        "ix_delivery_report_key",
        "delivery",
        ["vendor", "channel", "vendor_ref", "phone"],
        postgresql_where=HAS_REF,
        sqlite_where=HAS_REF,
    )
    op.drop_index("ix_delivery_not_before", table_name="delivery")
    op.create_index(
        "ix_delivery_not_before",
        "delivery",
        ["not_before"],
        postgresql_where=WAITS,
        sqlite_where=WAITS,
    )


def downgrade() -> None:
    op.drop_index("ix_delivery_not_before", table_name="delivery")
    op.create_index("ix_delivery_not_before", "delivery", ["not_before"])
    op.drop_index("ix_delivery_report_key", table_name="delivery")
    op.create_index(
        "ix_delivery_report_key", "delivery", ["vendor", "channel", "vendor_ref", "phone"]
    )
