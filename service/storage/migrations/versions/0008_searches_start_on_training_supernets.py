"""A search with ``fidelity.supernet_epochs`` that names a supernet trained elsewhere (stand-alone, or
by another search) may start while that supernet trains: ``starts_on_training_supernet`` lets the
claim take it once the supernet is training, instead of once it is ready. False on every existing row.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("searches") as batch:
        batch.add_column(
            sa.Column("starts_on_training_supernet", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("searches") as batch:
        batch.drop_column("starts_on_training_supernet")
