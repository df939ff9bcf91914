"""Invite revocation: when the provider withdrew an open invite.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import advanced_alchemy.types.datetime
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("onboarding_invites") as batch:
        batch.add_column(
            sa.Column(
                "revoked_at",
                advanced_alchemy.types.datetime.DateTimeUTC(timezone=True),
                nullable=True,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("onboarding_invites") as batch:
        batch.drop_column("revoked_at")
