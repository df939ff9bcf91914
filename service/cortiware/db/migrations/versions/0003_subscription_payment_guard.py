"""Subscription payment guard: newest invoice event per subscription.

Invoice events write the payment fields on their own clock, so an older invoice event never
overwrites a newer payment outcome and never blocks a subscription event.

Revision ID: 0003
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscriptions") as batch:
        batch.add_column(
            sa.Column(
                "last_payment_event_created",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                nullable=True,
            )
        )
        batch.add_column(sa.Column("last_payment_event_id", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("subscriptions") as batch:
        batch.drop_column("last_payment_event_id")
        batch.drop_column("last_payment_event_created")
