"""Initial schema: searches, trials and trial_reports.

Revision ID: 0001
Revises:
Create Date: 2025-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "searches",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("state_reason", sa.Text(), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("attempt", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        _timestamp("created_at", nullable=False),
        _timestamp("started_at"),
        _timestamp("finished_at"),
        _timestamp("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_searches")),
        sa.UniqueConstraint("id", name=op.f("uq_searches_id")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_searches_idempotency_key")),
    )
    op.create_index(op.f("ix_searches_state"), "searches", ["state"], unique=False)
    op.create_table(
        "trials",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("search_id", sa.String(length=32), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("fidelity", sa.Float(), nullable=True),
        sa.Column("state_reason", sa.Text(), nullable=True),
        sa.Column("artifact_dir", sa.String(length=1024), nullable=True),
        _timestamp("created_at", nullable=False),
        _timestamp("started_at"),
        _timestamp("finished_at"),
        sa.ForeignKeyConstraint(
            ["search_id"], ["searches.id"], name=op.f("fk_trials_search_id_searches"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_trials")),
        sa.UniqueConstraint("search_id", "number", name=op.f("uq_trials_search_id_number")),
    )
    op.create_table(
        "trial_reports",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("trial_pk", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("fidelity", sa.Float(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        _timestamp("created_at", nullable=False),
        sa.ForeignKeyConstraint(
            ["trial_pk"], ["trials.pk"], name=op.f("fk_trial_reports_trial_pk_trials"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_trial_reports")),
        sa.UniqueConstraint("trial_pk", "step", name=op.f("uq_trial_reports_trial_pk_step")),
    )


def downgrade() -> None:
    op.drop_table("trial_reports")
    op.drop_table("trials")
    op.drop_index(op.f("ix_searches_state"), table_name="searches")
    op.drop_table("searches")
