"""Trials keep a history of their multi-fidelity scheduler's decisions (ASHA, Hyperband, MOBSTER,
freeze-thaw): continue past a rung, pause, resume, stop.

``decisions`` is a JSON list of ``{"at", "action", "fidelity", "reason", ...}`` (where the scheduler has
them also ``rung``, ``predicted`` and ``acquisition``); NULL (every existing row) means no decision
was recorded. The new trial state ``paused`` needs no schema change (``state`` is a string).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("trials") as batch:
        batch.add_column(sa.Column("decisions", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("trials") as batch:
        batch.drop_column("decisions")
