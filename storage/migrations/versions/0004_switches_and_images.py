"""Per-user switches for web search and thinking; images kept with their messages.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26

users.web_search: chat turns declare Moonshot's $web_search (off by default: each search costs).
users.thinking: on models that can switch thinking, the request asks for it on or off (Moonshot's
default is on). messages.images: the pictures a user message showed (base64 with their MIME type,
downscaled and size-capped), so follow-up questions about them work until /reset.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("web_search", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch.add_column(sa.Column("thinking", sa.Boolean(), server_default=sa.true(), nullable=False))
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("images", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("images")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("thinking")
        batch.drop_column("web_search")
