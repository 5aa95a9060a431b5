"""Trials record when they last changed (the dashboard's ``after`` cursor); searches record a
requested pause or stop.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("trials") as batch:
        batch.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE trials SET updated_at = COALESCE(finished_at, started_at, created_at)")
    with op.batch_alter_table("trials") as batch:
        batch.alter_column("updated_at", existing_type=sa.DateTime(timezone=True), nullable=False)
    op.create_index(
        op.f("ix_trials_search_id_updated_at"), "trials", ["search_id", "updated_at"], unique=False
    )
    with op.batch_alter_table("searches") as batch:
        batch.add_column(sa.Column("requested_action", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("searches") as batch:
        batch.drop_column("requested_action")
    op.drop_index(op.f("ix_trials_search_id_updated_at"), table_name="trials")
    with op.batch_alter_table("trials") as batch:
        batch.drop_column("updated_at")
