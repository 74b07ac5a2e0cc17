"""The allow-list kept in the database; the budget notice a user was last shown.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26

access_list: admins allow or deny a user with /allow and /deny, effective at once (no restart);
it is combined with ALLOWED_USER_IDS by the core. One row per user: the latest decision wins.
users.warned_period: the budget period in which the user was told they passed 80 % of it, so
the notice is shown once per period, and the renewal notice once when the period changes.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "access_list",
        sa.Column("user_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("allowed", sa.Boolean(), nullable=False),
        sa.Column("changed_by", sa.BigInteger(), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_access_list"),
    )
    op.add_column("users", sa.Column("warned_period", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("warned_period")
    op.drop_table("access_list")
